"""Tiling advice, tile → untile, seams (tiling.py)."""

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

import hardex_nb as hx
from hardex_nb import tiling
from hardex_nb.jobs import wrap_model


def test_advice_thresholds():
    assert tiling.advise_ratio(900, 1000, 1000).action == "fine"
    assert tiling.advise_ratio(1000, 1000, 1000).action == "fine"
    assert tiling.advise_ratio(3000, 1000, 1000).action == "raise the input resolution"
    a = tiling.advise_ratio(12000, 4000, 2000)
    assert a.action == "tile" and a.grid[0] * a.grid[1] >= 12
    assert a.grid[1] > a.grid[0]  # more cuts along the long (horizontal) side


def test_tile_windows_rules():
    w = tiling.tile_windows(12000, 3000, 2, 4)
    assert len(w) == 8 and {(r, c) for r, c, *_ in w} == {
        (r, c) for r in range(2) for c in range(4)
    }
    assert max(x1 - x0 for *_, x0, _, x1, _ in w) == 3000
    tall = tiling.tile_windows(3000, 12000, 2, 4)  # portrait: the 4 goes down the long side
    assert max(r for r, *_ in tall) == 3 and max(c for _, c, *_ in tall) == 1
    with pytest.raises(hx.ValidationError, match="over 3000×5000"):
        tiling.tile_windows(30000, 10000, 1, 2)
    with pytest.raises(hx.ValidationError, match="under 30×30"):
        tiling.tile_windows(100, 100, 4, 4)


def test_tile_then_untile_gives_back_the_boxes():
    boxes = pd.DataFrame(
        {
            "label": ["a", "a", "b", "b"],
            "x0": [10.0, 90.0, 180.0, 50.0],
            "y0": [10.0, 40.0, 150.0, 95.0],
            "x1": [40.0, 130.0, 190.0, 70.0],
            "y1": [30.0, 60.0, 170.0, 110.0],
        }
    )
    windows = tiling.tile_windows(200, 200, 2, 2)
    parts = []
    for win in windows:
        inside = tiling.boxes_in_tile(boxes, win)
        inside[["x0", "x1"]] += win[2]
        inside[["y0", "y1"]] += win[3]
        parts.append(inside)
    back = tiling.untile(pd.concat(parts), seams_x=[100], seams_y=[100])
    cols = ["x0", "y0", "x1", "y1"]
    got = back.sort_values(cols)[["label", *cols]].reset_index(drop=True)
    want = boxes.sort_values(cols).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want)


def test_slivers_are_dropped():
    boxes = pd.DataFrame({"label": ["a"], "x0": [97.0], "y0": [10.0], "x1": [140.0], "y1": [30.0]})
    left, right = (tiling.boxes_in_tile(boxes, w) for w in tiling.tile_windows(200, 100, 1, 2))
    assert left.empty and len(right) == 1  # 3 px on the left is a sliver


def red_boxes(x: torch.Tensor):
    """A rule-based detector: one box around each image's red pixels."""
    out = []
    for img in x:
        red = (img[0] > 0.7) & (img[1] < 0.3)
        ys, xs = torch.nonzero(red, as_tuple=True)
        if len(xs):
            box = torch.tensor(
                [[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], dtype=torch.float32
            )
            out.append({"boxes": box, "labels": torch.tensor([1]), "scores": torch.tensor([0.9])})
        else:
            out.append(
                {
                    "boxes": torch.zeros(0, 4),
                    "labels": torch.zeros(0, dtype=torch.int64),
                    "scores": torch.zeros(0),
                }
            )
    return out


def test_dataset_tiling_and_a_box_across_a_seam_is_found_once(tmp_path):
    arr = np.zeros((400, 800, 3), np.uint8)
    arr[180:220, 380:440] = [255, 0, 0]  # crosses the vertical seam at x=400
    Image.fromarray(arr).save(tmp_path / "big.png")
    ds = hx.Dataset.create(tmp_path / "ds", task="detection", labels=["defect"])
    sid = ds.add_images([tmp_path / "big.png"], for_tiling=True).added[0]
    ds.add_box(sid, "defect", 380, 180, 440, 220)
    into = hx.Dataset.create(tmp_path / "tiles", task="detection", labels=[])
    tiles = hx.tile(ds, 1, 2, into=into)
    s = into.samples.set_index("sample_id")
    assert len(tiles) == 2 and s["parent_id"].tolist() == [sid, sid]
    assert s["tile_col"].tolist() == [0, 1] and (s["width"] == 400).all()
    a = into.annotations.sort_values("sample_id")
    assert a[["x0", "x1"]].to_numpy().tolist() == [[380, 400], [0, 40]]
    run = wrap_model(ds, red_boxes, image_size=200, name="red-rule")
    found = run.predict_tiled([sid], 1, 2)
    assert len(found) == 1
    np.testing.assert_allclose(
        found[["x0", "y0", "x1", "y1"]].iloc[0], [380, 180, 440, 220], atol=4
    )


def test_tiling_is_for_detection_and_sources_of_at_least_30_by_60(tmp_path):
    from synthetic import write_image

    import hardex_nb as hx
    from hardex_nb import ImageError, ValidationError, media

    cls = hx.Dataset.create(tmp_path / "c", task="classification", labels=["a"])
    cls.add_images([write_image(tmp_path / "big.png", 200, 100)])
    with pytest.raises(ValidationError, match="tiling is for detection datasets"):
        hx.tile(cls, 2, 2, into=hx.Dataset.create(tmp_path / "c2", task="classification"))
    det = hx.Dataset.create(tmp_path / "d", task="detection", labels=["a"])
    det.add_images([write_image(tmp_path / "small.png", 40, 40)])
    with pytest.raises(
        ValidationError, match=r"at least 30×60 px; too small: \['small.png \(40×40\)'\]"
    ):
        hx.tile(det, 2, 2, into=hx.Dataset.create(tmp_path / "d2", task="detection"))
    with pytest.raises(ImageError, match="too small to tile"):
        media.check_image(tmp_path / "small.png", for_tiling=True)


def test_predict_tiled_takes_any_predict_fn_and_joins_a_box_cut_by_the_seam():
    """tiling.predict_tiled with a plain callable (no model): a box that straddles the
    seam of a 1×2 grid comes back whole, in full-image pixels; a bad frame is refused."""
    from PIL import Image

    image = Image.new("RGB", (200, 100))
    seen = []

    def predict_fn(crops):
        seen.extend(c.size for c in crops)
        # the left tile sees x 80..100 of the box, the right tile x 0..30 (full 80..130)
        return pd.DataFrame(
            {
                "image": [0, 1],
                "label": ["car", "car"],
                "x0": [80.0, 0.0],
                "y0": [20.0, 20.0],
                "x1": [100.0, 30.0],
                "y1": [60.0, 60.0],
                "score": [0.9, 0.8],
            }
        )

    out = tiling.predict_tiled(predict_fn, image, 1, 2)
    assert seen == [(100, 100), (100, 100)]
    assert len(out) == 1
    assert out[["x0", "y0", "x1", "y1"]].iloc[0].tolist() == [80.0, 20.0, 130.0, 60.0]
    with pytest.raises(hx.ValidationError, match="score"):
        tiling.predict_tiled(lambda crops: pd.DataFrame({"image": [0]}), image, 1, 2)
