"""A small version of bench/bench_triage.py: the same code on fewer images, rounds and epochs.

The benchmark's numbers (README) come from the full run; here its parts must hold: the test
images are never selected, the curve has a point per round, the efficiency ratio reads a
curve right, and planted detection errors are found where they were planted.
"""

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import bench_triage as bt

from hardex_nb import hard


def test_efficiency_interpolates_along_the_curve():
    curve = pd.Series([0.6, 0.8, 0.9], index=[50, 80, 110])
    assert bt.efficiency(curve, 0.7) == pytest.approx(65)
    assert bt.efficiency(curve, 0.5) == 50
    assert np.isnan(bt.efficiency(curve, 0.95))
    assert bt.flag_quality(np.array([1, 1, 0, 0], bool), np.array([1, 0, 1, 0], bool)) == (
        0.5,
        0.5,
    )


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["next_batch", "hard score"])
def test_a_short_learning_curve_never_selects_a_test_image(tmp_path, strategy):
    paths, y = bt.digits_images(tmp_path / "digits")
    test, pool = bt.split(len(paths), 100)
    pool = pool[:200]
    out = bt.learning_curve(
        paths, y, test, pool, strategy, 0, tmp_path, per_round=10, rounds=1, epochs=3
    )
    assert list(out["curve"].index) == [50, 60]
    assert out["curve"].between(0, 1).all()
    assert len(out["chosen"]) == 10 and not set(out["chosen"]) & set(test.tolist())
    precision, recall, share = out["flag"]
    assert 0 <= precision <= 1 and 0 <= recall <= 1
    assert share < 1  # the selective flag never marks every image


def test_planted_detection_errors_are_found_where_they_were_planted(tmp_path):
    """With predictions equal to the truth, every planted error shows as a flagged box at
    its place, and the images with errors rank first."""
    _, objects = bt.scenes(tmp_path, 40, seed=3)
    given, planted = bt.plant(objects, 0.5, seed=3)
    assert {kind for kind, _ in planted.values()} == set(bt.ERRORS)

    def frame(objs, score=None):
        out = {
            "boxes": np.array([o[1:] for o in objs], float).reshape(-1, 4),
            "labels": np.array([o[0] for o in objs], int),
        }
        return out | ({"scores": np.full(len(objs), score)} if score else {})

    boxes, images = hard.detection_label_issues(
        [frame(g) for g in given], [frame(o, 0.9) for o in objects]
    )
    k = len(planted)
    assert bt.precision_at(images["score"].to_numpy(), set(planted), k) == 1.0
    assert set(images.index[images["hard"]]) == set(planted)
    expected = {
        "missing box": {"missed"},
        "swapped label": {"false_positive", "missed"},
        "shifted box": {"false_positive", "missed"},
        "spurious box": {"false_positive"},
    }
    for i, (kind, where) in planted.items():
        flagged = boxes[(boxes["image"] == i) & (boxes["hard_type"] != "none")]
        assert set(flagged["hard_type"]) == expected[kind], (i, kind)
        at = hard.box_iou(np.array([where], float), flagged[["x0", "y0", "x1", "y1"]].to_numpy())
        assert at.max() >= 0.3, (i, kind)
