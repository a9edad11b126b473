"""Training jobs as a notebook runs them: records, cancel, failure, determinism, modes."""

import json
import re

import numpy as np
import pandas as pd
import pytest
import torch
from synthetic import bars_dataset

import hardex_nb as hx
from hardex_nb import JobError, runlog
from hardex_nb.evaluation import evaluate_detections
from hardex_nb.jobs import Run, train, wrap_model


@pytest.mark.slow
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
    # 8 validation images (about 4 per label): recorded, with the wide interval it has
    assert info["kind"] == "trained" and info["val_images"] == 8
    assert info["rate_low"] <= info["avg_detection_rate"] <= info["rate_high"]
    assert info["rate_high"] - info["rate_low"] > 0.2
    note = json.loads(info["message"])["avg_detection_rate"]
    assert re.search(r"average detection rate \d\.\d\d \(95%: .*\) on 8 validation", note)
    assert info["params"]["epochs"] == 4 and (ds.path / info["weights_path"]).is_file()
    ds.set_split(ids[:20], "val")  # 10 per label: narrow enough to record, with its interval
    second = train(ds, epochs=4, batch_size=8, image_size=32, progress=False)
    assert second.version == "V2" and ds.runs["version"].tolist() == ["V1", "V2"]
    rate = ds.runs.iloc[1]
    assert rate["avg_detection_rate"] >= 0.9 and rate["val_images"] == 20
    assert rate["rate_high"] - rate["rate_low"] < info["rate_high"] - info["rate_low"]
    assert "on 20 validation images" in json.loads(rate["message"])["avg_detection_rate"]
    reloaded = Run.load(hx.Dataset.open(ds.path), "V1")
    pd.testing.assert_frame_equal(reloaded.predict(ids[40:]), pred)


@pytest.mark.slow
def test_same_seed_same_model(tmp_path):
    ds, ids, _ = bars_dataset(tmp_path)
    a = train(ds, epochs=2, batch_size=8, image_size=32, seed=7, progress=False)
    b = train(ds, epochs=2, batch_size=8, image_size=32, seed=7, progress=False)
    assert a.history == b.history
    np.testing.assert_array_equal(a.predict_proba(ids), b.predict_proba(ids))


def test_interrupting_the_cell_cancels_and_records(tmp_path):
    """A real SIGINT (what Jupyter's stop button sends the kernel) in a fresh process: the
    run is recorded cancelled, the KeyboardInterrupt reaches the caller, nothing else
    changes."""
    import subprocess
    import sys
    import textwrap
    from pathlib import Path

    script = textwrap.dedent(f"""
        import os, signal, sys, threading
        from pathlib import Path
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from synthetic import bars_dataset
        from hardex_nb.jobs import train
        ds, ids, _ = bars_dataset(Path({str(tmp_path)!r}), n=80, n_labeled=80)
        # as a Jupyter kernel does; a process started in the background inherits SIGINT
        # ignored, and Python then leaves it ignored
        signal.signal(signal.SIGINT, signal.default_int_handler)
        threading.Timer(1.0, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
        try:
            train(ds, epochs=500, batch_size=4, image_size=48, progress=False)
        except KeyboardInterrupt:
            sys.exit(3)
        sys.exit(0)
    """)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 3, done.stderr[-2000:]
    (folder,) = [p.parent for p in tmp_path.rglob("hardex.sqlite")]
    ds = hx.Dataset.open(folder)
    assert ds.runs.iloc[-1]["status"] == "cancelled"
    assert ds.runs.iloc[-1]["message"] == "interrupted by the user"
    assert len(ds.samples) == 80 and set(ds.samples["status"]) == {"labeled"}


@pytest.mark.slow
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


@pytest.mark.slow
def test_accurate_mode_adds_pseudo_labels(tmp_path):
    ds, ids, truth = bars_dataset(tmp_path, n=80, n_labeled=16)
    run = train(
        ds,
        epochs=10,
        batch_size=8,
        image_size=32,
        mode="accurate",
        progress=False,
        pseudo_threshold=0.7,
        val_fraction=0,
    )
    record = json.loads(run.info["message"])
    counts = record["pseudo_labeled"]
    assert len(counts) == 10 and max(counts) > 0  # FixMatch's sure images, every epoch
    # 64 unlabeled images, 3 per labeled one in a step of 8: an epoch shows them all
    assert record["steps_per_epoch"] == 3 and max(counts) <= 3 * 24
    assert set(ds.samples["status"]) == {"labeled", "unlabeled"}  # nothing written
    accuracy = (run.predict(ids[16:])["label"].to_numpy() == np.array(truth[16:])).mean()
    assert accuracy >= 0.8


@pytest.mark.slow
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
    gt = pd.DataFrame(
        [(sid, *o) for sid, objs in zip(held, truth[45:]) for o in objs],
        columns=["image_id", "label", "x0", "y0", "x1", "y1"],
    )
    pred = run.predict(held, threshold=0.05).rename(columns={"sample_id": "image_id"})
    report = evaluate_detections(gt, pred.astype({"image_id": "int64"}), image_ids=held)
    assert report.map50 > 0.5 and report.map > 0.2
    assert run.info["avg_detection_rate"] > 0.5


# -- auto-labeling, collect, evaluate ---------------------------------------------------------
@pytest.mark.slow
def test_auto_label_prerequisites_each_refused_clearly(tmp_path):
    ds, ids, _ = bars_dataset(tmp_path, n=20, n_labeled=8)
    run = train(ds, epochs=1, batch_size=4, image_size=32, progress=False)
    with pytest.raises(JobError, match=r"2 labels with 5 or more labeled images each.*'v': 4"):
        hx.auto_label(ds, run)
    ds.set_label(ids[8:12], "v")
    ds.set_label(ids[12:20:2], "h")
    ds.set_label(ids[13:20:2], "h")
    with pytest.raises(JobError, match="needs unlabeled images"):
        hx.auto_label(ds, run)
    ds.set_label(ids[18:], None)
    runlog.claim_job(ds, "auto_label")  # as another notebook would hold it
    with pytest.raises(JobError, match="another auto_label job is running"):  # one family
        hx.auto_label(ds, run)
    runlog.release_job(ds, "auto_label")
    assert len(hx.auto_label(ds, run).sample_ids) == 2


@pytest.mark.slow
def test_auto_label_classification_flags_hard_and_review_confirms(tmp_path):
    ds, ids, truth = bars_dataset(tmp_path, n=60, n_labeled=30)
    run = train(ds, epochs=3, batch_size=8, image_size=32, progress=False)
    watching = hx.Annotator(hx.Dataset.open(ds.path), ids[31])  # open before the job
    assert watching.probabilities == []
    result = hx.auto_label(ds, run)
    s = ds.samples.set_index("sample_id")
    assert set(s.loc[ids[30:], "status"]) == {"to_confirm"}
    watching.handle({"action": "poll"})  # the new record is read on the next poll
    assert watching.probabilities == result.table.set_index("sample_id").loc[ids[31], "top"]
    assert (s.loc[ids[30:], "label"].astype(str).to_numpy() == np.array(truth[30:])).mean() >= 0.9
    assert s.loc[ids[30:], "hard_score"].notna().all()
    assert set(result.hard_ids) == set(s.index[s["hard"]])
    for sid, reasons in zip(result.sample_ids, result.table["reasons"]):
        assert s.loc[sid, "hard_reasons"] == reasons
    similar = ds.similar_to(ids[31], k=5)
    assert len(similar) == 5 and ids[31] not in similar.sample_id.tolist()
    assert similar["distance"].is_monotonic_increasing
    # Review shows the model's top classes beside the auto-label, read back from the record
    review = hx.Review(hx.Dataset.open(ds.path))
    shown = review.sample_id
    top = result.table.set_index("sample_id").loc[shown, "top"]
    assert review.probabilities == top and top[0][0] == s.loc[shown, "label"]
    assert [p for _, p in top] == sorted((p for _, p in top), reverse=True) and top[0][1] > 0.3
    ds.confirm(ids[30:35])
    assert set(ds.samples.set_index("sample_id").loc[ids[30:35], "status"]) == {"labeled"}
    # provenance: the run key, its parameters and the fields written, loadable and deletable
    record = ds.results.set_index("key").loc[f"auto_label_{run.version}"]
    assert record["method"] == "auto_label" and record["version"] == run.version
    assert record["params"]["mode"] == "active" and "samples.hard_score" in record["fields"]
    again = hx.load_result(hx.Dataset.open(ds.path), result.key)  # as after a restart
    assert again.sample_ids == result.sample_ids and again.hard_ids == result.hard_ids
    assert again.table["reasons"].fillna("").tolist() == result.table["reasons"].tolist()
    ds.delete_result(result.key)
    assert result.key not in set(ds.results["key"])
    with pytest.raises(hx.ValidationError, match="no result"):
        hx.load_result(ds, result.key)
    with pytest.raises(hx.ValidationError, match="key="):
        hx.auto_label(ds, run, key="a key with spaces")


def test_auto_label_detection_writes_model_boxes(trained_detector, tmp_path):
    import shutil

    src, run, ids, truth = trained_detector
    # a copy of the trained dataset so the shared fixture stays as it is
    shutil.copytree(src.path, tmp_path / "copy")
    ds = hx.Dataset.open(tmp_path / "copy")
    run = Run.load(ds, run.version)
    result = hx.auto_label(ds, run, threshold=0.5)
    ann = ds.annotations
    model = ann[ann["origin"] == run.version]
    assert len(model) == len(result.annotations) > 0
    assert set(model["sample_id"]) <= set(ids[45:])
    assert model["score"].between(0, 1).all()
    assert set(model["hard_type"].astype(str)) <= {"none", "false_positive", "missed"}
    s = ds.samples.set_index("sample_id")
    assert set(s.loc[ids[45:], "status"]) == {"to_confirm"}
    # found boxes overlap the planted truth
    held = pd.DataFrame(
        [(sid, *o) for sid, objs in zip(ids[45:], truth[45:]) for o in objs],
        columns=["image_id", "label", "x0", "y0", "x1", "y1"],
    )
    confident = model[model["hard_type"] != "missed"].rename(columns={"sample_id": "image_id"})
    report = evaluate_detections(
        held,
        confident[["image_id", "label", "x0", "y0", "x1", "y1", "score"]].astype({"label": str}),
        image_ids=ids[45:],
    )
    assert report.map50 > 0.4
    prelabel_ds = hx.Dataset.open(tmp_path / "copy")
    assert prelabel_ds.runs["version"].tolist() == ["V1"]


@pytest.mark.slow
def test_evaluate_and_plot_runs(tmp_path):
    ds, ids, truth = bars_dataset(tmp_path)
    ds.set_split(ids[:10], "test")
    run = train(ds, epochs=3, batch_size=8, image_size=32, progress=False)
    report = hx.evaluate(ds, run)
    assert report.per_label["count"].sum() == 10  # the test split only
    assert report.accuracy >= 0.8
    assert report.confusion().to_numpy().sum() == 10
    # stored under a key, and the same report comes back in a new process's Dataset
    assert report.key == f"evaluate_{run.version}_test"
    assert ds.results.set_index("key").loc[report.key, "params"]["split"] == "test"
    again = hx.load_result(hx.Dataset.open(ds.path), report.key)
    pd.testing.assert_frame_equal(again.per_label, report.per_label)
    assert again.header() == report.header() and again.dataset is not None
    train(ds, epochs=1, batch_size=8, image_size=32, progress=False)
    hx.wrap_model(ds, lambda x: torch.full((len(x), 2), 0.5), image_size=32, name="rule")
    fig = hx.plot_runs(ds)  # the trained runs, each rate with its interval's error bar
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["V1", "V2"]
    bars = fig.axes[0].collections[0].get_segments()
    runs = ds.runs.iloc[:2]
    for seg, (_, row) in zip(bars, runs.iterrows()):
        assert seg[0][1] == pytest.approx(row["rate_low"]) and seg[1][1] == pytest.approx(
            row["rate_high"]
        )


@pytest.mark.slow
def test_collect_keeps_hard_examples_and_the_command_line(tmp_path):
    from hardex_nb.cli import main

    ds, ids, truth = bars_dataset(tmp_path / "a", n=40, n_labeled=40)
    run = train(ds, epochs=3, batch_size=8, image_size=32, progress=False)
    batch = tmp_path / "batch"
    batch.mkdir()
    from PIL import Image

    rng = np.random.default_rng(5)
    for i in range(6):  # pure noise: unlike anything trained on
        Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(batch / f"n{i}.png")
    for i in range(4):
        Image.open(ds.image_path(ids[i])).save(batch / f"known{i}.png")
    (batch / "broken.png").write_text("nope")
    into = hx.Dataset.create(tmp_path / "into", task="classification", labels=["v", "h"])
    report, result = hx.collect(run, batch, into=into)
    assert report.rejected[0][0] == "broken.png"
    names = set(into.samples["name"])
    assert len(names) == int(result.table["hard"].sum()) > 0
    assert sum(n.startswith("n") for n in names) >= 4  # the noise images are hard
    assert set(into.samples["status"]) == {"to_confirm"}
    assert (into.samples["source"] == "collect").all()
    everything = hx.Dataset.create(tmp_path / "all", task="classification", labels=["v", "h"])
    rc = main(
        [
            "collect",
            "--dataset",
            str(ds.path),
            "--run",
            run.version,
            "--images",
            str(batch),
            "--into",
            str(everything.path),
            "--all",
        ]
    )
    assert rc == 0 and len(hx.Dataset.open(everything.path).samples) == 10
    assert (
        main(
            [
                "collect",
                "--dataset",
                str(ds.path),
                "--run",
                "V9",
                "--images",
                str(batch),
                "--into",
                str(everything.path),
            ]
        )
        == 2
    )


def _fixed_detector(ds):
    """A rule 'detector' giving every 100×100 image the same three boxes (input pixels)."""

    def detect(batch):
        boxes = torch.tensor(
            [[10.0, 10.0, 40.0, 40.0], [60.0, 60.0, 90.0, 90.0], [50.0, 5.0, 70.0, 25.0]]
        )
        return [
            {
                "boxes": boxes,
                "labels": torch.tensor([1, 2, 1]),
                "scores": torch.tensor([0.9, 0.8, 0.7]),
            }
            for _ in batch
        ]

    return wrap_model(ds, detect, image_size=100, name="fixed-boxes")


def test_evaluate_honours_ignore_regions_and_difficult_boxes(tmp_path):
    from synthetic import write_image

    for i in range(3):
        write_image(tmp_path / "img" / f"{i}.png", 100, 100, seed=i)
    ds = hx.Dataset.create(tmp_path / "ds", task="detection", labels=["cat", "dog"])
    ids = ds.add_images(tmp_path / "img").added
    ds.add_box(ids[0], "cat", 10, 10, 40, 40)
    ds.add_ignore_region(ids[0], 55, 55, 95, 95)  # the dog box lands inside: not counted
    ds.add_box(ids[1], "cat", 10, 10, 40, 40, difficult=True)
    ds.add_box(ids[1], "dog", 60, 60, 90, 90)
    ds.add_box(ids[2], "dog", 60, 60, 90, 90)  # training image, not evaluated
    ds.set_split(ids[:2], "test")
    run = _fixed_detector(ds)
    report = hx.evaluate(ds, run)
    kinds = sorted(report.errors()["kind"])
    assert kinds == ["difficult", "false", "false", "ignored", "ignored", "tp", "tp"]
    t = report.per_label.set_index("label")
    assert t.loc["cat", "detection_rate"] == 1.0 and t.loc["cat", "precision"] == pytest.approx(
        1 / 3
    )
    assert t.loc["dog", "detection_rate"] == 1.0 and t.loc["dog", "precision"] == 1.0
    # per label, the highest-scored counted detection is right; the rest are ignored or later
    assert report.map50 == pytest.approx(1.0)
    header = report.header()
    assert f"model {run.version}" in header and "confidence threshold 0.3" in header
    assert "2 test images" in header and "avg detection rate 1.000" in header
    assert not report.notes
    again = hx.load_result(ds, report.key)  # rebuilt from the stored boxes, no model run
    pd.testing.assert_frame_equal(again.per_label, report.per_label)
    pd.testing.assert_frame_equal(again.errors(), report.errors())
    assert again.map50 == report.map50 and again.header() == header


def test_evaluate_on_training_images_warns_and_says_so(tmp_path):
    from synthetic import write_image

    for i in range(2):
        write_image(tmp_path / "img" / f"{i}.png", 100, 100, seed=i)
    ds = hx.Dataset.create(tmp_path / "ds", task="detection", labels=["cat", "dog"])
    ids = ds.add_images(tmp_path / "img").added
    for sid in ids:
        ds.add_box(sid, "cat", 10, 10, 40, 40)
    run = _fixed_detector(ds)
    with pytest.warns(UserWarning, match="overstate"):
        report = hx.evaluate(ds, run)
    assert "2 train images" in report.header() and "overstate" in report.notes[0]
    assert "overstate" in report._repr_html_()
    with pytest.raises(JobError, match="no labeled images in split 'val'"):
        hx.evaluate(ds, run, split="val")
    with pytest.raises(JobError, match="split='later'"):
        hx.evaluate(ds, run, split="later")


def _detection_set(tmp_path, n=14, labeled=12):
    from synthetic import write_image

    for i in range(n):
        write_image(tmp_path / "img" / f"{i}.png", 100, 100, seed=i)
    ds = hx.Dataset.create(tmp_path / "ds", task="detection", labels=["cat", "dog"])
    ids = ds.add_images(tmp_path / "img").added
    for sid in ids[:labeled]:
        ds.add_box(sid, "cat" if sid % 2 else "dog", 10, 10, 40, 40)
    return ds, ids


def _uncertain_detector(batch):
    """A sure box and an unsure one on every image, as a user's callable; both boxes are
    mirror-symmetric, so the flipped view agrees with the plain one."""
    return [
        {
            "boxes": torch.tensor([[30.0, 10.0, 70.0, 40.0], [35.0, 50.0, 65.0, 80.0]]),
            "labels": torch.tensor([1, 2]),
            "scores": torch.tensor([0.95, 0.35]),
        }
        for _ in batch
    ]


@pytest.mark.parametrize("mode", ["active", "prelabel"])
def test_wrapped_detector_callable_auto_labels(tmp_path, mode):
    ds, ids = _detection_set(tmp_path)
    run = wrap_model(ds, _uncertain_detector, image_size=100, name="rule")
    result = hx.auto_label(ds, run, mode=mode)
    assert sorted(result.sample_ids) == sorted(ids[12:])
    s = ds.samples.set_index("sample_id")
    assert (s.loc[ids[12:], "status"] == "to_confirm").all()
    model_boxes = ds.annotations[ds.annotations["origin"] == run.version]
    sure = model_boxes[model_boxes["score"] > 0.9]
    assert sorted(sure["sample_id"]) == sorted(ids[12:]) and set(sure["label"]) == {"cat"}
    unsure = model_boxes[model_boxes["score"] < 0.5]
    if mode == "prelabel":  # only what the model sees above the threshold
        assert unsure.empty
    else:  # below the threshold only as a hard example (a possible miss)
        assert (unsure["hard_type"] != "none").all()


@pytest.mark.parametrize("mode", ["active", "prelabel"])
def test_wrapped_classifier_callable_auto_labels(tmp_path, mode):
    ds, ids, truth = bars_dataset(tmp_path, n=30, n_labeled=20)

    def probabilities(x):
        bright = x.mean(dim=(1, 2, 3))
        return torch.stack([bright, 1 - bright], dim=1)

    run = wrap_model(ds, probabilities, image_size=32, name="prob-rule")
    result = hx.auto_label(ds, run, mode=mode)
    assert len(result.sample_ids) == 10
    labels = ds.samples.set_index("sample_id").loc[result.sample_ids, "label"]
    assert labels.notna().all() and set(labels) <= {"v", "h"}
    runs = ds.runs
    assert runs["kind"].tolist() == ["wrapped"]  # listed apart from trained runs
    if mode == "active":  # no features to spread over: the highest hard scores
        batch = hx.next_batch(ds, 4)
        top = result.table.sort_values("score", ascending=False, kind="stable")
        assert batch["sample_id"].tolist() == top["sample_id"].head(4).tolist()


def test_wrap_model_refuses_a_model_of_the_other_kind(tmp_path):
    ds, ids = _detection_set(tmp_path)
    with pytest.raises(
        JobError, match="returned a tensor of shape \\(1, 2\\), but this is a detection dataset"
    ):
        wrap_model(ds, lambda x: torch.ones(len(x), 2) / 2, image_size=100)
    cls, *_ = bars_dataset(tmp_path / "c", n=10, n_labeled=10)
    with pytest.raises(JobError, match="a classification dataset needs \\(N, 2\\) logits"):
        wrap_model(cls, _uncertain_detector, image_size=32)
    with pytest.raises(JobError, match="shape \\(1, 3\\).*one column per label"):
        wrap_model(cls, lambda x: torch.ones(len(x), 3) / 3, image_size=32)
    assert ds.runs.empty and cls.runs.empty  # nothing was recorded


def test_collect_with_a_detector_all_or_nothing_and_the_command(trained_detector, tmp_path, capsys):
    from PIL import Image

    from hardex_nb.cli import main

    ds, run, ids, truth = trained_detector
    batch = tmp_path / "batch"
    batch.mkdir()
    rng = np.random.default_rng(3)
    for i in range(4):
        Image.open(ds.image_path(ids[-1 - i])).save(batch / f"seen{i}.png")
        Image.fromarray(rng.integers(0, 255, (96, 96, 3), dtype=np.uint8)).save(
            batch / f"noise{i}.png"
        )
    into = hx.Dataset.create(tmp_path / "into", task="detection", labels=run.labels)
    report, result = hx.collect(run, batch, into=into)
    kept = into.samples
    assert len(kept) == len(report.added) == int(result.table["hard"].sum())
    assert set(kept["status"]) <= {"to_confirm"}
    assert set(result.table["image"]) == {p.name for p in batch.iterdir()}
    boxes = into.annotations
    assert set(boxes["origin"]) <= {run.version}
    assert set(boxes["sample_id"]) <= set(kept["sample_id"])
    cli_into = hx.Dataset.create(tmp_path / "cli", task="detection", labels=run.labels)
    rc = main(
        [
            "collect",
            "--dataset",
            str(ds.path),
            "--run",
            run.version,
            "--images",
            str(batch),
            "--into",
            str(cli_into.path),
        ]
    )
    out = capsys.readouterr()
    assert rc == 0 and "Traceback" not in out.err
    assert len(hx.Dataset.open(cli_into.path).samples) == len(kept)


def test_command_line_error_is_one_line(tmp_path, monkeypatch, capsys):
    """An error the package did not foresee still ends in one line and exit code 1."""
    from hardex_nb import cli, jobs

    ds, ids = _detection_set(tmp_path, n=4, labeled=0)

    def broken(*args, **kwargs):
        raise KeyError("boom\nsecond line")

    monkeypatch.setattr(jobs.Run, "load", classmethod(lambda cls, d, v: object()))
    monkeypatch.setattr(jobs, "collect", broken)
    rc = cli.main(
        [
            "collect",
            "--dataset",
            str(ds.path),
            "--run",
            "V1",
            "--images",
            str(tmp_path / "img"),
            "--into",
            str(ds.path),
        ]
    )
    err = capsys.readouterr().err
    assert rc == 1 and err.count("\n") == 1 and "unexpected KeyError" in err


def test_auto_label_keeps_what_another_process_did_while_it_ran(tmp_path):
    """While the job's model runs, a second process labels one image and deletes another;
    the job's later write keeps both edits and says what it skipped."""
    import subprocess
    import sys
    import textwrap

    ds, ids, truth = bars_dataset(tmp_path, n=30, n_labeled=20)
    unlabeled = ds.samples.query("status == 'unlabeled'")["sample_id"].tolist()
    labeled_by_hand, deleted = unlabeled[0], unlabeled[1]
    editor = textwrap.dedent(f"""
        import hardex_nb as hx
        ds = hx.Dataset.open({str(ds.path)!r})
        ds.set_label({labeled_by_hand}, "v")
        ds.delete_samples([{deleted}])
    """)
    edits, armed = [], []

    def model(x):  # a user's model; its first batch in the job waits for the other process
        if armed and not edits:
            edits.append(
                subprocess.run(
                    [sys.executable, "-c", editor], capture_output=True, text=True, timeout=120
                )
            )
        return torch.stack([torch.zeros(len(x)), torch.ones(len(x))], dim=1)  # always "h"

    run = wrap_model(ds, model, image_size=32, name="slow-rule")  # calls the model once
    armed.append(True)
    result = hx.auto_label(ds, run, mode="prelabel")
    assert edits and edits[0].returncode == 0, edits[0].stderr
    assert sorted(result.skipped) == sorted([labeled_by_hand, deleted])
    assert labeled_by_hand not in result.sample_ids and len(result.sample_ids) == 8
    for view in (ds, hx.Dataset.open(ds.path)):  # memory and disk agree
        s = view.samples.set_index("sample_id")
        assert (
            s.loc[labeled_by_hand, "label"] == "v" and s.loc[labeled_by_hand, "status"] == "labeled"
        )
        assert deleted not in s.index
        rest = s.loc[result.sample_ids]
        assert (rest["status"] == "to_confirm").all() and (rest["label"] == "h").all()


@pytest.mark.slow
@pytest.mark.parametrize("budget", [None, 1])
def test_auto_label_decodes_each_image_once(tmp_path, monkeypatch, budget):
    """Predictions, mirrored predictions and features come from one decode per image, in
    memory and streaming alike."""
    from pathlib import Path

    from synthetic import bars_dataset

    from hardex_nb.training import data as data_module

    ds, ids, _ = bars_dataset(tmp_path, n=40, n_labeled=24)
    run = hx.train(ds, epochs=1, batch_size=8, image_size=32, weights=None, progress=False)
    decoded = []
    real = data_module.load_resized

    def counting(path, size, **options):
        decoded.append(Path(path).name)
        return real(path, size, **options)

    monkeypatch.setattr(data_module, "load_resized", counting)
    monkeypatch.setattr(data_module, "MEMORY_BUDGET", budget)
    result = hx.auto_label(ds, run)
    assert len(result.sample_ids) == 16
    # the 16 unlabeled images and the 24 training images (features for reasons 2 and 3),
    # each decoded exactly once
    assert len(decoded) == len(set(decoded)) == 40


def test_the_training_error_names_the_labels(tmp_path):
    ds = hx.Dataset.create(tmp_path / "d", task="classification", labels=["a", "b"])
    with pytest.raises(hx.JobError, match=r"labels \['a', 'b'\]"):
        hx.train(ds, epochs=1, progress=False)


@pytest.mark.slow
def test_find_mislabels_flags_planted_label_errors_out_of_sample(tmp_path):
    """Six of 60 labels flipped; 3-fold out-of-sample probabilities find them, the flagged
    images go to review with reason 101 and keep the person's label."""
    from synthetic import bars_dataset

    ds, ids, truth = bars_dataset(tmp_path, n=60, n_labeled=60)
    flipped = ids[::10]
    for sid in flipped:
        ds.set_label(sid, "h" if ds.sample(sid)["label"] == "v" else "v")
    result = hx.find_mislabels(
        ds, folds=3, epochs=6, batch_size=8, image_size=32, weights=None, progress=False
    )
    assert len(result.table) == 60 and result.skipped == []
    stored = hx.load_result(ds, "find_mislabels")
    assert stored.flagged == result.flagged and len(stored.table) == 60
    assert ds.results.set_index("key").loc["find_mislabels", "params"]["folds"] == 3
    caught = set(result.flagged) & set(flipped)
    assert len(caught) >= 5, result.table.sort_values("score", ascending=False).head(10)
    assert len(caught) / max(len(result.flagged), 1) >= 0.6  # precision
    s = ds.samples.set_index("sample_id")
    for sid in result.flagged:
        assert s.loc[sid, "status"] == "to_confirm" and "101" in s.loc[sid, "hard_reasons"].split(
            "-"
        )
    assert (s.loc[flipped, "label"].astype(str) != [truth[ids.index(i)] for i in flipped]).all()


@pytest.mark.slow
def test_find_mislabels_finds_planted_box_errors_out_of_sample(tmp_path):
    """Detection: a box removed, a label swapped, a spurious box, each in its own images;
    3-fold held-out predictions flag those images for review, with the box in question."""
    from synthetic import boxes_dataset

    from hardex_nb.evaluation import box_iou

    ds, ids, truth = boxes_dataset(tmp_path, n=48, n_labeled=48)
    ann = ds.annotations
    two = [s for s in ids if (ann["sample_id"] == s).sum() == 2]
    planted = {}
    for sid in two[:3]:  # missing box (the image keeps its other box)
        row = ann[ann["sample_id"] == sid].iloc[0]
        ds.delete_annotations(int(row["ann_id"]))
        planted[sid] = ("missed", row[["x0", "y0", "x1", "y1"]].to_numpy(float))
    rest = [s for s in ids if s not in planted]
    for sid in rest[:3]:  # swapped label
        row = ann[ann["sample_id"] == sid].iloc[0]
        ds.update_annotation(int(row["ann_id"]), label="blue" if row["label"] == "red" else "red")
        planted[sid] = ("false_positive", row[["x0", "y0", "x1", "y1"]].to_numpy(float))
    for sid in rest[3:5]:  # spurious box
        ds.add_box(sid, "red", 2, 2, 14, 14)
        planted[sid] = ("false_positive", np.array([2, 2, 14, 14], float))
    result = hx.find_mislabels(
        ds, folds=3, epochs=8, batch_size=8, image_size=64, lr=1e-3, weights=None, progress=False
    )
    assert len(result.table) == 48 and result.skipped == []
    caught = set(result.flagged) & set(planted)
    assert len(caught) >= 6, result.table.sort_values("score", ascending=False).head(12)
    # the planted images rank high: among the 8 worst scores at least 4 (chance: 8 of 48)
    worst = result.table.nlargest(len(planted), "score")["sample_id"]
    assert len(set(worst) & set(planted)) >= 4, result.table.nlargest(12, "score")
    for sid in caught:
        kind, where = planted[sid]
        rows = result.boxes[
            (result.boxes["sample_id"] == sid) & (result.boxes["hard_type"] == kind)
        ]
        assert box_iou(where[None], rows[["x0", "y0", "x1", "y1"]].to_numpy()).max() >= 0.3, sid
    stored = hx.load_result(ds, "find_mislabels")
    pd.testing.assert_frame_equal(stored.boxes, result.boxes, check_dtype=False)
    s = ds.samples.set_index("sample_id")
    assert (s.loc[result.flagged, "status"] == "to_confirm").all()


def test_flag_for_review_skips_what_a_person_changed(cls_ds):
    ids = [int(i) for i in cls_ds.samples.sample_id[:2]]
    cls_ds.set_label(ids, "cat")
    read = pd.Series({ids[0]: "cat", ids[1]: "cat"})
    cls_ds.set_label(ids[1], "dog")  # a person relabels it meanwhile
    skipped = cls_ds.flag_for_review(read, reason=101, scores=pd.Series({ids[0]: 0.9, ids[1]: 0.8}))
    assert skipped == [ids[1]]
    s = hx.Dataset.open(cls_ds.path).samples.set_index("sample_id")
    assert s.loc[ids[0], "status"] == "to_confirm" and s.loc[ids[0], "hard_reasons"] == "101"
    assert s.loc[ids[1], "status"] == "labeled" and s.loc[ids[1], "label"] == "dog"


@pytest.mark.slow
def test_test_results_become_annotations_to_review(tmp_path):
    """The platform manual's path: train with a test split, then turn the test predictions
    above a threshold into labels to confirm; a labeled test image keeps its label."""
    from synthetic import bars_dataset

    ds, ids, truth = bars_dataset(tmp_path, n=60, n_labeled=40)
    test_ids = ids[40:50]
    ds.set_split(test_ids, "test")
    ds.set_split([ids[0]], "test")  # labeled: must stay as it is
    run = hx.train(
        ds, epochs=4, batch_size=8, image_size=32, weights=None, test=True, progress=False
    )
    out = ds.annotate_from_predictions(run.version, threshold=0.5)
    assert out["skipped"] == [ids[0]]
    assert set(out["written"]) <= set(test_ids) and len(out["written"]) >= 8
    s = ds.samples.set_index("sample_id")
    predicted = run.predict(out["written"]).set_index("sample_id")["label"]
    for sid in out["written"]:
        assert s.loc[sid, "status"] == "to_confirm" and s.loc[sid, "label"] == predicted[sid]
    assert s.loc[ids[0], "status"] == "labeled" and s.loc[ids[0], "label"] == truth[0]
    accuracy = np.mean([s.loc[i, "label"] == truth[ids.index(i)] for i in out["written"]])
    assert accuracy >= 0.8  # held-out images, never trained on


def test_detection_test_results_become_boxes_to_review(det_ds):
    sid, other = (int(i) for i in det_ds.samples.sample_id[:2])
    runlog.store_predictions(
        det_ds,
        "V1",
        pd.DataFrame(
            {
                "sample_id": [sid, sid, other],
                "label": ["cat", "dog", "cat"],
                "x0": [1.0, 5, 2],
                "y0": [1.0, 5, 2],
                "x1": [20.0, 30, 9],
                "y1": [20.0, 30, 9],
                "score": [0.9, 0.2, 0.7],
            }
        ),
    )
    det_ds.add_box(other, "dog", 1, 1, 10, 10)  # a person labeled this one
    out = det_ds.annotate_from_predictions("V1", threshold=0.5)
    assert out["written"] == [sid] and out["skipped"] == [other]
    boxes = det_ds.annotations_of(sid)
    assert boxes[["label", "origin", "score"]].values.tolist() == [["cat", "V1", 0.9]]
    assert det_ds.sample(sid)["status"] == "to_confirm"
    with pytest.raises(hx.ValidationError, match="stored no test predictions"):
        det_ds.annotate_from_predictions("V7")


@pytest.mark.slow
def test_long_jobs_show_progress(tmp_path, capsys):
    from synthetic import bars_dataset

    ds, ids, _ = bars_dataset(tmp_path, n=40, n_labeled=24)
    ds.set_split(ids[:6], "test")
    run = hx.train(ds, epochs=1, batch_size=8, image_size=32, weights=None, progress=False)
    capsys.readouterr()
    hx.evaluate(ds, run)
    assert f"evaluate {run.version}" in capsys.readouterr().err
    hx.auto_label(ds, run)
    assert f"auto-label {run.version}" in capsys.readouterr().err
    ds2, _, _ = bars_dataset(tmp_path / "b", n=40, n_labeled=24)
    run2 = hx.train(ds2, epochs=1, batch_size=8, image_size=32, weights=None, progress=False)
    capsys.readouterr()
    hx.auto_label(ds2, run2, progress=False)  # quiet when asked
    assert "auto-label" not in capsys.readouterr().err


@pytest.mark.slow
def test_an_empty_collect_batch_is_refused(tmp_path):
    from synthetic import bars_dataset

    ds, ids, _ = bars_dataset(tmp_path, n=30, n_labeled=20)
    run = hx.train(ds, epochs=1, batch_size=8, image_size=32, weights=None, progress=False)
    into = hx.Dataset.create(tmp_path / "into", task="classification", labels=["v", "h"])
    batch = tmp_path / "batch"
    batch.mkdir()
    (batch / "notes.txt").write_text("no images here")
    with pytest.raises(JobError, match="the batch holds no usable image"):
        hx.collect(run, batch, into=into)
    assert into.samples.empty


@pytest.mark.slow
def test_the_average_detection_rate_names_the_labels_validation_lacks(tmp_path):
    from synthetic import bars_dataset

    ds, ids, _ = bars_dataset(tmp_path, n=30, n_labeled=20)
    v_only = [i for i in ids[:20] if ds.sample(i)["label"] == "v"][:3]
    ds.set_split(v_only, "val")  # no 'h' image in validation
    run = hx.train(ds, epochs=1, batch_size=8, image_size=32, weights=None, progress=False)
    row = ds.runs.set_index("version").loc[run.version]
    assert 0 <= row["avg_detection_rate"] <= 1 and row["val_images"] == 3  # never a blank
    assert "['h'] have no validation image" in json.loads(row["message"])["avg_detection_rate"]


@pytest.mark.slow
def test_auto_label_trains_its_model_fast_or_accurate(tmp_path):
    """The documents' algorithm choice: "accurate" trains semi-supervised, and its record
    shows pseudo-labels were used."""
    from synthetic import bars_dataset

    ds, ids, _ = bars_dataset(tmp_path, n=60, n_labeled=30)
    result = hx.auto_label(
        ds,
        algorithm="accurate",
        epochs=4,
        batch_size=8,
        image_size=32,
        weights=None,
        pseudo_threshold=0.6,
        progress=False,
    )
    record = ds.runs.set_index("version").loc[result.run.version]
    assert record["params"]["mode"] == "accurate"
    assert sum(json.loads(record["message"])["pseudo_labeled"]) > 0
    assert len(result.sample_ids) == 30
    with pytest.raises(JobError, match="algorithm= and training options apply"):
        hx.auto_label(ds, result.run, algorithm="accurate")
    with pytest.raises(JobError, match="algorithm='best'"):
        hx.auto_label(ds, algorithm="best")


@pytest.mark.slow
def test_a_classifier_is_calibrated_on_its_validation_images_and_flags_by_it(tmp_path):
    """The run's temperature is fitted on its validation images, kept in its weights file,
    and auto-label flags as many images as the tempered probabilities expect wrong."""
    from hardex_nb import hard

    ds, ids, _ = bars_dataset(tmp_path, n=60, n_labeled=30)
    ds.set_split(ids[20:30], "val")
    run = train(ds, epochs=2, batch_size=8, image_size=32, progress=False)
    record = json.loads(run.info["message"])
    assert record["val_images"] == 10 and record["temperature"] == run.temperature >= 1.0
    truth = ds.samples.set_index("sample_id").loc[ids[20:30], "label"].map(run.labels.index)
    assert run.temperature == hard.fit_temperature(run.predict_proba(ids[20:30]), truth)
    assert hx.Run.load(ds, run.version).temperature == run.temperature
    result = hx.auto_label(ds, run, progress=False)
    tempered = hard.tempered(run.predict_proba(ids[30:]), run.temperature)
    assert int(result.table["hard"].sum()) >= hard.expected_errors(tempered)
    shown = np.array([row[0][1] for row in result.table["top"]])
    assert np.allclose(shown, tempered.max(1), atol=1e-4)  # Review shows what the flag used
