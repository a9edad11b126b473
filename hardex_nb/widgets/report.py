"""ConfusionMatrix and ReportView: evaluation reports that open the samples behind them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import traitlets

from ..errors import ValidationError
from ..evaluation import PERCENT_COLUMNS
from ..media import thumbnail_bytes
from ..tide import tide_of
from . import cells
from ._base import (
    STATIC,
    BadMessage,
    Thumbnails,
    Widget,
    bundle,
    int_in,
    reject_unknown,
    text_in,
)
from .annotator import OpensAnnotator

if TYPE_CHECKING:
    from ..dataset import Dataset

MAX_ERROR_IMAGES = 12
CURVE_POINTS = 120  # a drawn PR curve keeps at most this many of its points
TIDE_NAMES = {
    "cls": "classification",
    "loc": "localization",
    "both": "classification and localization",
    "dupe": "duplicate",
    "bkg": "background",
    "missed": "missed",
}


def _dataset_of(report, ds):
    ds = ds if ds is not None else getattr(report, "dataset", None)
    if ds is None:
        raise TypeError("pass ds=... (the dataset the report's image ids are sample ids of)")
    return ds


ERROR_KINDS = ("missed", "false")  # what makes a detection image one "with errors"


class ConfusionMatrix(OpensAnnotator, Widget):
    """Counts of true × predicted labels (with background for detection); click a cell to
    see the samples behind it as thumbnails, and a thumbnail to open it in an Annotator
    below (``annotator=`` links one).
    """

    _esm = bundle("confusion.js")
    _css = STATIC / "hardex.css"
    names: traitlets.List[Any] = traitlets.List().tag(sync=True)
    matrix: traitlets.List[Any] = traitlets.List().tag(sync=True)
    cell: traitlets.List[Any] = traitlets.List().tag(sync=True)
    cell_ids: traitlets.List[Any] = traitlets.List().tag(sync=True)
    cell_names: traitlets.List[Any] = traitlets.List().tag(sync=True)

    def __init__(self, report, *, ds: Dataset | None = None, annotator=None, **kwargs):
        reject_unknown("ConfusionMatrix", kwargs, set())
        self.report = report
        self.ds = _dataset_of(report, ds)
        self.annotator = annotator
        self._thumbs = Thumbnails(self.ds)
        table = report.confusion()
        super().__init__(
            names=[str(n) for n in table.index], matrix=table.to_numpy().astype(int).tolist()
        )
        self._start_column()

    def _on_open(self, content: dict) -> None:
        sid = int_in(content, "sample_id")
        if sid not in self.cell_ids:
            raise BadMessage(f"image {sid} is not in the cell shown")
        self._open_in_annotator(sid, self.ds.require_samples(self.cell_ids))

    def _on_cell(self, content: dict) -> None:
        true, predicted = text_in(content, "true"), text_in(content, "predicted")
        if true not in self.names or predicted not in self.names:
            raise BadMessage(f"no cell ({true!r}, {predicted!r}) in this matrix")
        ids = [int(i) for i in self.report.samples_in_cell(true, predicted)]
        self.cell = [true, predicted]
        self.cell_ids = ids
        names = self.ds.sample_rows()["name"]
        shown = [i for i in ids if i in names.index][:60]
        self.cell_names = [str(names.loc[i]) for i in shown]
        self.send({"type": "thumbs", "ids": shown}, [self._thumbs.get(i) for i in shown])


class ReportView(OpensAnnotator, Widget):
    """The per-label table with warnings; click a label to see its error details: the
    images with an error for it (detection: a missed or false box; classification: a wrong
    class), with correct, missed and false boxes drawn in distinct colors. Click an image
    to open it in an Annotator below (``annotator=`` links one).
    """

    _esm = bundle("report.js")
    _css = STATIC / "hardex.css"
    table: traitlets.List[Any] = traitlets.List().tag(sync=True)
    summary = traitlets.Dict().tag(sync=True)
    header = traitlets.Unicode("").tag(sync=True)
    notes = traitlets.List(traitlets.Unicode()).tag(sync=True)
    label = traitlets.Unicode("").tag(sync=True)
    errors: traitlets.List[Any] = traitlets.List().tag(sync=True)
    error_images = traitlets.Int(0).tag(sync=True)  # images with an error for the label
    # the table's columns of fractions (rates, AP): shown as 1.000, never as a count's "1"
    fractions: traitlets.List[Any] = traitlets.List().tag(sync=True)
    # shown as percentages (share), as the manual's report does
    percents: traitlets.List[Any] = traitlets.List().tag(sync=True)
    # per table row, {column: warning} for the cells that carry a warning icon
    cell_warnings: traitlets.List[Any] = traitlets.List().tag(sync=True)
    # per label, its precision-recall curve (at most CURVE_POINTS points), the point at the
    # report's confidence threshold and the F1-optimal one; empty without scores
    curves: traitlets.List[Any] = traitlets.List().tag(sync=True)
    # the reliability diagram's bins and ECE; empty without scores
    calibration = traitlets.Dict().tag(sync=True)
    # TIDE's breakdown (detection): AP, and per error type its name, dAP and count
    tide = traitlets.Dict().tag(sync=True)

    def __init__(self, report, *, ds: Dataset | None = None, annotator=None, **kwargs):
        reject_unknown("ReportView", kwargs, set())
        self.report = report
        self.ds = _dataset_of(report, ds)
        self.annotator = annotator
        rows = report.per_label.astype(object).where(report.per_label.notna(), None)
        summary = {
            k: float(getattr(report, k))
            for k in ("map", "map50", "map75", "accuracy")
            if hasattr(report, k)
        }
        fractions = [c for c in report.per_label.columns if report.per_label[c].dtype.kind == "f"]
        warned = report.cell_warnings() if hasattr(report, "cell_warnings") else None
        super().__init__(
            table=rows.to_dict(orient="records"),
            fractions=fractions,
            percents=[c for c in PERCENT_COLUMNS if c in report.per_label.columns],
            cell_warnings=[]
            if warned is None
            else [{c: m for c, m in row.items() if m} for row in warned.to_dict(orient="records")],
            summary=summary,
            header=report.header() if hasattr(report, "header") else "",
            notes=list(getattr(report, "notes", [])),
        )
        self.curves, self.calibration = _curves(report), _calibration(report)
        has_frames = getattr(report, "inputs", None) is not None
        self._tide = tide_of(report) if has_frames else None
        self.tide = _tide_summary(self._tide)
        self._start_column()
        self._error_ids: list[int] = []

    def _on_label(self, content: dict) -> None:
        label = text_in(content, "label")
        if label not in [r["label"] for r in self.table]:
            raise BadMessage(f"label {label!r} is not in this report")
        err = self.report.errors(label)
        if "kind" in err:  # detection: only images where something was missed or false
            wrong = err.loc[err["kind"].isin(ERROR_KINDS), "image_id"].unique()
            err = err[err["image_id"].isin(wrong)]
        self._show(label, err)

    def _on_tide(self, content: dict) -> None:
        """The images behind one TIDE count: each error's prediction drawn as false, the
        object it is about (or the missed object) as missed.
        """
        kind = text_in(content, "error")
        if self._tide is None or kind not in TIDE_NAMES:
            raise BadMessage(f"no TIDE error type {kind!r} in this report")
        rows = self._tide.errors[self._tide.errors["type"] == kind]
        title = f"{TIDE_NAMES[kind]} errors (TIDE)"
        if content.get("label") is not None:  # one label's row of the per-label table
            label = text_in(content, "label")
            if label not in self._tide.per_label.index:
                raise BadMessage(f"label {label!r} is not in this report's TIDE breakdown")
            rows = rows[rows["label"].astype(str) == label]
            title = f"{TIDE_NAMES[kind]} errors of {label} (TIDE)"
        pred = rows.dropna(subset=["x0"]).assign(kind="false")
        gt = rows.dropna(subset=["gt_x0"])
        gt = gt.assign(
            kind="missed", x0=gt["gt_x0"], y0=gt["gt_y0"], x1=gt["gt_x1"], y1=gt["gt_y1"]
        ).assign(score=np.nan)
        boxes = pd.concat([pred, gt], ignore_index=True)
        self._show(title, boxes[["image_id", "kind", "x0", "y0", "x1", "y1", "score"]])

    def _show(self, label: str, err: pd.DataFrame) -> None:
        """Send the first images of ``err`` (rows per image, with boxes for detection)."""
        stored = self.ds.sample_rows()
        groups = [(i, g) for i, g in err.groupby("image_id", sort=True) if int(i) in stored.index]
        self._error_ids = [int(i) for i, _ in groups]
        images = []
        for image_id, group in groups[:MAX_ERROR_IMAGES]:
            boxes = []
            if "kind" in group:
                for r in group.itertuples(index=False):
                    boxes.append(
                        {
                            "kind": r.kind,
                            "x0": r.x0,
                            "y0": r.y0,
                            "x1": r.x1,
                            "y1": r.y1,
                            "score": cells.number(r.score),
                        }
                    )
            row = stored.loc[int(image_id)]
            images.append(
                {
                    "sample_id": int(image_id),
                    "name": row["name"],
                    "width": int(row["width"]),
                    "height": int(row["height"]),
                    "boxes": boxes,
                    "predicted": str(group["predicted"].iloc[0]) if "predicted" in group else None,
                }
            )
        self.label = label
        self.error_images = len(groups)
        self.errors = images
        buffers = [
            thumbnail_bytes(self.ds.image_path(img["sample_id"]), size=480, quality=85)
            for img in images
        ]
        self.send({"type": "images", "ids": [i["sample_id"] for i in images]}, buffers)

    def _on_open(self, content: dict) -> None:
        sid = int_in(content, "sample_id")
        if sid not in self._error_ids:
            raise BadMessage(f"image {sid} is not among the errors shown")
        self._open_in_annotator(sid, self._error_ids)


def _point(row) -> dict:
    return {k: cells.number(row[k]) for k in ("threshold", "precision", "recall", "f1")}


def _curves(report) -> list[dict]:
    """Each label's PR curve for the widget: thinned to ``CURVE_POINTS`` evenly spaced
    points (always keeping both ends and the marked ones), the report threshold's point and
    the F1-optimal one.
    """
    if not hasattr(report, "pr_curve"):
        return []
    curve, best = report.pr_curve(), report.best_thresholds()
    out = []
    for name in report.labels:
        points = curve[curve["label"] == name].reset_index(drop=True)
        if not len(points):
            out.append({"label": name, "points": [], "at": None, "best": None})
            continue
        kept = points["threshold"] >= report.score_threshold
        at = points[kept].iloc[-1] if kept.any() else None
        b = best.loc[name]
        marks = {int(points["f1"].idxmax())} | (
            {int(kept[kept].index[-1])} if kept.any() else set()
        )
        keep = sorted(
            set(np.linspace(0, len(points) - 1, min(CURVE_POINTS, len(points))).round().astype(int))
            | marks
        )
        out.append(
            {
                "label": name,
                "points": [
                    [cells.number(r.recall), cells.number(r.precision)]
                    for r in points.iloc[keep].itertuples()
                ],
                "at": None if at is None else _point(at),
                "best": None if np.isnan(b["threshold"]) else _point(b),
            }
        )
    return out


def _calibration(report) -> dict:
    try:
        table, ece = report.calibration()
    except ValidationError:  # a classification report without scores
        return {}
    return {
        "ece": cells.number(ece),
        "bins": [
            {k: cells.number(v) for k, v in row.items()} for row in table.to_dict(orient="records")
        ],
    }


def _tide_summary(tide) -> dict:
    if tide is None:
        return {}
    counts = tide.counts
    per_label = tide.per_label
    return {
        "ap": cells.number(tide.ap),
        "iou": tide.pos_threshold,
        "errors": [
            {"type": k, "name": n, "dAP": cells.number(tide.main[k]), "count": int(counts[k])}
            for k, n in TIDE_NAMES.items()
        ],
        # the same within each label: what fixing one type there alone gives its AP
        "labels": [
            {
                "label": str(name),
                "ap": cells.number(row["ap"]),
                "errors": [
                    {"type": k, "dAP": cells.number(row[f"d_{k}"]), "count": int(row[f"n_{k}"])}
                    for k in TIDE_NAMES
                ],
            }
            for name, row in per_label.iterrows()
        ],
    }
