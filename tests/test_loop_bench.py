"""A small version of bench/bench_loop.py: the same code on fewer images, rounds and epochs.

The benchmark's numbers (README) come from the full run. Here its parts must hold, and the
loop must beat labeling by hand at equal seconds on a tiny set: a loop that never does
fails this test.
"""

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import bench_loop as bl
import bench_triage as bt


def test_manual_sizes_run_from_the_start_to_the_whole_pool():
    assert bl.manual_sizes(50, 1297, 7) == [50, 86, 148, 255, 438, 754, 1297]
    assert bl.manual_sizes(20, 20, 3) == [20]


def test_ratios_read_seconds_and_labels_off_the_curves():
    manual = {
        "curve": pd.Series([0.5, 0.7, 0.9], index=[150.0, 600.0, 3000.0]),
        "people": pd.Series([50, 200, 1000], index=[150.0, 600.0, 3000.0]),
    }
    loop = {
        "curve": pd.Series([0.5, 0.8, 0.95], index=[150.0, 400.0, 800.0]),
        "people": pd.Series([50, 150, 250], index=[150.0, 400.0, 800.0]),
    }
    r = bl.ratios(loop, manual)
    # 0.9 is reached two thirds of the way from 400 s to 800 s: 666.7 s, 216.7 labels
    assert r["time ratio"] == pytest.approx((400 + 400 * 2 / 3) / 3000)
    assert r["label ratio"] == pytest.approx((150 + 100 * 2 / 3) / 1000)
    never = {"curve": pd.Series([0.5, 0.6], index=[150.0, 300.0]), "people": loop["people"]}
    assert np.isnan(bl.ratios(never, manual)["time ratio"])


@pytest.mark.slow
def test_the_loop_beats_labeling_by_hand_at_equal_seconds_on_a_tiny_set(tmp_path):
    paths, y = bt.digits_images(tmp_path / "digits")
    test, pool = bt.split(len(paths), 200)
    pool = pool[:250]
    common = dict(start_per_class=5, per_round=30, rounds=2, epochs=6)
    manual = bl.classification_curve(paths, y, test, pool, "manual", 0, tmp_path, **common)
    loop = bl.classification_curve(paths, y, test, pool, "loop", 0, tmp_path, **common)
    for out in (manual, loop):
        assert not set(out["seen"]) & set(test.tolist())  # the test set stays unseen
        assert out["curve"].index.is_monotonic_increasing
    assert manual["people"].iloc[-1] == 250 and manual["curve"].index[-1] == 750.0
    # the loop's reviews cost between a verify (1.6 s) and a fix (4.6 s) each
    reviewed = loop["people"].iloc[-1] - 50
    spent = loop["curve"].index[-1] - 150.0
    assert reviewed == 60 and 1.6 * reviewed <= spent <= 4.6 * reviewed
    assert loop["noise"].iloc[-1] == 0  # a person checked every label it trained on
    # at the loop's seconds, labeling by hand (interpolated along its curve) is behind
    seconds, accuracy = loop["curve"].index[-1], loop["curve"].iloc[-1]
    by_hand = np.interp(seconds, manual["curve"].index, manual["curve"].to_numpy())
    assert accuracy > by_hand, (loop["curve"].to_dict(), manual["curve"].to_dict())
