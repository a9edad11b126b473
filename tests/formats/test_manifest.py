"""ModelArts manifests."""

import json

import pytest
from format_data import BBOX, fixture_ds, objects_of, one_image_ds, rich_dataset, zip_of
from synthetic import write_image

import hardex_nb as hx
from hardex_nb import FormatError


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
    z = zip_of(tmp_path / "m.zip", [("m.manifest", line.encode())])
    ds = one_image_ds(tmp_path)
    with pytest.raises(FormatError, match="annotation-loc: .* points outside the archive"):
        ds.import_manifest(z)
    assert ds.annotations.empty


def test_from_voc_and_from_manifest(tmp_path):
    voc = hx.Dataset.from_voc(
        BBOX / "voc_annotations", into=tmp_path / "v", images=BBOX / "data_annotated"
    )
    reference = fixture_ds(tmp_path)
    reference.import_labelme(BBOX / "data_annotated")
    assert objects_of(voc) == objects_of(reference)
    voc.set_split([int(voc.samples.sample_id[0])], "test")
    voc.export_manifest(tmp_path / "m")
    again = hx.Dataset.from_manifest(tmp_path / "m" / "output.manifest", into=tmp_path / "m2")
    assert objects_of(again) == objects_of(reference)


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
    assert "line 1: 2 labels ['cat', 'dog'] on one image (multi-label)" in str(err.value)
    assert "line 3: source 'b.png' is also on line 2" in str(err.value)
