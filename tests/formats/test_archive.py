"""zip archives: checked before anything is written."""

import pytest
from format_data import BBOX, fixture_ds, make_zip, zip_of
from synthetic import write_image

import hardex_nb as hx
from hardex_nb import FormatError
from hardex_nb.formats import archive


@pytest.mark.parametrize(
    "member, reason",
    [
        ("/abs/evil.json", "absolute path"),
        ("../evil.json", "climbs out"),
        ("a/../../evil.json", "climbs out"),
        ("C:/evil.json", "absolute path"),
    ],
)
def test_zip_with_unsafe_member_is_refused_before_writing(tmp_path, member, reason):
    ds = fixture_ds(tmp_path)
    good = (BBOX / "data_annotated" / "2011_000003.json").read_bytes()
    z = make_zip(tmp_path / "x.zip", {"2011_000003.json": good, member: good})
    with pytest.raises(FormatError, match=reason):
        ds.import_labelme(z)
    assert ds.annotations.empty
    assert not (tmp_path / "evil.json").exists()


def test_zip_with_symlink_or_too_large_is_refused(tmp_path):
    ds = fixture_ds(tmp_path)
    good = (BBOX / "data_annotated" / "2011_000003.json").read_bytes()
    with pytest.raises(FormatError, match="symbolic link"):
        ds.import_labelme(make_zip(tmp_path / "l.zip", {"a.json": good}, symlink="link.json"))
    bomb = make_zip(tmp_path / "b.zip", {"big.json": b"0" * 5_000_000})
    with pytest.raises(FormatError, match="over the limit"):
        archive.check_members(bomb, max_total_bytes=1_000_000)
    assert ds.annotations.empty


def test_labelme_zip_imports(tmp_path):
    ds = fixture_ds(tmp_path)
    members = {f"labels/{p.name}": p.read_bytes() for p in (BBOX / "data_annotated").glob("*.json")}
    result = ds.import_labelme(make_zip(tmp_path / "ok.zip", members))
    assert len(result.annotations) == 9


def test_zip_members_that_land_on_one_path_are_refused(tmp_path):
    png = write_image(tmp_path / "p.png", 60, 40).read_bytes()
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name
        z = zip_of(
            tmp_path / "dup.zip",
            [("x.png", png), ("x.png", png), ("./y.png", png), ("y.png", png), ("z.png", png)],
        )
    ds = hx.Dataset.create(tmp_path / "d", task="detection", labels=["a"])
    with pytest.raises(FormatError) as err:
        ds.add_images(z)
    assert "x.png: lands on the same path as x.png" in str(err.value)
    assert "y.png: lands on the same path as ./y.png" in str(err.value)
    assert ds.samples.empty


def test_an_oversized_zip_member_is_not_extracted(tmp_path):
    png = write_image(tmp_path / "p.png", 60, 40).read_bytes()
    z = zip_of(tmp_path / "big.zip", [("ok.png", png), ("huge.png", b"\0" * (101 * 2**20))])
    extracted = []
    real = archive.safe_extract

    def watching(*args, **kwargs):
        out = real(*args, **kwargs)
        extracted.extend(p.name for p in out)
        return out

    ds = hx.Dataset.create(tmp_path / "d", task="detection", labels=["a"])
    import hardex_nb.ingest as ingest_module

    ingest_module.safe_extract, saved = watching, ingest_module.safe_extract
    try:
        report = ds.add_images(z)
    finally:
        ingest_module.safe_extract = saved
    assert extracted == ["ok.png"]  # never written to disk
    assert len(report.added) == 1
    assert report.rejected == [
        (
            "huge.png",
            "101.0 MB (as the archive declares it) is over the 100 MB limit; not extracted",
        )
    ]
