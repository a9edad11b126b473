"""Training jobs as a notebook runs them: records, cancel, failure, determinism, modes."""

import _thread
import json
import threading

import numpy as np
import pandas as pd
import pytest
import torch
from synthetic import bars_dataset

import hardex_nb as hx
from hardex_nb import JobError
from hardex_nb.evaluation import evaluate_detections
from hardex_nb.jobs import Run, train, wrap_model


def test_classifier_learns_a_separable_task_and_is_recorded(tmp_path):
    ds, ids, truth = bars_dataset(tmp_path)
    run = train(ds, epochs=4, batch_size=8, image_size=32, progress=False)
    pred = run.predict(ids[40:])
    accuracy = (pred["label"].to_numpy() == np.array(truth[40:])).mean()
    assert accuracy >= 0.9  # chance is 0.5
    assert list(pred.columns) == ["sample_id", "image", "label", "score"]
    info = ds.runs.iloc[0]
    assert info["version"] == "V1" and info["status"] == "succeeded"
    assert info["labeled_images"] == 40 and info["total_images"] == 60 and info["label_count"] == 2
    assert info["duration"] > 0 and info["finished"] > info["started"]
    assert info["avg_detection_rate"] >= 0.9
    assert info["params"]["epochs"] == 4 and (ds.path / info["weights_path"]).is_file()
    second = train(ds, epochs=1, batch_size=8, image_size=32, progress=False)
    assert second.version == "V2" and ds.runs["version"].tolist() == ["V1", "V2"]
    reloaded = Run.load(hx.Dataset.open(ds.path), "V1")
    pd.testing.assert_frame_equal(reloaded.predict(ids[40:]), pred)


def test_same_seed_same_model(tmp_path):
    ds, ids, _ = bars_dataset(tmp_path)
    a = train(ds, epochs=2, batch_size=8, image_size=32, seed=7, progress=False)
    b = train(ds, epochs=2, batch_size=8, image_size=32, seed=7, progress=False)
    assert a.history == b.history
    np.testing.assert_array_equal(a.predict_proba(ids), b.predict_proba(ids))


def test_interrupting_the_cell_cancels_and_records(tmp_path):
    ds, ids, _ = bars_dataset(tmp_path, n=80, n_labeled=80)
    before = ds.samples
    timer = threading.Timer(1.0, _thread.interrupt_main)
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        train(ds, epochs=500, batch_size=4, image_size=48, progress=False)
    timer.cancel()
    assert ds.runs.iloc[-1]["status"] == "cancelled"
    assert hx.Dataset.open(ds.path).runs.iloc[-1]["status"] == "cancelled"
    pd.testing.assert_frame_equal(ds.samples, before)


def test_nan_loss_fails_the_run_clearly(tmp_path):
    ds, ids, _ = bars_dataset(tmp_path)
    before = (ds.samples, ds.annotations)
    with pytest.raises(JobError, match=r"V1 failed: the loss became (nan|inf).*Lower the learning"):
        train(ds, epochs=3, batch_size=8, image_size=32, lr=1e30, progress=False)
    row = ds.runs.iloc[0]
    assert row["status"] == "failed" and "loss became" in row["message"]
    pd.testing.assert_frame_equal(ds.samples, before[0])


def test_refuses_without_labels(tmp_path):
    ds, ids, _ = bars_dataset(tmp_path, n_labeled=0)
    with pytest.raises(JobError, match="Label some images first"):
        train(ds, progress=False)
    assert ds.runs.empty


def test_accurate_mode_adds_pseudo_labels(tmp_path):
    ds, ids, truth = bars_dataset(tmp_path, n=80, n_labeled=12)
    run = train(ds, epochs=6, batch_size=8, image_size=32, mode="accurate", progress=False,
                pseudo_threshold=0.8, val_fraction=0)
    counts = json.loads(run.info["message"])["pseudo_labeled"]
    assert len(counts) == 3 and max(counts) > 0  # second half of the epochs
    assert set(ds.samples["status"]) == {"labeled", "unlabeled"}  # nothing written
    accuracy = (run.predict(ids[12:])["label"].to_numpy() == np.array(truth[12:])).mean()
    assert accuracy >= 0.8


def test_test_split_predictions_are_stored(tmp_path):
    ds, ids, _ = bars_dataset(tmp_path)
    ds.set_split(ids[50:], "test")
    run = train(ds, epochs=1, batch_size=8, image_size=32, progress=False, test=True)
    stored = ds.predictions(run.version)
    assert sorted(stored["sample_id"]) == ids[50:]


def test_wrapped_callable_prelabels(tmp_path):
    ds, ids, truth = bars_dataset(tmp_path)

    def rule(x):  # vertical bar: more brightness in the middle columns
        mid = x[:, :, :, 14:18].mean(dim=(1, 2, 3))
        row = x[:, :, 14:18, :].mean(dim=(1, 2, 3))
        return torch.stack([mid > row, mid <= row], dim=1).float()

    run = wrap_model(ds, rule, image_size=32, name="bar-rule")
    assert ds.runs.iloc[-1]["model"] == "bar-rule"
    pred = run.predict(ids)
    assert (pred["label"].to_numpy() == np.array(truth)).mean() == 1.0


def test_detector_finds_planted_rectangles(trained_detector):
    ds, run, ids, truth = trained_detector
    held = ids[45:]
    gt = pd.DataFrame([(sid, *o) for sid, objs in zip(held, truth[45:]) for o in objs],
                      columns=["image_id", "label", "x0", "y0", "x1", "y1"])
    pred = run.predict(held, threshold=0.05).rename(columns={"sample_id": "image_id"})
    report = evaluate_detections(gt, pred.astype({"image_id": "int64"}), image_ids=held)
    assert report.map50 > 0.5 and report.map > 0.2
    assert run.info["avg_detection_rate"] > 0.5
