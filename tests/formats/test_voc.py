"""PASCAL VOC XML (LabelImg, ModelArts)."""

import shutil

import numpy as np
import pandas as pd
import pytest
from format_data import BBOX, XML_BOMB, XML_EXTERNAL, boxes, fixture_ds, one_image_ds
from synthetic import FIXTURES, write_image

import hardex_nb as hx
from hardex_nb import FormatError


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


@pytest.mark.parametrize("text", [XML_BOMB, XML_EXTERNAL])
def test_voc_refuses_entities(tmp_path, text):
    ds = fixture_ds(tmp_path)
    (tmp_path / "v").mkdir()
    (tmp_path / "v" / "2011_000003.xml").write_text(text)
    with pytest.raises(FormatError, match="refused unsafe XML"):
        ds.import_voc(tmp_path / "v")


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
    ds = one_image_ds(tmp_path)
    result = ds.import_voc(tmp_path / "voc")
    assert sorted(ds.annotations["label"].astype(str)) == ["bag", "boots"]
    kinds = " ".join(result.skipped)
    for tag in ("<point>", "<line>", "<dashed>", "<circle>", "<polyline>", "<part>"):
        assert tag in kinds


def test_voc_truncated_and_occluded_are_kept_and_written_back(tmp_path):
    xml = """<annotation><filename>x.png</filename><size><width>60</width><height>40</height></size>
      <object><name>a</name><truncated>1</truncated><occluded>1</occluded><difficult>0</difficult>
        <bndbox><xmin>1</xmin><ymin>1</ymin><xmax>20</xmax><ymax>20</ymax></bndbox></object>
      <object><name>a</name><truncated>0</truncated><difficult>1</difficult>
        <bndbox><xmin>30</xmin><ymin>1</ymin><xmax>50</xmax><ymax>20</ymax></bndbox></object>
    </annotation>"""
    (tmp_path / "voc").mkdir()
    (tmp_path / "voc" / "x.xml").write_text(xml)
    ds = one_image_ds(tmp_path)
    ds.import_voc(tmp_path / "voc")
    flags = ["truncated", "occluded", "difficult"]
    want = [[True, True, False], [False, False, True]]
    assert boxes(ds)[flags].values.tolist() == want
    ds.export_voc(tmp_path / "out")
    back = one_image_ds(tmp_path / "b")
    back.import_voc(tmp_path / "out")
    assert boxes(back)[flags].values.tolist() == want
