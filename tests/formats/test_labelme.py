"""labelme and X-AnyLabeling JSON."""

import json

import numpy as np
import pandas as pd
from format_data import (
    BBOX,
    CLS,
    INSTANCES,
    INSTANCES_COCO,
    instances_ds,
    labelme_file,
    objects_of,
    one_image_ds,
)
from synthetic import FIXTURES

import hardex_nb as hx


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


def test_labelme_groups_and_ignore_polygons_match_labelmes_own_coco_converter(tmp_path):
    """labelme's instance-segmentation example, read as labelme JSON, gives the objects that
    labelme's own labelme2coco wrote from it: the four sofa pieces sharing group_id 0 are
    one sofa, the __ignore__ polygon is an ignore region (not a label)."""
    from_json = instances_ds(tmp_path, "json")
    result = from_json.import_labelme(INSTANCES)
    assert result.unmatched == [] and "__ignore__" not in from_json.label_names
    from_coco = instances_ds(tmp_path, "coco")
    from_coco.import_coco(INSTANCES_COCO)
    mine, theirs = objects_of(from_json), objects_of(from_coco)
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


def test_from_coco_and_from_labelme_build_the_same_dataset_from_labelmes_files(tmp_path):
    from_coco = hx.Dataset.from_coco(INSTANCES_COCO, into=tmp_path / "c", images=INSTANCES)
    from_json = hx.Dataset.from_labelme(INSTANCES, into=tmp_path / "j")
    for ds in (from_coco, from_json):
        assert ds.task == "detection" and len(ds.samples) == 3
        assert (ds.samples["status"] == "labeled").all()
    mine, theirs = objects_of(from_json), objects_of(from_coco)
    assert (
        sorted(mine) == sorted(theirs) == ["2011_000003.jpg", "2011_000006.jpg", "2011_000025.jpg"]
    )
    assert from_coco.import_result.unmatched == []


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


def test_a_turned_four_corner_rectangle_keeps_its_corners(tmp_path):
    ds = one_image_ds(tmp_path)
    src = labelme_file(
        tmp_path / "lm",
        '[{"label": "a", "shape_type": "rectangle", "points": '
        "[[20, 5], [35, 20], [20, 35], [5, 20]]}]",
    )
    ds.import_labelme(src)
    row = ds.annotations.iloc[0]
    assert row["kind"] == "polygon" and row["points"] == [[20, 5], [35, 20], [20, 35], [5, 20]]
