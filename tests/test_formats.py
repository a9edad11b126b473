"""Import and export of every format, the fixture cross-check, round trips, hostile input."""

import json
import shutil
import stat
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from synthetic import FIXTURES, write_image

import hardex_nb as hx
from hardex_nb import FormatError
from hardex_nb.formats import archive

BBOX = FIXTURES / "labelme" / "bbox_detection"
CLS = FIXTURES / "labelme" / "classification"
FORMATS = ["labelme", "voc", "yolo", "coco", "manifest"]
ROTATED = ["dota"]  # boxes only (turned or not): tested on their own below


def boxes(ds):
    a = ds.annotations.merge(ds.samples[["sample_id", "name"]], on="sample_id")
    return a.sort_values(["name", "x0", "y0", "kind"]).reset_index(drop=True)


def fixture_ds(tmp_path, name="ds"):
    ds = hx.Dataset.create(tmp_path / name, task="detection", labels=[])
    ds.add_images(BBOX / "data_annotated")
    return ds


def test_labelme_and_voc_fixtures_give_the_same_boxes(tmp_path):
    a, b = fixture_ds(tmp_path, "a"), fixture_ds(tmp_path, "b")
    ra = a.import_labelme(BBOX / "data_annotated")
    rb = b.import_voc(BBOX / "voc_annotations")
    assert ra.added_labels == ["person", "bus", "car"] and len(ra.annotations) == 9
    assert rb.unmatched == [] and set(b.samples.status) == {"labeled"}
    ba, bb = boxes(a), boxes(b)
    assert ba["label"].astype(str).tolist() == bb["label"].astype(str).tolist()
    np.testing.assert_allclose(
        ba[["x0", "y0", "x1", "y1"]], bb[["x0", "y0", "x1", "y1"]], atol=1e-9
    )
    first = ba[ba.name == "2011_000003.jpg"].iloc[0]
    assert (first.x0, first.x1) == (191.0, 313.0) and first.y0 == pytest.approx(107.369003690)


def test_labelme_classification_flags(tmp_path):
    ds = hx.Dataset.create(tmp_path / "c", task="classification", labels=["cat", "dog"])
    ds.add_images(CLS / "data_annotated")
    ds.import_labelme(CLS / "data_annotated")
    s = ds.samples.set_index("name")
    assert s.loc["0001.jpg", "label"] == "cat" and set(s.status) == {"labeled"}
    for fmt in ("labelme", "coco", "manifest"):
        out = tmp_path / f"out_{fmt}"
        getattr(ds, f"export_{fmt}")(out)
        if fmt == "coco":
            continue  # COCO has no image-level class
        back = hx.Dataset.create(tmp_path / f"back_{fmt}", task="classification", labels=[])
        back.add_images(out if fmt == "labelme" else out / "images")
        getattr(back, f"import_{fmt}")(out)
        pd.testing.assert_series_equal(
            back.samples.set_index("name")["label"].astype(str), s["label"].astype(str)
        )


def test_labelme_json_without_image_is_reported(tmp_path):
    ds = hx.Dataset.create(tmp_path / "d", task="detection", labels=[])
    ds.add_images([BBOX / "data_annotated" / "2011_000003.jpg"])
    result = ds.import_labelme(BBOX / "data_annotated")
    assert sorted(result.unmatched) == ["2011_000006", "2011_000025"]
    assert "add these images first" in repr(result)
    assert len(ds.annotations) == 2


def rich_dataset(tmp_path) -> hx.Dataset:
    ds = hx.Dataset.create(tmp_path / "rich", task="detection", labels=["cat", "dog", "sign"])
    ids = ds.add_images(
        [write_image(tmp_path / "src" / f"im{i}.png", 120, 90, seed=i) for i in range(4)]
    ).added
    rng = np.random.default_rng(0)
    for sid in ids[:3]:
        for _ in range(3):
            x0, y0 = rng.uniform(0, 60), rng.uniform(0, 40)
            ds.add_box(
                sid,
                str(rng.choice(["cat", "dog"])),
                x0,
                y0,
                x0 + rng.uniform(5, 50),
                y0 + rng.uniform(5, 45),
            )
    ds.add_polygon(ids[0], "dog", [[10.25, 10.5], [60.125, 12], [30, 70.75]])
    ds.add_box(ids[1], "sign", 3.3, 4.4, 50.5, 20.2, text="STOP")
    ds.add_ignore_region(ids[2], 80, 50, 119, 89)
    auto = ds.add_box(ids[3], "cat", 1, 2, 3.5, 4.5, score=0.42, origin="V2")
    ds.update_annotation(auto, hard_type="false_positive")
    ds.set_status(ids[3], "to_confirm")
    ds.mark_hard(ids[1], reasons=[1, 101], score=0.75)
    ds.mark_hard(ids[3], reasons="0")
    return ds


@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip(tmp_path, fmt):
    ds = rich_dataset(tmp_path)
    out = tmp_path / "out"
    getattr(ds, f"export_{fmt}")(out)
    back = hx.Dataset.create(tmp_path / "back", task="detection", labels=[])
    img_dir = {"labelme": out, "voc": out / "JPEGImages"}.get(fmt, out / "images")
    assert len(back.add_images(img_dir).added) == 4
    getattr(back, f"import_{fmt}")(out)
    a, b = boxes(ds), boxes(back)
    if fmt == "yolo":  # YOLO carries boxes and polygons only
        a = a[a.kind != "ignore"].reset_index(drop=True)
        a["kind"] = a["kind"].astype(str).replace("text", "box")
    assert a["name"].tolist() == b["name"].tolist()
    assert a["kind"].astype(str).tolist() == b["kind"].astype(str).tolist()
    assert a["label"].astype(str).tolist() == b["label"].astype(str).tolist()
    np.testing.assert_allclose(a[["x0", "y0", "x1", "y1"]], b[["x0", "y0", "x1", "y1"]], atol=1e-6)
    for pa, pb in zip(a["points"], b["points"]):
        if pa is not None:
            np.testing.assert_allclose(pa, pb, atol=1e-6)
    if fmt != "yolo":
        assert a["text"].tolist() == b["text"].tolist()
        assert a["hard_type"].astype(str).tolist() == b["hard_type"].astype(str).tolist()
        assert a["origin"].astype(str).tolist() == b["origin"].astype(str).tolist()
        np.testing.assert_allclose(a["score"].astype(float), b["score"].astype(float))
        cols = ["name", "hard", "hard_reasons", "status"]
        sa = ds.samples[cols].sort_values("name").reset_index(drop=True)
        sb = back.samples[cols].sort_values("name").reset_index(drop=True)
        pd.testing.assert_frame_equal(sa, sb)


def test_manifest_accepts_underscore_spellings_and_keeps_hard_reasons(tmp_path):
    ds = rich_dataset(tmp_path)
    out = tmp_path / "m"
    ds.export_manifest(out)
    text = (out / "output.manifest").read_text()
    first = json.loads(text.splitlines()[1])
    assert first["hard"] == "true" and first["annotation"][0]["hard-reasons"] == "1-101"
    assert first["annotation"][0]["annotation-format"] == "PASCAL VOC"
    (out / "output.manifest").write_text(
        text.replace("annotation-loc", "annotation_loc").replace("hard-reasons", "hard_reasons")
    )
    back = hx.Dataset.create(tmp_path / "b", task="detection", labels=[])
    back.add_images(out / "images")
    back.import_manifest(out / "output.manifest")
    assert back.samples.set_index("name").loc["im1.png", "hard_reasons"] == "1-101"
    assert len(back.annotations) == len(ds.annotations)


def test_failed_import_lists_every_bad_file_and_changes_nothing(tmp_path):
    ds = fixture_ds(tmp_path)
    src = tmp_path / "labels"
    shutil.copytree(BBOX / "data_annotated", src)
    (src / "2011_000006.json").write_text('{"shapes": [\n  {"label": "x", "points": [1, 2]\n')
    doc = json.loads((src / "2011_000025.json").read_text())
    doc["shapes"][0]["points"] = [[float("nan"), 1], [3, 4]]
    (src / "2011_000025.json").write_text(json.dumps(doc))
    before = (ds.samples, ds.annotations, ds.label_names)
    with pytest.raises(FormatError) as err:
        ds.import_labelme(src)
    message = str(err.value)
    assert "dataset is unchanged" in message
    assert "2011_000006.json: line 3" in message
    assert "2011_000025.json: shapes[0]" in message and "not finite" in message
    pd.testing.assert_frame_equal(ds.samples, before[0])
    assert ds.annotations.empty and ds.label_names == before[2] == []
    assert hx.Dataset.open(ds.path).annotations.empty


def test_unknown_labels_and_outside_boxes_follow_the_options(tmp_path):
    ds = hx.Dataset.create(tmp_path / "d", task="detection", labels=["person"])
    ds.add_images(BBOX / "data_annotated")
    with pytest.raises(FormatError, match="label 'bus' is not in the label set"):
        ds.import_voc(BBOX / "voc_annotations", unknown_labels="error")
    assert ds.annotations.empty
    src = tmp_path / "voc"
    shutil.copytree(BBOX / "voc_annotations", src)
    xml = (src / "2011_000003.xml").read_text().replace("<xmax>500.0</xmax>", "<xmax>520.5</xmax>")
    (src / "2011_000003.xml").write_text(xml)
    with pytest.raises(FormatError, match=r"2011_000003.xml: object\[1\]: box .* reaches outside"):
        ds.import_voc(src, outside="error")
    result = ds.import_voc(src)
    assert result.clipped == ["2011_000003.xml: object[1]"]
    assert ds.annotations.x1.max() == 500.0


def test_yolo_and_coco_parsers_name_the_line_or_field(tmp_path):
    ds = fixture_ds(tmp_path)
    y = tmp_path / "yolo"
    y.mkdir()
    (y / "classes.txt").write_text("person\n")
    (y / "2011_000003.txt").write_text("0 0.5 0.5 0.2 0.2\n3 0.5 0.5 0.1 0.1\n0 0.5 zero 1 1\n")
    with pytest.raises(FormatError) as err:
        ds.import_yolo(y)
    assert "2011_000003.txt: line 2: class 3 is not in classes.txt" in str(err.value)
    assert "2011_000003.txt: line 3: 'zero' is not a number" in str(err.value)
    c = tmp_path / "coco.json"
    c.write_text(
        json.dumps(
            {
                "images": [{"id": 1, "file_name": "2011_000003.jpg"}],
                "annotations": [{"id": 1, "image_id": 2, "category_id": 1, "bbox": [0, 0, 1, 1]}],
                "categories": [{"id": 1, "name": "person"}],
            }
        )
    )
    with pytest.raises(FormatError, match=r"annotations\[0\]: image_id 2 is not in 'images'"):
        ds.import_coco(c)
    assert ds.annotations.empty


def test_coco_matches_pycocotools_reading(tmp_path):
    from pycocotools.coco import COCO

    ds = rich_dataset(tmp_path)
    ds.export_coco(tmp_path / "c", images=False)
    coco = COCO(str(tmp_path / "c" / "annotations.json"))
    assert len(coco.getAnnIds()) == len(ds.annotations)
    assert {c["name"] for c in coco.loadCats(coco.getCatIds())} == {"cat", "dog", "sign"}


# -- hostile input --------------------------------------------------------------------------
def make_zip(path: Path, members: dict[str, bytes], symlink: str | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, "/etc/passwd")
    return path


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


XML_BOMB = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<annotation><filename>&lol2;</filename></annotation>"""
XML_EXTERNAL = """<?xml version="1.0"?>
<!DOCTYPE a [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<annotation><filename>&xxe;</filename></annotation>"""


@pytest.mark.parametrize("text", [XML_BOMB, XML_EXTERNAL])
def test_voc_refuses_entities(tmp_path, text):
    ds = fixture_ds(tmp_path)
    (tmp_path / "v").mkdir()
    (tmp_path / "v" / "2011_000003.xml").write_text(text)
    with pytest.raises(FormatError, match="refused unsafe XML"):
        ds.import_voc(tmp_path / "v")


# -- fuzzing: only FormatError may come out -------------------------------------------------
SEEDS = {
    "labelme": ("a.json", (BBOX / "data_annotated" / "2011_000003.json").read_bytes()),
    "voc": ("a.xml", (BBOX / "voc_annotations" / "2011_000003.xml").read_bytes()),
    "yolo": ("a.txt", b"0 0.5 0.5 0.2 0.3\n1 0.1 0.1 0.3 0.2 0.2 0.4\n"),
    "coco": (
        "a.json",
        json.dumps(
            {
                "images": [{"id": 1, "file_name": "2011_000003.jpg", "width": 500, "height": 338}],
                "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 30, 40]}],
                "categories": [{"id": 1, "name": "person"}],
            }
        ).encode(),
    ),
    "manifest": (
        "a.manifest",
        json.dumps(
            {
                "source": "2011_000003.jpg",
                "annotation": [{"type": "modelarts/object_detection", "annotation-loc": "a.xml"}],
            }
        ).encode(),
    ),
    "dota": (
        "2011_000003.txt",
        b"imagesource:GoogleEarth\ngsd:0.1\n"
        b"10 10 60 20 55 45 5 35 person 0\n100 100 150 100 150 140 100 140 bus 1\n",
    ),
}


@st.composite
def mutated(draw, seed: bytes):
    data = bytearray(seed)
    for _ in range(draw(st.integers(0, 8))):
        op = draw(st.sampled_from(["flip", "cut", "insert"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[pos] = draw(st.integers(0, 255))
        elif op == "cut":
            del data[pos : pos + draw(st.integers(1, 40))]
        else:
            data[pos:pos] = draw(st.binary(max_size=20))
    return bytes(data)


@pytest.fixture(scope="module")
def fuzz_ds(tmp_path_factory):
    return fixture_ds(tmp_path_factory.mktemp("fuzz"))


@pytest.mark.parametrize("fmt", FORMATS + ROTATED)
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_parsers_raise_only_format_error(fmt, data, fuzz_ds, tmp_path_factory):
    name, seed = SEEDS[fmt]
    payload = data.draw(st.one_of(st.binary(max_size=300), mutated(seed)))
    folder = tmp_path_factory.mktemp("f")
    (folder / name).write_bytes(payload)
    if fmt == "yolo":
        (folder / "classes.txt").write_text("person\nbus\n")
    if fmt == "manifest":
        (folder / "a.xml").write_bytes(SEEDS["voc"][1])
    before = len(fuzz_ds.annotations)
    try:
        result = getattr(fuzz_ds, f"import_{fmt}")(folder)
    except FormatError:
        assert len(fuzz_ds.annotations) == before
    else:
        fuzz_ds.delete_annotations(result.annotations)


def test_voc_difficult_is_kept_and_written_back(tmp_path):
    """labelme's VOC converter writes an empty <difficult/>: that reads as not difficult. A
    <difficult>1</difficult> (as in PASCAL VOC's own files) is kept, exported, and read back."""
    src = tmp_path / "voc"
    shutil.copytree(BBOX / "voc_annotations", src)
    xml = src / "2011_000003.xml"
    text = xml.read_text()
    assert text.count("<difficult/>") == 2
    xml.write_text(text.replace("<difficult/>", "<difficult>1</difficult>", 1))
    ds = fixture_ds(tmp_path)
    ds.import_voc(src)
    got = boxes(ds)
    flagged = got[got["difficult"]]
    assert len(flagged) == 1 and flagged.iloc[0]["name"] == "2011_000003.jpg"
    assert got["difficult"].sum() == 1 and len(got) == 9
    out = tmp_path / "out"
    ds.export_voc(out)
    assert (out / "Annotations" / "2011_000003.xml").read_text().count(
        "<difficult>1</difficult>"
    ) == 1
    back = fixture_ds(tmp_path, "back")
    back.import_voc(out / "Annotations")
    pd.testing.assert_series_equal(boxes(back)["difficult"], got["difficult"])


# -- hostile values inside otherwise valid files ------------------------------------------------


def _one_image_ds(tmp_path):
    ds = hx.Dataset.create(tmp_path / "hostile", task="detection", labels=["a"])
    ds.add_images([write_image(tmp_path / "x.png", 60, 40)])
    return ds


def _labelme(folder: Path, shapes_json: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "x.json").write_text(
        f'{{"imagePath": "x.png", "imageWidth": 60, "imageHeight": 40, "shapes": {shapes_json}}}'
    )
    return folder


@pytest.mark.parametrize(
    "fmt, write, expected",
    [
        (
            "labelme",
            lambda d: _labelme(
                d,
                '[{"label": "a", "shape_type": "rectangle", "points": '
                f"[[1, 1], [{10**400}, 5]]}}]",
            ),
            r"x\.json: shapes\[0\]: points: 1000.*too large",
        ),
        (
            "coco",
            lambda d: (
                d.mkdir(),
                (d / "c.json").write_text(
                    '{"images": [{"id": 1, "file_name": "x.png", "width": 60, "height": 40}], '
                    f'"annotations": [{{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, {10**400}, 5]}}], '
                    '"categories": [{"id": 1, "name": "a"}]}'
                ),
                d,
            )[-1],
            r"c\.json: annotations\[0\]: bbox: 1000.*too large",
        ),
        (
            "labelme",
            lambda d: (d.mkdir(), (d / "x.json").write_text("[" * 10000 + "]" * 10000), d)[-1],
            r"x\.json: JSON nested too deeply",
        ),
        (
            "coco",
            lambda d: (
                d.mkdir(),
                (d / "c.json").write_text('{"images": ' + "[" * 10000 + "]" * 10000 + "}"),
                d,
            )[-1],
            r"c\.json: JSON nested too deeply",
        ),
        (
            "manifest",
            lambda d: (
                d.mkdir(),
                (d / "m.manifest").write_text(
                    '{"source": "x.png", "annotation": ' + "[" * 10000 + "]" * 10000 + "}\n"
                ),
                d,
            )[-1],
            r"m\.manifest: line 1: JSON nested too deeply",
        ),
        (
            "labelme",
            lambda d: _labelme(
                d, '[{"label": "\\ud800", "shape_type": "rectangle", "points": [[1, 1], [9, 5]]}]'
            ),
            r"x\.json: shapes\[0\]: label '\\ud800' is not valid Unicode",
        ),
    ],
)
def test_hostile_values_are_format_errors_naming_file_and_field(tmp_path, fmt, write, expected):
    ds = _one_image_ds(tmp_path)
    before = boxes(ds)
    with pytest.raises(FormatError, match=expected):
        ds.import_annotations(fmt, write(tmp_path / "src")) if hasattr(
            ds, "import_annotations"
        ) else getattr(ds, f"import_{fmt}")(write(tmp_path / "src"))
    pd.testing.assert_frame_equal(boxes(ds), before)
    with pytest.raises(hx.ValidationError, match="not valid Unicode"):
        ds.add_label("\ud800")


def _zip(path: Path, members: list[tuple[str, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members:
            zf.writestr(name, data)
    return path


def test_zip_members_that_land_on_one_path_are_refused(tmp_path):
    png = write_image(tmp_path / "p.png", 60, 40).read_bytes()
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name
        z = _zip(
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
    z = _zip(tmp_path / "big.zip", [("ok.png", png), ("huge.png", b"\0" * (101 * 2**20))])
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


@pytest.mark.parametrize("loc", ["../outside.xml", "/etc/hostname"])
def test_a_zipped_manifest_may_not_read_files_outside_the_archive(tmp_path, loc):
    (tmp_path / "outside.xml").write_text(
        "<annotation><object><name>a</name><bndbox><xmin>1"
        "</xmin><ymin>1</ymin><xmax>9</xmax><ymax>9</ymax>"
        "</bndbox></object></annotation>"
    )
    line = json.dumps(
        {
            "source": "x.png",
            "annotation": [{"type": "modelarts/object_detection", "annotation-loc": loc}],
        }
    )
    z = _zip(tmp_path / "m.zip", [("m.manifest", line.encode())])
    ds = _one_image_ds(tmp_path)
    with pytest.raises(FormatError, match="annotation-loc: .* points outside the archive"):
        ds.import_manifest(z)
    assert ds.annotations.empty


# -- objects counted as the source tool means them (real files) -------------------------------

INSTANCES = FIXTURES / "labelme_instances" / "data_annotated"
INSTANCES_COCO = FIXTURES / "labelme_instances" / "data_dataset_coco" / "annotations.json"


def _instances_ds(tmp_path, name="inst"):
    ds = hx.Dataset.create(tmp_path / name, task="detection", labels=[])
    ds.add_images(sorted(INSTANCES.glob("*.jpg")))
    return ds


def _objects(ds):
    """Per image name: sorted (label, rounded box) of every object (ignore regions apart)."""
    a = boxes(ds)
    out = {}
    for name, part in a[a["kind"] != "ignore"].groupby("name"):
        out[name] = sorted((str(r.label), r.x0, r.y0, r.x1, r.y1) for r in part.itertuples())
    return out


def test_labelme_groups_and_ignore_polygons_match_labelmes_own_coco_converter(tmp_path):
    """labelme's instance-segmentation example, read as labelme JSON, gives the objects that
    labelme's own labelme2coco wrote from it: the four sofa pieces sharing group_id 0 are
    one sofa, the __ignore__ polygon is an ignore region (not a label)."""
    from_json = _instances_ds(tmp_path, "json")
    result = from_json.import_labelme(INSTANCES)
    assert result.unmatched == [] and "__ignore__" not in from_json.label_names
    from_coco = _instances_ds(tmp_path, "coco")
    from_coco.import_coco(INSTANCES_COCO)
    mine, theirs = _objects(from_json), _objects(from_coco)
    assert {k: len(v) for k, v in mine.items()} == {
        "2011_000003.jpg": 3,
        "2011_000006.jpg": 6,
        "2011_000025.jpg": 3,
    }
    for name in mine:  # labelme2coco's boxes come from the rasterized mask: within 1.5 px
        assert [m[0] for m in mine[name]] == [t[0] for t in theirs[name]]
        np.testing.assert_allclose(
            [m[1:] for m in mine[name]], [t[1:] for t in theirs[name]], atol=1.5
        )
    a = from_json.annotations
    sofa = a[a["label"] == "sofa"]
    assert len(sofa) == 1 and len(sofa["points"].iloc[0]) == 4  # one object, four rings
    ignore = a[a["kind"] == "ignore"].merge(from_json.samples, on="sample_id")
    assert sorted(ignore["name"]) == ["2011_000003.jpg", "2011_000006.jpg"]
    assert [len(p) for p in ignore.sort_values("name")["points"]][1] == 4  # a 4-point polygon


def test_a_multi_polygon_coco_annotation_is_one_object_whose_box_is_its_bbox(tmp_path):
    ds = _instances_ds(tmp_path)
    ds.import_coco(INSTANCES_COCO)
    doc = json.loads((INSTANCES_COCO).read_text())
    assert len(ds.annotations) == len(doc["annotations"]) == 12
    sofa = ds.annotations[ds.annotations["label"] == "sofa"].iloc[0]
    assert len(sofa["points"]) == 4
    np.testing.assert_allclose(
        [sofa.x0, sofa.y0, sofa.x1 - sofa.x0, sofa.y1 - sofa.y0],
        [18.0, 140.0, 460.0, 172.0],
        atol=1.5,
    )


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_object_in_pieces_round_trips(tmp_path, fmt):
    ds = _instances_ds(tmp_path)
    ds.import_labelme(INSTANCES)
    ds.export_annotations(fmt, tmp_path / "out") if hasattr(ds, "export_annotations") else getattr(
        ds, f"export_{fmt}"
    )(tmp_path / "out")
    back = _instances_ds(tmp_path, "back")
    getattr(back, f"import_{fmt}")(tmp_path / "out")
    sofa = back.annotations[back.annotations["label"] == "sofa"]
    assert len(sofa) == 1
    ignore = back.annotations[back.annotations["kind"] == "ignore"]
    assert len(ignore) == (0 if fmt == "yolo" else 2)  # YOLO has no ignore regions
    if fmt != "yolo":  # kept as polygons
        assert sorted(len(p) for p in ignore["points"]) == sorted(
            len(p) for p in ds.annotations.loc[ds.annotations["kind"] == "ignore", "points"]
        )
    if fmt == "yolo":  # one ring per line: the largest piece is kept (README)
        assert len(sofa["points"].iloc[0]) > 4 and not isinstance(
            sofa["points"].iloc[0][0][0], list
        )
    else:
        assert len(sofa["points"].iloc[0]) == 4
        assert _objects(back) == _objects(ds)


def test_voc_pairs_by_the_xmls_own_name_when_filename_is_stale(tmp_path):
    """mmdetection's VOC sample 000001.xml names 000002.jpg (copied from another file); the
    devkit pairs it with 000001.jpg by its own name."""
    ds = hx.Dataset.create(tmp_path / "d", task="detection", labels=[])
    ds.add_images([write_image(tmp_path / "000001.jpg", 335, 500, fmt="JPEG")])
    result = ds.import_voc(FIXTURES / "mmdetection_voc")
    assert result.unmatched == [] and len(result.paired) == 1
    assert "'000002.jpg'" in result.paired[0] and "'000001.jpg' by '000001'" in result.paired[0]
    assert boxes(ds)[["label", "x0", "y0", "x1", "y1"]].values.tolist() == [
        ["train", 139.0, 200.0, 207.0, 301.0]
    ]


def test_images_listed_with_no_objects_are_labeled_negatives_in_every_format(tmp_path):
    ds = _instances_ds(tmp_path)
    doc = json.loads((INSTANCES_COCO).read_text())
    negative_id = doc["images"][0]["id"]  # 2011_000003 loses its objects
    doc["annotations"] = [a for a in doc["annotations"] if a["image_id"] != negative_id]
    (tmp_path / "neg.json").write_text(json.dumps(doc))
    ds.import_coco(tmp_path / "neg.json")
    s = ds.samples.set_index("name")
    assert s.loc["2011_000003.jpg", "status"] == "labeled"
    assert (
        ds.annotations.merge(ds.samples, on="sample_id")["name"] == "2011_000003.jpg"
    ).sum() == 0
    for fmt in FORMATS + ROTATED:
        getattr(ds, f"export_{fmt}")(tmp_path / f"out_{fmt}")
        back = _instances_ds(tmp_path, f"back_{fmt}")
        getattr(back, f"import_{fmt}")(tmp_path / f"out_{fmt}")
        status = back.samples.set_index("name")["status"]
        assert status.loc["2011_000003.jpg"] == "labeled", fmt
        assert (status == "labeled").all(), fmt


def test_export_refuses_a_used_folder_unless_overwrite_and_keeps_shared_names_apart(tmp_path):
    ds = hx.Dataset.create(tmp_path / "d", task="detection", labels=["a", "b"])
    one = write_image(tmp_path / "one" / "x.png", 60, 40, seed=1)
    two = write_image(tmp_path / "two" / "x.png", 60, 40, seed=2)
    first, second = ds.add_images([one, two]).added
    ds.add_box(first, "a", 1, 1, 20, 20)
    ds.add_box(second, "b", 5, 5, 30, 30)
    ds.export_yolo(tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").rglob("x_*")) == [
        f"x_{first}.png",
        f"x_{first}.txt",
        f"x_{second}.png",
        f"x_{second}.txt",
    ]
    with pytest.raises(FormatError, match="is not empty.*overwrite=True"):
        ds.export_yolo(tmp_path / "out")
    (tmp_path / "out" / "stale.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    ds.delete_label("b")
    ds.export_yolo(tmp_path / "out", overwrite=True)
    assert not (tmp_path / "out" / "stale.txt").exists()
    assert (tmp_path / "out" / "classes.txt").read_text().split() == ["a"]
    with pytest.raises(FormatError, match="refusing to replace"):
        ds.export_yolo(ds.path, overwrite=True)


# -- a dataset in one call ----------------------------------------------------------------------


def test_from_coco_and_from_labelme_build_the_same_dataset_from_labelmes_files(tmp_path):
    from_coco = hx.Dataset.from_coco(INSTANCES_COCO, into=tmp_path / "c", images=INSTANCES)
    from_json = hx.Dataset.from_labelme(INSTANCES, into=tmp_path / "j")
    for ds in (from_coco, from_json):
        assert ds.task == "detection" and len(ds.samples) == 3
        assert (ds.samples["status"] == "labeled").all()
    mine, theirs = _objects(from_json), _objects(from_coco)
    assert (
        sorted(mine) == sorted(theirs) == ["2011_000003.jpg", "2011_000006.jpg", "2011_000025.jpg"]
    )
    assert from_coco.import_result.unmatched == []


def test_from_voc_and_from_manifest(tmp_path):
    voc = hx.Dataset.from_voc(
        BBOX / "voc_annotations", into=tmp_path / "v", images=BBOX / "data_annotated"
    )
    reference = fixture_ds(tmp_path)
    reference.import_labelme(BBOX / "data_annotated")
    assert _objects(voc) == _objects(reference)
    voc.set_split([int(voc.samples.sample_id[0])], "test")
    voc.export_manifest(tmp_path / "m")
    again = hx.Dataset.from_manifest(tmp_path / "m" / "output.manifest", into=tmp_path / "m2")
    assert _objects(again) == _objects(reference)


def test_from_yolo_reads_data_yaml_layouts_and_keeps_splits(tmp_path):
    """Ultralytics (names as a mapping, images/train + labels/train) and Roboflow (names as a
    list, ../train/images paths, valid/) layouts."""
    src = fixture_ds(tmp_path)
    src.import_labelme(BBOX / "data_annotated")
    src.export_yolo(tmp_path / "flat")
    names = (tmp_path / "flat" / "classes.txt").read_text().split()
    stems = sorted(p.stem for p in (tmp_path / "flat" / "labels").glob("*.txt"))
    images = {p.stem: p for p in (tmp_path / "flat").rglob("*.jpg")}
    layouts = {
        "ultra": (
            {
                "path": ".",
                "train": "images/train",
                "val": "images/val",
                "names": dict(enumerate(names)),
            },
            lambda split: (f"images/{split}", f"labels/{split}"),
        ),
        "robo": (
            {
                "train": "../train/images",
                "val": "../valid/images",
                "nc": len(names),
                "names": names,
            },
            lambda split: (
                f"{'valid' if split == 'val' else split}/images",
                f"{'valid' if split == 'val' else split}/labels",
            ),
        ),
    }
    import yaml

    for layout, (data, folders) in layouts.items():
        root = tmp_path / layout
        for k, stem in enumerate(stems):
            split = "val" if k == 0 else "train"
            img_dir, lab_dir = (root / f for f in folders(split))
            img_dir.mkdir(parents=True, exist_ok=True)
            lab_dir.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(images[stem], img_dir / images[stem].name)
            shutil.copyfile(tmp_path / "flat" / "labels" / f"{stem}.txt", lab_dir / f"{stem}.txt")
        (root / "data.yaml").write_text(yaml.safe_dump(data))
        ds = hx.Dataset.from_yolo(root, into=tmp_path / f"ds_{layout}")
        assert ds.label_names == names
        assert dict(zip(ds.samples["name"].map(lambda n: Path(n).stem), ds.samples["split"])) == {
            stem: ("val" if k == 0 else "train") for k, stem in enumerate(stems)
        }
        got, want = _objects(ds), _objects(src)
        assert sorted(got) == sorted(want)
        for name in got:
            np.testing.assert_allclose(
                [g[1:] for g in got[name]], [w[1:] for w in want[name]], atol=1e-3
            )


def test_from_files_is_all_or_nothing(tmp_path):
    with pytest.raises(FormatError, match=r"images not found; no dataset was created"):
        hx.Dataset.from_coco(INSTANCES_COCO, into=tmp_path / "c", images=tmp_path)
    assert not (tmp_path / "c").exists()
    bad = tmp_path / "bad"
    shutil.copytree(INSTANCES, bad)
    (bad / "2011_000006.jpg").write_bytes(b"not an image")
    with pytest.raises(FormatError, match="images refused"):
        hx.Dataset.from_labelme(bad, into=tmp_path / "j")
    assert not (tmp_path / "j").exists()


# -- EXIF orientation, label names, ModelArts VOC and manifest details -----------------------------


def test_exif_rotated_jpeg_is_stored_upright_and_boxes_land_where_drawn(tmp_path):
    from PIL import Image

    pixels = np.zeros((40, 80, 3), np.uint8)
    pixels[:, :40] = 255  # stored 80×40, left half white
    img = Image.fromarray(pixels)
    exif = img.getexif()
    exif[0x0112] = 6  # shown turned 90° clockwise: 40×80, top half white
    img.save(tmp_path / "phone.jpg", exif=exif.tobytes(), quality=95)
    ds = hx.Dataset.create(tmp_path / "d", task="detection", labels=["white"])
    sid = ds.add_images([tmp_path / "phone.jpg"]).added[0]
    assert (ds.sample(sid)["width"], ds.sample(sid)["height"]) == (40, 80)
    src = _labelme(
        tmp_path / "lm",
        '[{"label": "white", "shape_type": "rectangle", "points": [[0, 0], [40, 40]]}]',
    )
    doc = json.loads((src / "x.json").read_text())
    doc.update(imagePath="phone.jpg", imageWidth=40, imageHeight=80)
    (src / "x.json").unlink()
    (src / "phone.json").write_text(json.dumps(doc))
    ds.import_labelme(src)  # an EXIF-aware tool's sizes are accepted
    upright = hx.media.load_array(ds.image_path(sid))
    assert upright.shape == (80, 40, 3)
    assert upright[:40].mean() > 200 and upright[40:].mean() < 50  # the box covers the white


@pytest.mark.parametrize(
    "name, reason",
    [
        ("cat\n", "control character"),
        ("dog ", "spaces"),
        ("a\tb", "control character"),
        ("__ignore__", "reserved"),
    ],
)
def test_label_names_no_format_can_carry_are_refused(tmp_path, name, reason):
    with pytest.raises(hx.ValidationError, match=reason):
        hx.Dataset.create(tmp_path / "d", task="detection", labels=[name])
    ds = hx.Dataset.create(tmp_path / "d2", task="detection", labels=["ok"])
    with pytest.raises(hx.ValidationError, match=reason):
        ds.add_label(name)
    ds.add_images([write_image(tmp_path / "x.png", 60, 40)])
    src = _labelme(
        tmp_path / "lm",
        json.dumps([{"label": name, "shape_type": "rectangle", "points": [[1, 1], [9, 5]]}]),
    )
    if name == "__ignore__":  # in a file, the reserved name marks an ignore region
        ds.import_labelme(src)
        assert ds.annotations["kind"].tolist() == ["ignore"] and ds.label_names == ["ok"]
        return
    with pytest.raises(FormatError, match=reason):
        ds.import_labelme(src)


def test_modelarts_voc_shapes_are_skipped_and_listed(tmp_path):
    """ModelArts' VOC extension (its manual's example shapes): points, lines, dashes, circles
    and polylines are listed as skipped; the box and polygon are read; parts are reported."""
    xml = """<annotation><filename>x.png</filename><size><width>60</width><height>40</height></size>
      <object><name>bag</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>20</xmax><ymax>20</ymax></bndbox>
        <part><name>handle</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>5</xmax><ymax>5</ymax></bndbox></part></object>
      <object><name>boots</name><polygon><x1>30</x1><y1>5</y1><x2>50</x2><y2>5</y2><x3>40</x3><y3>30</y3></polygon></object>
      <object><name>dot</name><point><x1>10</x1><y1>10</y1></point></object>
      <object><name>rope</name><line><x1>1</x1><y1>1</y1><x2>9</x2><y2>9</y2></line></object>
      <object><name>dash</name><dashed><x1>1</x1><y1>2</y1><x2>9</x2><y2>8</y2></dashed></object>
      <object><name>ball</name><circle><cx>30</cx><cy>20</cy><r>5</r></circle></object>
      <object><name>path</name><polyline><x1>1</x1><y1>1</y1><x2>5</x2><y2>9</y2><x3>9</x3><y3>1</y3></polyline></object>
    </annotation>"""
    (tmp_path / "voc").mkdir()
    (tmp_path / "voc" / "x.xml").write_text(xml)
    ds = _one_image_ds(tmp_path)
    result = ds.import_voc(tmp_path / "voc")
    assert sorted(ds.annotations["label"].astype(str)) == ["bag", "boots"]
    kinds = " ".join(result.skipped)
    for tag in ("<point>", "<line>", "<dashed>", "<circle>", "<polyline>", "<part>"):
        assert tag in kinds


def test_manifest_details(tmp_path):
    ds = hx.Dataset.create(tmp_path / "d", task="classification", labels=["cat", "dog"])
    ds.add_images(
        [write_image(tmp_path / f"{n}.png", 60, 40, seed=i) for i, n in enumerate(("a", "b", "c"))]
    )
    cls = "modelarts/image_classification"
    line_a = json.dumps(
        {
            "source": "a.png",
            "usage": "EVAL",
            "annotation": [{"type": cls, "name": "cat", "hard": "true", "hard-coefficient": 0.7}],
        }
    )
    lines = [
        line_a,
        json.dumps({"source": "b.png", "annotation": [{"type": cls, "name": "dog"}]}),
        line_a,
    ]  # the same line twice: read once
    (tmp_path / "ok.manifest").write_text("\n".join(lines) + "\n")
    result = ds.import_manifest(tmp_path / "ok.manifest")
    assert "repeats line 1" in " ".join(result.skipped)
    a = ds.samples.set_index("name").loc["a.png"]
    assert a["label"] == "cat" and a["split"] == "val" and a["hard"] and a["hard_score"] == 0.7
    multi = json.dumps(
        {
            "source": "c.png",
            "annotation": [{"type": cls, "name": "cat"}, {"type": cls, "name": "dog"}],
        }
    )
    clash = json.dumps({"source": "b.png", "annotation": [{"type": cls, "name": "cat"}]})
    (tmp_path / "bad.manifest").write_text("\n".join([multi, lines[1], clash]) + "\n")
    with pytest.raises(FormatError) as err:
        ds.import_manifest(tmp_path / "bad.manifest")
    assert "line 1: several classification labels ['cat', 'dog']" in str(err.value)
    assert "line 3: source 'b.png' is also on line 2" in str(err.value)


def test_x_anylabeling_ocr_files_keep_text_scores_and_four_corner_boxes(tmp_path):
    """X-AnyLabeling writes rectangles as four corners, a group_id per shape, the model's
    score and the difficult flag on the shape itself, and the recognized text as its
    description."""
    src = FIXTURES / "xanylabeling_ocr"
    ds = hx.Dataset.from_labelme(src, into=tmp_path / "ocr")
    docs = {p.stem: json.loads(p.read_text()) for p in src.glob("*.json")}
    a = ds.annotations.merge(ds.samples[["sample_id", "name"]], on="sample_id")
    for stem, doc in docs.items():
        mine = a[a["name"].str.startswith(stem)].sort_values("ann_id")
        shapes = doc["shapes"]
        assert len(mine) == len(shapes)
        assert (mine["kind"] == "text").all()
        assert mine["text"].tolist() == [s["description"] for s in shapes]
        np.testing.assert_allclose(
            mine["score"], np.array([s.get("score") for s in shapes], dtype=float)
        )  # None → NaN
        corners = np.array([s["points"] for s in shapes])
        np.testing.assert_allclose(mine[["x0", "y0"]], corners.min(axis=1))
        np.testing.assert_allclose(mine[["x1", "y1"]], corners.max(axis=1))
    japan = a[a["name"] == "japan_1.jpg"].iloc[0]
    assert japan["text"] == "だいビようボ。未来は元気だよ"


def test_a_sample_can_be_renamed_for_export(tmp_path):
    ds = _one_image_ds(tmp_path)
    sid = int(ds.samples.sample_id[0])
    ds.rename_sample(sid, "renamed.png")
    ds.confirm([sid])
    assert hx.Dataset.open(ds.path).sample(sid)["name"] == "renamed.png"
    ds.export_yolo(tmp_path / "out")
    assert (tmp_path / "out" / "images" / "renamed.png").exists()
    for bad in ("a/b.png", "x.jpg", "", "l" * 300 + ".png"):
        with pytest.raises(hx.ValidationError):
            ds.rename_sample(sid, bad)


def test_a_turned_four_corner_rectangle_keeps_its_corners(tmp_path):
    ds = _one_image_ds(tmp_path)
    src = _labelme(
        tmp_path / "lm",
        '[{"label": "a", "shape_type": "rectangle", "points": '
        "[[20, 5], [35, 20], [20, 35], [5, 20]]}]",
    )
    ds.import_labelme(src)
    row = ds.annotations.iloc[0]
    assert row["kind"] == "polygon" and row["points"] == [[20, 5], [35, 20], [20, 35], [5, 20]]


def test_voc_truncated_and_occluded_are_kept_and_written_back(tmp_path):
    xml = """<annotation><filename>x.png</filename><size><width>60</width><height>40</height></size>
      <object><name>a</name><truncated>1</truncated><occluded>1</occluded><difficult>0</difficult>
        <bndbox><xmin>1</xmin><ymin>1</ymin><xmax>20</xmax><ymax>20</ymax></bndbox></object>
      <object><name>a</name><truncated>0</truncated><difficult>1</difficult>
        <bndbox><xmin>30</xmin><ymin>1</ymin><xmax>50</xmax><ymax>20</ymax></bndbox></object>
    </annotation>"""
    (tmp_path / "voc").mkdir()
    (tmp_path / "voc" / "x.xml").write_text(xml)
    ds = _one_image_ds(tmp_path)
    ds.import_voc(tmp_path / "voc")
    flags = ["truncated", "occluded", "difficult"]
    want = [[True, True, False], [False, False, True]]
    assert boxes(ds)[flags].values.tolist() == want
    ds.export_voc(tmp_path / "out")
    back = _one_image_ds(tmp_path / "b")
    back.import_voc(tmp_path / "out")
    assert boxes(back)[flags].values.tolist() == want


def test_imports_and_exports_of_many_files_show_progress(tmp_path, capsys):
    ds = hx.Dataset.create(tmp_path / "d", task="detection", labels=["a"])
    folder = tmp_path / "many"
    for i in range(200):
        write_image(folder / f"x{i:03d}.png", 40, 40, seed=i)
    ds.add_images(folder)
    (tmp_path / "yolo").mkdir()
    (tmp_path / "yolo" / "classes.txt").write_text("a\n")
    for i in range(200):
        (tmp_path / "yolo" / f"x{i:03d}.txt").write_text("0 0.5 0.5 0.5 0.5\n")
    capsys.readouterr()
    ds.import_yolo(tmp_path / "yolo")
    assert "reading yolo" in capsys.readouterr().err
    ds.export_voc(tmp_path / "out")
    assert "exporting to" in capsys.readouterr().err
    assert len(ds.annotations) == 200


def test_one_registry_drives_every_format_entry_point(tmp_path):
    from hardex_nb import formats

    assert sorted(formats.FORMATS) == sorted(FORMATS + ROTATED)
    ds = fixture_ds(tmp_path)
    for fmt in formats.FORMATS:  # the explicit methods are the generic ones, per format
        assert getattr(hx.Dataset, f"import_{fmt}").__doc__ and getattr(hx.Dataset, f"export_{fmt}")
    ds.import_annotations("labelme", BBOX / "data_annotated")
    with pytest.raises(FormatError, match="format 'tiff': use one of"):
        ds.import_annotations("tiff", BBOX / "data_annotated")
    with pytest.raises(FormatError, match="format 'tiff': use one of"):
        ds.export_annotations("tiff", tmp_path / "out")
    written = ds.export_annotations("voc", tmp_path / "voc")
    assert sorted(p.name for p in written) == sorted(
        p.name for p in (BBOX / "voc_annotations").glob("*.xml")
    )


def _dota_ds(tmp_path):
    """X-AnyLabeling's DOTA demo labels with a generated image of the demo's size."""
    src = tmp_path / "dota"
    shutil.copytree(FIXTURES / "xanylabeling_dota", src)
    (src / "images").mkdir()
    write_image(src / "images" / "demo_obb.png", 1111, 1182)
    return src, hx.Dataset.from_dota(src / "labelTxt", into=tmp_path / "ds")


def test_dota_rotated_boxes_keep_their_corners_through_every_format(tmp_path):
    src, ds = _dota_ds(tmp_path)
    lines = [
        line.split()
        for line in (src / "labelTxt" / "demo_obb.txt").read_text().splitlines()
        if line.strip()
    ]
    ann = ds.annotations.sort_values("ann_id")
    assert len(ann) == len(lines) == 40
    assert ann["label"].tolist() == [p[8] for p in lines]
    assert set(ann["label"]) == {"small-vehicle", "ship", "large-vehicle"} & set(ann["label"])
    given = np.array([[float(v) for v in p[:8]] for p in lines]).reshape(-1, 4, 2)
    from hardex_nb.geometry import corners

    mine = np.array([corners(a.x0, a.y0, a.x1, a.y1, a.angle) for a in ann.itertuples()])
    np.testing.assert_allclose(mine, given, atol=1e-6)  # X-AnyLabeling's boxes are rectangles
    assert ann["angle"].abs().gt(1).sum() > 30  # and really turned
    # DOTA → DOTA and labelme (X-AnyLabeling's rotation shape) → DOTA give the same corners
    ds.export_dota(tmp_path / "dota_out")
    again = [
        [float(v) for v in line.split()[:8]]
        for line in (tmp_path / "dota_out" / "labelTxt" / "demo_obb.txt").read_text().splitlines()
    ]
    np.testing.assert_allclose(np.array(again).reshape(-1, 4, 2), given, atol=1e-6)
    ds.export_labelme(tmp_path / "lm", images=False)
    doc = json.loads((tmp_path / "lm" / "demo_obb.json").read_text())
    assert {s["shape_type"] for s in doc["shapes"]} == {"rotation"}
    first = doc["shapes"][0]
    dx, dy = np.subtract(first["points"][1], first["points"][0])
    assert first["direction"] == pytest.approx(np.arctan2(dy, dx) % (2 * np.pi))
    shutil.copy(src / "images" / "demo_obb.png", tmp_path / "lm")
    back = hx.Dataset.from_labelme(tmp_path / "lm", into=tmp_path / "ds2").annotations
    np.testing.assert_allclose(
        back[["x0", "y0", "x1", "y1", "angle"]].to_numpy(),
        ann[["x0", "y0", "x1", "y1", "angle"]].to_numpy(),
        atol=1e-6,
    )
    # formats without rotation get the enclosing box, clipped to the image
    ds.export_voc(tmp_path / "voc", images=False)
    import defusedxml.ElementTree as ET

    root = ET.parse(tmp_path / "voc" / "Annotations" / "demo_obb.xml").getroot()
    ship = root.findall("object")[1]  # line 2: a ship reaching left of the image
    box = [float(ship.find("bndbox").find(k).text) for k in ("xmin", "ymin", "xmax", "ymax")]
    np.testing.assert_allclose(
        box, [0, given[1, :, 1].min(), given[1, :, 0].max(), given[1, :, 1].max()], atol=1e-6
    )


def test_dota_lines_that_are_not_objects_are_named(tmp_path):
    folder = tmp_path / "labels"
    folder.mkdir()
    write_image(tmp_path / "a.png", 60, 50)
    (folder / "a.txt").write_text(
        "imagesource:GoogleEarth\ngsd:0.14\n1 2 3 4 5 6 7 car\n"
        "1 2 3 4 5 6 7 x car 0\n1 1 9 1 9 9 1 9 car 2\n"
    )
    ds = hx.Dataset.create(tmp_path / "ds", task="detection")
    ds.add_images([tmp_path / "a.png"])
    with pytest.raises(FormatError) as err:
        ds.import_dota(folder)
    text = str(err.value)
    assert "a.txt: line 3: expected 'x1 y1 x2 y2 x3 y3 x4 y4 category [difficult]', got 8" in text
    assert "a.txt: line 4: 'x' is not a number" in text
    assert "a.txt: line 5: difficult '2' must be 0 or 1" in text
    assert ds.annotations.empty
