"""DOTA rotated boxes."""

import json
import shutil

import numpy as np
import pytest
from format_data import dota_ds
from synthetic import write_image

import hardex_nb as hx
from hardex_nb import FormatError


def test_dota_rotated_boxes_keep_their_corners_through_every_format(tmp_path):
    src, ds = dota_ds(tmp_path)
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
