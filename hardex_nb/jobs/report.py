"""Evaluation of a run on a dataset, and the plot of the runs' records."""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np
import pandas as pd

from .. import runlog
from ..dataset import Dataset
from ..errors import JobError
from ..evaluation import evaluate_classification, evaluate_detections, evaluate_multilabel
from ..geometry import axis_aligned, polygon_area
from .results import frame, load_result, loads
from .run import Run, targets_for

__all__ = ["evaluate", "load_result", "plot_runs", "report_on"]


def _evaluation_ids(ds: Dataset, split: str | None) -> tuple[list[int], str]:
    """Labeled sample ids of ``split`` (default: test, else val, else train) and the split."""
    samples = ds.sample_rows()
    labeled = samples[samples["status"] == "labeled"]
    if split is None:
        split = next((c for c in ("test", "val") if (labeled["split"] == c).any()), "train")
    elif split not in ("train", "val", "test", "all"):
        raise JobError(f"split={split!r}: use 'test', 'val', 'train' or 'all'.")
    if split != "all":
        labeled = labeled[labeled["split"] == split]
    return labeled.index.tolist(), split


def evaluate(
    ds: Dataset,
    run: Run,
    *,
    split: str | None = None,
    iou_threshold: float = 0.5,
    score_threshold: float = 0.3,
    progress: bool = True,
    key: str | None = None,
):
    """Report on the labeled images of ``split`` (default: test, else val, else train).

    The report is recorded under ``key`` (default ``evaluate_<version>_<split>``) in
    ``ds.results``; ``hx.load_result(ds, key)`` gives it back after a kernel restart
    without running the model again. On the test split the run's predictions are also
    stored (``ds.predictions(version)``, as ``hx.train(..., test=True)`` stores them): the
    Annotator shows them on each test image with their scores.

    Detection: `hardex_nb.evaluation.DetectionReport`, equal to COCOeval (ignore
    regions are crowd regions covering every label, difficult boxes are ignored ground truth,
    a polygon's area is its own); classification:
    `hardex_nb.evaluation.ClassificationReport`. Image ids are sample ids. The
    header names the model version, the confidence threshold (0.3 by default, as in the
    platform manual), the average detection rate and the images evaluated on. When no test
    or val image is labeled, the report falls back to the training images, warns, and says
    so in its header: those numbers flatter the model.
    """
    import warnings

    if key is not None:
        runlog.check_key(key)
    ds.refresh()
    ids, used = _evaluation_ids(ds, split)
    if not ids:
        raise JobError(
            f"no labeled images in split {used!r} to evaluate on; label some, move "
            "some to 'test' with ds.set_split(ids, 'test'), or choose another split."
        )
    report, inputs = report_on(
        ds,
        run,
        ids,
        iou_threshold=iou_threshold,
        score_threshold=score_threshold,
        progress=f"evaluate {run.version}" if progress else None,
    )
    seen = used in ("train", "all")
    report.evaluated_on = f"{len(ids)} {used} images"
    if seen:
        note = (
            f"evaluated on {len(ids)} images the model may have trained on ({used} split): "
            "these numbers overstate it. Label images into the 'test' split "
            "(ds.set_split(ids, 'test')) and train again for an honest report."
        )
        report.notes.append(note)
        if split is None:
            warnings.warn(
                f"hx.evaluate: no labeled test or val images; {note}", UserWarning, stacklevel=2
            )
    report.dataset = ds  # for the report widgets
    if used == "test":  # the Annotator shows them on the test images, with their scores
        runlog.store_predictions(ds, run.version, _predictions_of(inputs))
    key = key or f"evaluate_{run.version}_{used}"
    runlog.record_result(
        ds,
        key,
        method="evaluate",
        version=run.version,
        params={
            "split": used,
            "iou_threshold": iou_threshold,
            "score_threshold": score_threshold,
            "images": len(ids),
        },
        fields=[],
        payload=inputs | {"evaluated_on": report.evaluated_on, "notes": list(report.notes)},
    )
    report.key = key
    return report


def report_on(
    ds: Dataset,
    run: Run,
    ids: list[int],
    *,
    iou_threshold: float = 0.5,
    score_threshold: float = 0.3,
    progress: str | None = None,
) -> tuple[Any, dict]:
    """The run's predictions on the labeled samples ``ids`` against their labels: the
    report, and its inputs as JSON-ready values (what `load_result` rebuilds it
    from).
    """
    samples = ds.sample_rows()
    report: Any
    if ds.task == "classification":
        truth = samples.loc[ids, "label"].astype(str).tolist()
        predicted = run.predict(ids, progress=progress)
        pred, scores = predicted["label"].tolist(), predicted["score"].astype(float).tolist()
        report = evaluate_classification(
            truth, pred, label_names=run.labels, image_ids=ids, scores=scores
        )
        inputs: dict = {"task": "classification", "truth": truth, "pred": pred, "scores": scores}
    elif ds.task == "multilabel":
        truth_rows = np.stack(targets_for(ds, ids, run.labels)) if ids else np.zeros((0, 0))
        probs = run.predict_proba(ids) if ids else np.zeros((0, len(run.labels)))
        report = evaluate_multilabel(
            truth_rows,
            probs,
            label_names=run.labels,
            thresholds=run.thresholds,
            image_ids=ids,
        )
        inputs = {
            "task": "multilabel",
            "truth": truth_rows.astype(int).tolist(),
            "probs": probs.tolist(),
            "thresholds": run.thresholds.tolist(),
        }
    else:
        ann = ds.annotation_rows()
        ann = ann[
            ann["sample_id"].isin(ids) & ann["kind"].isin(["box", "polygon", "text", "ignore"])
        ]
        ann = axis_aligned(ann, samples)
        area = [
            (polygon_area(json.loads(p)) if k == "polygon" and isinstance(p, str) else np.nan)
            for k, p in zip(ann["kind"], ann["points"])
        ]
        gt = pd.DataFrame(
            {
                "image_id": ann["sample_id"].astype("int64").to_numpy(),
                "label": ann["label"].where(ann["kind"] != "ignore", None).to_numpy(),
                "x0": ann["x0"].astype(float).to_numpy(),
                "y0": ann["y0"].astype(float).to_numpy(),
                "x1": ann["x1"].astype(float).to_numpy(),
                "y1": ann["y1"].astype(float).to_numpy(),
                "iscrowd": (ann["kind"] == "ignore").to_numpy(),
                "ignore": ann["difficult"].fillna(0).astype(bool).to_numpy(),
                "area": area,
            }
        )
        pred = run.predict(ids, threshold=0.01, progress=progress).rename(
            columns={"sample_id": "image_id"}
        )
        pred = pred.drop(columns=["image"]).astype({"image_id": "int64"})
        report = evaluate_detections(
            gt,
            pred,
            iou_threshold=iou_threshold,
            score_threshold=score_threshold,
            image_ids=ids,
            labels=run.labels,
        )
        inputs = {
            "task": "detection",
            "gt": gt.to_json(orient="split", index=False),
            "pred": pred.to_json(orient="split", index=False),
            "iou_threshold": iou_threshold,
            "score_threshold": score_threshold,
        }
    report.version = run.version
    inputs |= {"image_ids": [int(i) for i in ids], "labels": list(run.labels)}
    return report, inputs


def _predictions_of(inputs: dict) -> pd.DataFrame:
    """The predictions `report_on` made, as ``ds.predictions`` holds them."""
    if inputs["task"] == "classification":
        return pd.DataFrame(
            {"sample_id": inputs["image_ids"], "label": inputs["pred"], "score": inputs["scores"]}
        )
    if inputs["task"] == "multilabel":  # a row per label given
        probs, cut = np.asarray(inputs["probs"]), np.asarray(inputs["thresholds"])
        rows, cols = np.nonzero(probs.reshape(-1, len(cut)) >= cut[None, :])
        return pd.DataFrame(
            {
                "sample_id": [inputs["image_ids"][r] for r in rows],
                "label": [inputs["labels"][c] for c in cols],
                "score": probs.reshape(-1, len(cut))[rows, cols],
            }
        )
    pred = pd.read_json(io.StringIO(inputs["pred"]), orient="split")
    return pred.rename(columns={"image_id": "sample_id"})


@loads("evaluate")
def _evaluation_from_record(ds: Dataset, record: dict):
    """An evaluation report rebuilt from its stored predictions and ground truth."""
    payload = record["payload"]
    result: Any
    if payload["task"] == "multilabel":
        result = evaluate_multilabel(
            np.asarray(payload["truth"]).reshape(-1, len(payload["labels"])),
            np.asarray(payload["probs"]).reshape(-1, len(payload["labels"])),
            label_names=payload["labels"],
            thresholds=payload["thresholds"],
            image_ids=payload["image_ids"],
        )
    elif payload["task"] == "classification":
        result = evaluate_classification(
            payload["truth"],
            payload["pred"],
            label_names=payload["labels"],
            image_ids=payload["image_ids"],
            scores=payload.get("scores"),  # recorded since scores were added
        )
    else:
        result = evaluate_detections(
            frame(payload["gt"]),
            frame(payload["pred"]),
            iou_threshold=payload["iou_threshold"],
            score_threshold=payload["score_threshold"],
            image_ids=payload["image_ids"],
            labels=payload["labels"],
        )
    result.version = record["version"]
    result.evaluated_on = payload["evaluated_on"]
    result.notes = list(payload["notes"])
    result.dataset = ds
    return result


def plot_runs(ds: Dataset, *, last: int = 10):
    """Average detection rate (with its 95% interval as error bars) and duration of the
    last ``last`` trained runs (matplotlib Figure); wrapped models are not trained here
    and are left out.
    """
    import matplotlib.pyplot as plt

    runs = ds.runs
    runs = runs[(runs["status"] == "succeeded") & (runs["kind"] == "trained")].tail(last)
    fig, ax = plt.subplots(figsize=(6, 3))
    if runs.empty:
        ax.text(0.5, 0.5, "no finished runs yet", ha="center", va="center")
        ax.set_axis_off()
        return fig
    x = np.arange(len(runs))
    rate = runs["avg_detection_rate"].astype(float).to_numpy()
    low = runs["rate_low"].astype(float).to_numpy()
    high = runs["rate_high"].astype(float).to_numpy()
    ax.errorbar(
        x,
        rate,
        yerr=np.nan_to_num(np.stack([rate - low, high - rate])),
        marker="o",
        color="tab:blue",
        capsize=3,
        label="avg detection rate (95% interval)",
    )
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("avg detection rate")
    ax.set_xticks(x, runs["version"])
    ax2 = ax.twinx()
    ax2.bar(x, runs["duration"].astype(float), alpha=0.25, color="tab:gray", label="duration (s)")
    ax2.set_ylabel("duration (s)")
    ax.set_title(f"last {len(runs)} runs")
    fig.tight_layout()
    plt.close(fig)
    return fig
