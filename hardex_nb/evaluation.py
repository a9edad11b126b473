"""Evaluation: per-label detection rate, precision, AP, confusion and error details.

Pure array/DataFrame functions (no Dataset). Box AP and AR follow pycocotools' COCOeval
exactly: crowd regions (matched by intersection over the detection's area, any number of
times, never a miss), ignored ground truth (VOC ``difficult``: never a miss, and a detection
on it is neither right nor wrong), the three area ranges with their own ignore rules, 1 / 10 /
100 detections per image and label, 101 recall points and COCOeval's greedy matching with its
tie rules. IoU is computed from ``(x, y, w, h)`` as COCOeval computes it, so a pair that
COCOeval scores as exactly 0.8 is 0.8 here. The matching and the accumulation run compiled
(`hardex_nb.coco_kernels`, numba, on every core), over the (image, label) groups that hold
both boxes and predictions; the error details, the confusion pairs and the PR curve are
built when first asked for.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .errors import ValidationError

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
RECALL_POINTS = np.linspace(0.0, 1.0, 101)
AREA_RANGES = {
    "all": (0.0, 1e5**2),
    "small": (0.0, 32.0**2),
    "medium": (32.0**2, 96.0**2),
    "large": (96.0**2, 1e5**2),
}
MAX_DETS = (1, 10, 100)
#: COCOeval.stats in its order: (name, IoU index or None for the mean, area range, max dets).
COCO_STATS = (
    ("ap", None, "all", 100),
    ("ap50", 0, "all", 100),
    ("ap75", 5, "all", 100),
    ("ap_small", None, "small", 100),
    ("ap_medium", None, "medium", 100),
    ("ap_large", None, "large", 100),
    ("ar1", None, "all", 1),
    ("ar10", None, "all", 10),
    ("ar100", None, "all", 100),
    ("ar_small", None, "small", 100),
    ("ar_medium", None, "medium", 100),
    ("ar_large", None, "large", 100),
)
BACKGROUND = "background"
DEFAULT_SCORE_THRESHOLD = 0.3  # the report's confidence threshold, as in the platform manual
# The warning rules reproduce every cell of the platform manual's example report (tests hold
# its 27 cells): a count of 22 warns and 37 does not, a share of 1.0% warns and 2.3% does not,
# an AP of 0.846 warns and 0.941 does not.
MIN_COUNT = 30  # fewer annotations than this: "too few"
MIN_SHARE = 0.02  # fewer than 2% of all objects: "low share"
MIN_AP = 0.9  # COCO AP below this: "low AP"
MIN_DETECTION_RATE = 0.5  # fewer than half the objects found at the report's thresholds

BOX = ["x0", "y0", "x1", "y1"]
XYWH = ["x", "y", "w", "h"]


# -- input checks -----------------------------------------------------------------------------
@dataclass
class _Boxes:
    """Checked input rows: COCO ``(x, y, w, h)`` boxes, image and label codes."""

    frame: pd.DataFrame  # image_id, label (+ score) as given, one row per box
    xywh: np.ndarray  # (N, 4) float64
    score: np.ndarray  # (N,) float64; zeros for ground truth
    crowd: np.ndarray  # (N,) bool: crowd / ignore region
    ignore: np.ndarray  # (N,) bool: ignored ground truth (crowd or difficult)
    area: np.ndarray  # (N,) float64
    xyxy: np.ndarray  # (N, 4) float64: x0, y0, x1, y1 as given, or x + w, y + h
    _by_score: np.ndarray | None = field(default=None, repr=False)

    def by_score(self) -> np.ndarray:
        """Rows by falling score, input order on ties (sorted once: a subset taken after
        keeps its share of the order).
        """
        if self._by_score is None:
            from .coco_kernels import by_falling_score

            self._by_score = by_falling_score(self.score)
        return self._by_score

    def take(self, rows: np.ndarray, frame: bool = True) -> _Boxes:
        """These rows; with ``frame=False`` only what a matching pass reads (the frame and
        the corner boxes are left whole).
        """
        rows = np.asarray(rows)
        by_score = None
        if self._by_score is not None and np.all(rows[1:] > rows[:-1]):
            inside = np.zeros(len(self.score), dtype=bool)
            inside[rows] = True
            position = np.cumsum(inside) - 1
            by_score = position[self._by_score[inside[self._by_score]]]
        return _Boxes(
            self.frame.iloc[rows].reset_index(drop=True) if frame else self.frame,
            self.xywh[rows],
            self.score[rows],
            self.crowd[rows],
            self.ignore[rows],
            self.area[rows],
            self.xyxy[rows] if frame else self.xyxy,
            by_score,
        )

    def plain(self) -> _Boxes:
        """The same boxes with no crowd or ignore flags."""
        none = np.zeros(len(self.score), dtype=bool)
        return _Boxes(
            self.frame, self.xywh, self.score, none, none, self.area, self.xyxy, self._by_score
        )


def _flag(frame: pd.DataFrame, column: str, name: str) -> np.ndarray:
    if column not in frame.columns:
        return np.zeros(len(frame), dtype=bool)
    values = frame[column]
    if values.isna().any():
        raise ValidationError(
            f"{name}: column {column!r} row {int(np.flatnonzero(values.isna())[0])} "
            "is empty; use True/False or 1/0."
        )
    try:
        out = values.to_numpy(dtype="float64")
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"{name}: column {column!r} must hold True/False or 1/0.") from exc
    bad = ~np.isin(out, (0.0, 1.0))
    if bad.any():
        raise ValidationError(
            f"{name}: column {column!r} row {int(np.flatnonzero(bad)[0])} is "
            f"{values.iloc[int(np.flatnonzero(bad)[0])]!r}; use True/False or 1/0."
        )
    return out.astype(bool)


def _check_frame(frame: pd.DataFrame, name: str, *, score: bool, box_format: str) -> _Boxes:
    coords = BOX if box_format == "xyxy" else XYWH
    if not isinstance(frame, pd.DataFrame):
        raise ValidationError(
            f"{name}: expected a DataFrame with columns image_id, label, "
            + ", ".join(coords)
            + (", score" if score else "")
        )
    need = ["image_id", "label", *coords] + (["score"] if score else [])
    missing = [c for c in need if c not in frame.columns]
    if missing:
        hint = (
            " (box_format='xywh' reads x, y, w, h)"
            if box_format == "xywh"
            else " (COCO boxes: pass box_format='xywh' with columns x, y, w, h)"
        )
        raise ValidationError(f"{name}: missing column(s) {missing}{hint}.")
    frame = frame.reset_index(drop=True)
    values = frame[coords + (["score"] if score else [])].to_numpy(dtype="float64")
    bad = ~np.isfinite(values).all(axis=1)
    if bad.any():
        raise ValidationError(
            f"{name}: row {int(np.flatnonzero(bad)[0])} has a NaN or infinite coordinate or score."
        )
    if box_format == "xyxy":
        xyxy = values[:, :4]  # a view: the checked values are kept, not copied again
        x0, y0, x1, y1 = xyxy.T
        xywh = np.column_stack([x0, y0, x1 - x0, y1 - y0])
        wrong = "x1 < x0 or y1 < y0"
    else:
        xywh = values[:, :4]
        x, y, w, h = xywh.T
        xyxy = np.column_stack([x, y, x + w, y + h])
        wrong = "a negative w or h"
    flipped = (xywh[:, 2] < 0) | (xywh[:, 3] < 0)
    if flipped.any():
        raise ValidationError(f"{name}: row {int(np.flatnonzero(flipped)[0])} has {wrong}.")
    crowd = _flag(frame, "iscrowd", name)
    ignore = crowd | _flag(frame, "ignore", name)
    area = xywh[:, 2] * xywh[:, 3]
    if "area" in frame.columns:
        given = frame["area"].to_numpy(dtype="float64")
        area = np.where(np.isfinite(given), given, area)
    out = frame[["image_id", "label"] + (["score"] if score else [])]
    labeled = out["label"].notna()
    if (~labeled & ~crowd).any():
        raise ValidationError(
            f"{name}: row {int(np.flatnonzero(~labeled & ~crowd)[0])} has no "
            "label; only crowd / ignore regions (iscrowd=True) may leave it empty."
        )
    if not pd.api.types.is_string_dtype(out["label"]) or not labeled.all():
        out = out.assign(label=out["label"].where(~labeled, out["label"].astype(str)))
    return _Boxes(
        out, xywh, values[:, 4] if score else np.zeros(len(out)), crowd, ignore, area, xyxy
    )


def box_iou(a: np.ndarray, b: np.ndarray, *, crowd: np.ndarray | None = None) -> np.ndarray:
    """``(N, M)`` IoU of boxes ``a (N, 4)`` and ``b (M, 4)`` (x0, y0, x1, y1), computed as
    pycocotools does from (x, y, w, h). Where ``crowd (M,)`` is true, the union is the area of
    the ``a`` box (COCO's crowd IoU).
    """
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    a = np.column_stack([a[:, :2], a[:, 2:] - a[:, :2]])
    b = np.column_stack([b[:, :2], b[:, 2:] - b[:, :2]])
    c = np.zeros((1, len(b)), dtype=bool) if crowd is None else np.asarray(crowd, bool)[None]
    return _pairwise_iou(a[None], b[None], c)[0]


def _pairwise_iou(d: np.ndarray, g: np.ndarray, crowd: np.ndarray) -> np.ndarray:
    """``(G, D, M)`` IoU between ``(x, y, w, h)`` boxes ``d (G, D, 4)`` and ``g (G, M, 4)``,
    operation for operation as pycocotools' ``bbIou``; ``crowd (G, M)`` uses the detection's
    area as the union.
    """
    dx, dy, dw, dh = (d[..., k][:, :, None] for k in range(4))
    gx, gy, gw, gh = (g[..., k][:, None, :] for k in range(4))
    w = np.minimum(dw + dx, gw + gx) - np.maximum(dx, gx)
    h = np.minimum(dh + dy, gh + gy) - np.maximum(dy, gy)
    inter = np.where((w > 0) & (h > 0), w * h, 0.0)
    d_area = dw * dh
    union = np.where(crowd[:, None, :], d_area, d_area + gw * gh - inter)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(inter > 0, inter / union, 0.0)


# -- greedy matching, per (image, label) group ---------------------------------------------------
@dataclass
class _Matches:
    """COCO greedy matching results per row, for ``A`` area ranges and ``T`` IoU thresholds."""

    order: np.ndarray  # (Nk,) detection rows within max_dets: by group key, score, input order
    rank: np.ndarray  # (Nk,) each kept row's rank by score within its group
    matched: np.ndarray  # (A, T, Nd) bool: matched to some ground truth
    ignored: np.ndarray  # (A, T, Nd) bool: matched to ignored ground truth, or unmatched
    #                          and outside the area range: neither right nor wrong
    gt_ignored: np.ndarray  # (A, Ng) bool: crowd, difficult or outside the area range
    gt_dt: np.ndarray  # (T, Ng) a detection row matched to each gt there, or -1
    dt_iou: np.ndarray  # (Nd,) IoU with the partner at the first threshold, else best IoU
    gt_iou: np.ndarray  # (Ng,) the same for ground truth


def _rank_within(sorted_groups: np.ndarray) -> np.ndarray:
    """Position of each element within its run of equal values (input sorted by group)."""
    if len(sorted_groups) == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_groups)) + 1]
    lengths = np.diff(np.r_[starts, len(sorted_groups)])
    return np.arange(len(sorted_groups)) - np.repeat(starts, lengths)


def _stable_by(rows: np.ndarray, keys: np.ndarray, n_keys: int) -> np.ndarray:
    """``rows`` ordered by ``keys[rows]`` (integers below ``n_keys``), stable: a counting sort
    while the keys are few for the rows, else numpy's.
    """
    if n_keys <= 4 * len(rows) + 1024:
        from .coco_kernels import stable_by_key

        return stable_by_key(rows, keys, n_keys)
    return rows[np.argsort(keys[rows], kind="stable")]


def _match(
    gt: _Boxes,
    key_gt: np.ndarray,
    dt: _Boxes,
    key_dt: np.ndarray,
    thresholds: np.ndarray,
    ranges: Sequence[tuple[float, float]],
    max_dets: int | None,
) -> _Matches:
    """Match detections to ground truth within groups (same key), highest score first, as
    COCOeval's ``evaluateImg`` does for every area range and IoU threshold
    (`hardex_nb.coco_kernels.greedy_match`). Only groups holding both are visited.
    """
    from .coco_kernels import greedy_match, threads  # numba: on the first evaluation

    T, A, Nd, Ng = len(thresholds), len(ranges), len(key_dt), len(key_gt)
    lo = np.array([r[0] for r in ranges])[:, None]
    hi = np.array([r[1] for r in ranges])[:, None]
    gt_ign = gt.ignore[None] | (gt.area[None] < lo) | (gt.area[None] > hi)  # (A, Ng)
    dt_out = (dt.area[None] < lo) | (dt.area[None] > hi)  # (A, Nd)
    n_keys = int(max(key_dt.max(initial=-1), key_gt.max(initial=-1))) + 1
    order = _stable_by(dt.by_score(), key_dt, n_keys)  # input order on ties
    rank = _rank_within(key_dt[order])
    if max_dets is not None:
        keep = rank < max_dets
        order, rank = order[keep], rank[keep]
    # (A, T, Nd) views of (Nd, A, T) arrays: a detection's flags lie together
    matched = np.zeros((Nd, A, T), dtype=bool).transpose(1, 2, 0)
    ignored = np.repeat(dt_out.T[:, :, None], T, axis=2)  # a writable copy
    out = _Matches(
        order,
        rank,
        matched,
        ignored.transpose(1, 2, 0),
        gt_ign,
        np.full((T, Ng), -1, dtype=np.int64),
        np.zeros(Nd),
        np.zeros(Ng),
    )
    g_rows = _stable_by(np.arange(Ng), key_gt, n_keys)
    groups, g_start, g_count = np.unique(key_gt[g_rows], return_index=True, return_counts=True)
    d_keys = key_dt[order]
    d_start = np.searchsorted(d_keys, groups, side="left")
    d_count = np.searchsorted(d_keys, groups, side="right") - d_start
    both = d_count > 0
    greedy_match(
        order,
        d_start[both],
        d_count[both],
        g_rows,
        g_start[both],
        g_count[both],
        dt.xywh,
        gt.xywh,
        gt.crowd,
        gt_ign,
        np.minimum(np.asarray(thresholds, dtype=np.float64), 1 - 1e-10),
        out.matched.transpose(2, 0, 1),  # the (Nd, A, T) arrays underneath
        out.ignored.transpose(2, 0, 1),
        out.gt_dt,
        out.dt_iou,
        out.gt_iou,
        threads(),
    )
    return out


# -- COCO precision / recall tables -------------------------------------------------------------
def _coco_table(
    m: _Matches, dt: _Boxes, det_image, det_label, gt_label, names: list[str]
) -> pd.DataFrame:
    """The twelve COCOeval statistics per label (NaN where COCOeval has -1), from
    `hardex_nb.coco_kernels.accumulate`.
    """
    from .coco_kernels import accumulate, threads

    ranges = list(AREA_RANGES)
    combos = list(dict.fromkeys((ranges.index(area), md) for _, _, area, md in COCO_STATS))
    counted = np.stack(
        [np.bincount(gt_label[~ign], minlength=len(names)) for ign in m.gt_ignored]
    ).astype(np.int64)
    # by label, falling score, then image and the order within it (COCOeval's order)
    kept = np.zeros(len(dt.score), dtype=bool)
    kept[m.order] = True
    rank = np.zeros(len(dt.score), dtype=np.int64)
    rank[m.order] = m.rank
    if np.all(det_image[1:] >= det_image[:-1]):  # images in order: input order breaks ties
        rows = dt.by_score()[kept[dt.by_score()]]
        rows = _stable_by(rows, det_label, len(names))
    else:
        rows = m.order[np.lexsort((-dt.score[m.order], det_label[m.order]))]  # stable
    starts = np.searchsorted(det_label[rows], np.arange(len(names) + 1))
    precision, recall = accumulate(
        rows,
        starts,
        rank[rows],
        m.matched.transpose(2, 0, 1),
        m.ignored.transpose(2, 0, 1),
        counted,
        np.array(combos, dtype=np.int64),
        RECALL_POINTS,
        threads(),
    )  # (K, C, T, R), (K, C, T)
    table = np.full((len(names), len(COCO_STATS)), np.nan)
    for j, (name, t, area, max_det) in enumerate(COCO_STATS):
        c = combos.index((ranges.index(area), max_det))
        present = np.flatnonzero(counted[ranges.index(area)] > 0)
        if name.startswith("ap"):
            p = precision[present, c] if t is None else precision[present, c, t]
            table[present, j] = p.reshape(len(present), -1).mean(axis=1) if len(present) else 0
        else:
            table[present, j] = recall[present, c].mean(axis=1)
    return pd.DataFrame(
        table, index=pd.Index(names, name="label"), columns=[s[0] for s in COCO_STATS]
    )


# -- the report -------------------------------------------------------------------------------
@dataclass
class DetectionReport:
    """Per-label detection metrics; see `evaluate_detections`."""

    per_label: pd.DataFrame
    stats: pd.Series
    coco: pd.DataFrame
    iou_threshold: float
    score_threshold: float
    # (3, K) objects found, objects missed and false boxes per label at the thresholds
    _counts: np.ndarray = field(repr=False)
    # the error details and the confusion pairs, on first use (see `_frames`)
    _errors: tuple[pd.DataFrame, pd.DataFrame] | None = field(default=None, repr=False)
    _curve: tuple[pd.DataFrame, pd.Series] | None = field(default=None, repr=False)
    # gt, pred (the frames as given: references, not copies) and box_format; what
    # `hardex_nb.tide.tide_of` breaks down
    inputs: tuple[pd.DataFrame, pd.DataFrame, str] | None = field(default=None, repr=False)
    labels: list[str] = field(default_factory=list)
    image_ids: list = field(default_factory=list, repr=False)
    version: str | None = None
    evaluated_on: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def map(self) -> float:
        """COCO AP @[.5:.95] (``COCOeval.stats[0]``)."""
        return float(self.stats["ap"])

    @property
    def map50(self) -> float:
        """COCO AP @ IoU 0.5 (``COCOeval.stats[1]``)."""
        return float(self.stats["ap50"])

    @property
    def map75(self) -> float:
        """COCO AP @ IoU 0.75 (``COCOeval.stats[2]``)."""
        return float(self.stats["ap75"])

    @property
    def tally(self) -> tuple[int, int]:
        """(objects found, objects counted) at the report's thresholds, over all labels;
        difficult objects and crowd regions are not counted.
        """
        found, missed = int(self._counts[0].sum()), int(self._counts[1].sum())
        return found, found + missed

    @property
    def avg_detection_rate(self) -> float:
        """The manual's average detection rate: correctly predicted objects / all labeled
        objects, pooled over labels (``mean_detection_rate`` is the mean of the per-label
        column).
        """
        found, counted = self.tally
        return found / counted if counted else float("nan")

    @property
    def mean_detection_rate(self) -> float:
        """Mean over labels with objects of the per-label detection rate."""
        return _mean_valid(self.per_label["detection_rate"])

    def rate_interval(self) -> float:
        """Half-width of a 95% interval around ``avg_detection_rate`` (see `rate_interval`)."""
        return rate_interval(*self.tally)

    def cell_warnings(self) -> pd.DataFrame:
        """``per_label``'s shape (index: label), each cell the warning on it or ""."""
        return _cell_warning_table(self.per_label)

    def _prepared_again(self) -> tuple[_Boxes, _Boxes, Any, Any, Any, Any, list[str], int]:
        """The checked boxes and codes of the report's frames, for what is built on first
        use: evaluating does not pay for it, and the report keeps no copy of the boxes.
        """
        if self.inputs is None:
            raise ValidationError("this report was made without its frames: run hx.evaluate again")
        gt, pred, box_format = self.inputs
        g, p, gi, di, gl, dl, names, images = _prepared(
            gt, pred, self.image_ids, self.labels, box_format
        )
        return g, p, gi, di, gl, dl, names, max(len(images), 1)

    def _scored(self) -> tuple[pd.DataFrame, pd.Series]:
        """Every prediction matched at the report's IoU (see `_score_curve`), on first use."""
        if self._curve is None:
            self._curve = _score_curve(*self._prepared_again(), self.iou_threshold)
        return self._curve

    def _frames(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The error details and the confusion pairs (see `_thresholded`), on first use."""
        if self._errors is None:
            args = (*self._prepared_again(), self.iou_threshold, self.score_threshold)
            _, details, pairs = _thresholded(*args, frames=True)
            assert details is not None and pairs is not None
            self._errors = details, pairs
        return self._errors

    def pr_curve(self, label: str | None = None) -> pd.DataFrame:
        """Precision, recall and F1 at every confidence threshold (each distinct score: the
        report at that threshold, at the report's IoU), per label: columns label, threshold,
        precision, recall, f1, highest threshold first.
        """
        rows, objects = self._scored()
        names = self.labels if label is None else [label]
        parts = [
            _curve_points(rows[rows["label"] == n], int(objects.get(n, 0))).assign(label=n)
            for n in names
        ]
        frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
        return frame.reindex(columns=["label", "threshold", "precision", "recall", "f1"])

    def best_thresholds(self) -> pd.DataFrame:
        """Per label, the confidence threshold with the highest F1 (the highest such
        threshold on ties) with its precision, recall and F1, and the F1 at the report's
        threshold beside it (index: label). The manual: confidence is to be used together
        with the detection threshold.
        """
        curve, rows = self.pr_curve(), []
        for name in self.labels:
            points = curve[curve["label"] == name]
            at = points[points["threshold"] >= self.score_threshold]
            here = float(at["f1"].iloc[-1]) if len(at) else 0.0
            if len(points) and points["f1"].max() > 0:
                best = points.loc[points["f1"].idxmax()]
                rows.append((name, best.threshold, best.precision, best.recall, best.f1, here))
            else:
                rows.append((name, np.nan, np.nan, np.nan, 0.0, here))
        return pd.DataFrame(
            rows,
            columns=["label", "threshold", "precision", "recall", "f1", "f1_at_report_threshold"],
        ).set_index("label")

    def calibration(self, bins: int = 10) -> tuple[pd.DataFrame, float]:
        """The reliability diagram of the detector's scores (the share of predictions in each
        score bin that are right at the report's IoU) and its expected calibration error; see
        `calibration_table`.
        """
        rows, _ = self._scored()
        return calibration_table(rows["tp"].to_numpy(), rows["score"].to_numpy(), bins)

    def errors(self, label: str | None = None) -> pd.DataFrame:
        """Per image and box: ``kind`` is ``tp`` (found), ``missed`` (not found), ``false`` (a
        prediction matching no ground truth of its label), ``difficult`` (ground truth marked
        difficult: found or not, it does not count) or ``ignored`` (a prediction on a crowd /
        ignore region or a difficult box: it does not count), with coordinates, score and
        best IoU.
        """
        d = self._frames()[0]
        return (d if label is None else d[d["label"] == label]).reset_index(drop=True)

    def confusion(self) -> pd.DataFrame:
        """Counts of true label (rows) × predicted label (columns), with ``background``:
        a missed object is (label, background), a false box (background, label).
        """
        names, pairs = [*self.labels, BACKGROUND], self._frames()[1]
        table = pd.crosstab(
            pd.Categorical(pairs["true"], categories=names),
            pd.Categorical(pairs["predicted"], categories=names),
            dropna=False,
        )
        table.index.name, table.columns.name = "true", "predicted"
        return table

    def samples_in_cell(self, true: str, predicted: str) -> list:
        """Image ids behind one confusion-matrix cell."""
        p = self._frames()[1]
        return sorted(
            p.loc[(p["true"] == true) & (p["predicted"] == predicted), "image_id"].unique()
        )

    def header(self) -> str:
        """One line: model version, thresholds, average detection rate, AP, and the images."""
        parts = [
            f"model {self.version}" if self.version else "",
            f"confidence threshold {self.score_threshold:g}",
            f"IoU {self.iou_threshold:g}",
            f"avg detection rate {self.avg_detection_rate:.3f}",
            f"mean per label {self.mean_detection_rate:.3f}",
            f"mAP {self.map:.3f}",
            f"mAP50 {self.map50:.3f}",
            f"mAP75 {self.map75:.3f}",
            self.evaluated_on,
        ]
        return " · ".join(p for p in parts if p)

    def _repr_html_(self) -> str:
        return _report_html(self.header(), self.notes, self.per_label)


PERCENT_COLUMNS = ("share",)  # shown as percentages, as the manual's report does


def _report_html(header: str, notes: list[str], table: pd.DataFrame) -> str:
    """The header, the notes and the per-label table, a ⚠ beside each cell that warns
    (its message on hover), shares as percentages.
    """
    import html

    warn = "".join(
        f"<div style='color:#b91c1c'><b>warning:</b> {html.escape(n)}</div>" for n in notes
    )
    cells = _cell_warning_table(table)
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in table.columns)
    body = []
    for i, row in enumerate(table.itertuples(index=False)):
        tds = []
        for c, v in zip(table.columns, row):
            text = _cell_text(c, v)
            message = cells.iat[i, cells.columns.get_loc(c)] if c in cells.columns else ""
            if message:
                text += f" <span title='{html.escape(message, quote=True)}'>⚠</span>"
            tds.append(f"<td>{text}</td>")
        body.append(f"<tr>{''.join(tds)}</tr>")
    return (
        f"<b>{html.escape(header)}</b>{warn}<table class='dataframe'>"
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    )


def _cell_text(column: str, value) -> str:
    import html

    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    if column in PERCENT_COLUMNS:
        return f"{value:.1%}"
    if isinstance(value, (float, np.floating)):
        return f"{value:.3f}"
    return html.escape(str(value))


def _prepared(gt, pred, image_ids, labels, box_format):
    """Checked boxes with image and label codes: ``(g, p, gi, di, gl, dl, names, images)``;
    a crowd region without a label is repeated for every label.
    """
    g = _check_frame(gt, "gt", score=False, box_format=box_format)
    p = _check_frame(pred, "pred", score=True, box_format=box_format)
    if image_ids is not None:
        allowed = set(image_ids)
        g_in = g.frame["image_id"].isin(allowed).to_numpy()
        p_in = p.frame["image_id"].isin(allowed).to_numpy()
        g = g if g_in.all() else g.take(np.flatnonzero(g_in))
        p = p if p_in.all() else p.take(np.flatnonzero(p_in))
    g_labeled = g.frame["label"].notna().to_numpy()
    if labels is not None:
        names = [str(n) for n in labels]
    else:
        present = np.r_[pd.unique(g.frame["label"][g_labeled]), pd.unique(p.frame["label"])]
        names = sorted({str(n) for n in present})
    index = pd.Index(names)
    gl = np.full(len(g_labeled), -1, dtype=np.int64)
    gl[g_labeled] = _codes(g.frame["label"][g_labeled], index)
    dl = _codes(p.frame["label"], index)
    for codes, frame, what in ((gl[g_labeled], g.frame[g_labeled], "gt"), (dl, p.frame, "pred")):
        if (codes < 0).any():
            unknown = sorted(set(frame["label"].astype(str)[codes < 0]))
            raise ValidationError(f"{what}: label(s) {unknown} are not in labels={names}.")
    # a crowd / ignore region without a label covers every label
    unlabeled = np.flatnonzero(~g_labeled)
    expand = np.r_[np.flatnonzero(g_labeled), np.tile(unlabeled, len(names))]
    gl = np.r_[gl[g_labeled], np.repeat(np.arange(len(names)), len(unlabeled))]
    if len(unlabeled):
        g = g.take(expand)
        g.frame["label"] = np.asarray(names, dtype=object)[gl]
    both = np.r_[g.frame["image_id"].to_numpy(), p.frame["image_id"].to_numpy()]
    codes, img_codes = pd.factorize(both, sort=True)
    gi, di = codes[: len(g.score)].astype(np.int64), codes[len(g.score) :].astype(np.int64)
    return g, p, gi, di, gl, dl, names, pd.Index(img_codes)


def _codes(values: pd.Series, index: pd.Index) -> np.ndarray:
    """Each value's position in ``index`` (by its text), -1 where absent: one hash pass over
    the values, a lookup per distinct one.
    """
    codes, uniques = pd.factorize(values)
    found = index.get_indexer(pd.Index(uniques).astype(str))
    return found[codes].astype(np.int64) if len(codes) else np.zeros(0, dtype=np.int64)


def evaluate_detections(
    gt: pd.DataFrame,
    pred: pd.DataFrame,
    *,
    iou_threshold: float = 0.5,
    score_threshold: float = DEFAULT_SCORE_THRESHOLD,
    image_ids: Sequence | None = None,
    labels: Sequence[str] | None = None,
    box_format: str = "xyxy",
) -> DetectionReport:
    """Evaluate box predictions against ground truth, as COCOeval does, and at one threshold.

    Parameters
    ----------
    gt : DataFrame
        Columns image_id, label and the box (``x0, y0, x1, y1`` pixels, or ``x, y, w, h``
        with ``box_format="xywh"``). Optional: ``iscrowd`` (a crowd / ignore region: a
        detection inside it, by intersection over the detection's area, is not counted; an
        empty label makes it cover every label), ``ignore`` (VOC difficult: not a miss when
        not found, and a detection on it is not counted), ``area`` (COCO's object area, e.g.
        of its segmentation; default: the box's).
    pred : DataFrame
        image_id, label, the box and score.
    iou_threshold, score_threshold : float
        For detection rate (recall), precision, errors and confusion. The default confidence
        threshold, 0.3, is the platform manual's.
    image_ids : sequence, optional
        Every evaluated image (images without ground truth still count for false boxes);
        default: those in gt or pred.
    labels : sequence of str, optional
        Label order of the report; default: sorted labels of gt and pred.
    box_format : {"xyxy", "xywh"}
        ``"xywh"`` keeps COCO's boxes as they are, so IoU at a threshold is bit-for-bit
        COCOeval's.

    Returns
    -------
    DetectionReport
        ``stats``: COCOeval's twelve statistics (ap, ap50, ap75, ap_small, ap_medium,
        ap_large, ar1, ar10, ar100, ar_small, ar_medium, ar_large; NaN where COCOeval prints
        -1); ``coco``: the same per label. ``per_label`` columns: label, detection_rate,
        precision, ap, ap50, ap75, ar100, share, count, warning (see `label_warning`).
    """
    if box_format not in ("xyxy", "xywh"):
        raise ValidationError(f"box_format={box_format!r}: use 'xyxy' (x0, y0, x1, y1) or 'xywh'.")
    g, p, gi, di, gl, dl, names, img_codes = _prepared(gt, pred, image_ids, labels, box_format)
    n_img = max(len(img_codes), 1)
    m = _match(
        g,
        gl * n_img + gi,
        p,
        dl * n_img + di,
        IOU_THRESHOLDS,
        list(AREA_RANGES.values()),
        MAX_DETS[-1],
    )
    coco = _coco_table(m, p, di, dl, gl, names)
    stats = pd.Series({name: _mean_valid(coco[name]) for name in coco.columns}, dtype="float64")
    counts = _thresholded(g, p, gi, di, gl, dl, names, n_img, iou_threshold, score_threshold)[0]
    objects = np.bincount(gl[~g.crowd], minlength=len(names))
    per_label = _per_label_table(names, objects, coco, counts)
    ids = list(image_ids) if image_ids is not None else list(img_codes)
    return DetectionReport(
        per_label=per_label,
        stats=stats,
        coco=coco,
        iou_threshold=iou_threshold,
        score_threshold=score_threshold,
        _counts=counts,
        inputs=(gt, pred, box_format),
        labels=names,
        image_ids=ids,
    )


def _mean_valid(values: pd.Series) -> float:
    valid = values.dropna()
    return float(valid.mean()) if len(valid) else float("nan")


def _thresholded(
    g: _Boxes,
    p: _Boxes,
    gi,
    di,
    gl,
    dl,
    names,
    n_img,
    iou_threshold,
    score_threshold,
    *,
    frames: bool = False,
):
    """At one IoU and score threshold: ``(counts, details, pairs)``. ``counts (3, K)``:
    objects found, objects missed and false boxes per label; with ``frames``, the error
    details (every counted object, every false or ignored box) and the label-agnostic
    confusion pairs, else None for both.
    """
    keep = np.flatnonzero(p.score >= score_threshold)
    p, pdi, pdl = p.take(keep, frame=frames), di[keep], dl[keep]
    thr, whole = np.array([iou_threshold]), [AREA_RANGES["all"]]
    m = _match(g, gl * n_img + gi, p, pdl * n_img + pdi, thr, whole, None)
    found = m.gt_dt[0] >= 0
    counted = ~g.ignore  # neither crowd nor difficult
    hit, ign = m.matched[0, 0], m.ignored[0, 0]
    K = len(names)
    counts = np.stack(
        [
            np.bincount(gl[counted & found], minlength=K),
            np.bincount(gl[counted & ~found], minlength=K),
            np.bincount(pdl[~hit], minlength=K),
        ]
    )
    if not frames:
        return counts, None, None
    names_arr = np.asarray(names, dtype=object)
    difficult = g.ignore & ~g.crowd
    g_kind = np.where(difficult, "difficult", np.where(found, "tp", "missed"))
    g_rows = np.flatnonzero(~g.crowd)
    gxy, pxy = g.xyxy, p.xyxy
    part_gt = pd.DataFrame(
        {
            "image_id": g.frame["image_id"].to_numpy()[g_rows],
            "label": names_arr[gl[g_rows]],
            "kind": g_kind[g_rows],
        }
    )
    for j, c in enumerate(BOX):
        part_gt[c] = gxy[g_rows, j]
    partner_score = p.score[np.maximum(m.gt_dt[0], 0)] if len(p.score) else np.zeros(len(found))
    part_gt["score"] = np.where(found, partner_score, np.nan)[g_rows]
    part_gt["iou"] = m.gt_iou[g_rows]
    d_rows = np.flatnonzero(~hit | ign)
    part_dt = pd.DataFrame(
        {
            "image_id": p.frame["image_id"].to_numpy()[d_rows],
            "label": names_arr[pdl[d_rows]],
            "kind": np.where(hit[d_rows], "ignored", "false"),
        }
    )
    for j, c in enumerate(BOX):
        part_dt[c] = pxy[d_rows, j]
    part_dt["score"], part_dt["iou"] = p.score[d_rows], m.dt_iou[d_rows]
    details = pd.concat([part_gt, part_dt], ignore_index=True)
    # confusion: counted boxes only, matched ignoring labels, one image at a time
    g_obj = g.take(np.flatnonzero(~g.ignore))
    p_obj = p.take(np.flatnonzero(~ign))
    g_img, p_img = gi[~g.ignore], pdi[~ign]
    a = _match(g_obj.plain(), g_img, p_obj.plain(), p_img, thr, whole, None)
    p_lab = names_arr[pdl[~ign]]
    partner = a.gt_dt[0]
    predicted = np.where(
        partner >= 0, p_lab[np.maximum(partner, 0)] if len(p_lab) else BACKGROUND, BACKGROUND
    )
    pairs_gt = pd.DataFrame(
        {
            "image_id": g_obj.frame["image_id"].to_numpy(),
            "true": names_arr[gl[~g.ignore]],
            "predicted": predicted,
        }
    )
    lone = ~a.matched[0, 0]
    pairs_dt = pd.DataFrame(
        {
            "image_id": p_obj.frame["image_id"].to_numpy()[lone],
            "true": BACKGROUND,
            "predicted": p_lab[lone],
        }
    )
    return counts, details, pd.concat([pairs_gt, pairs_dt], ignore_index=True)


def _score_curve(g: _Boxes, p: _Boxes, gi, di, gl, dl, names, n_img, iou_threshold):
    """Every prediction matched at the report's IoU threshold, whatever its score: per label,
    in falling score order, whether it is right (``tp``) and the label's counted objects.

    COCO's greedy matching takes the highest score first, so the predictions at or above any
    threshold match exactly as they do when the rest are dropped: the curve's point at a
    score is the report at that confidence threshold. Predictions on crowd regions or
    difficult objects are left out (they do not count).
    """
    m = _match(
        g,
        gl * n_img + gi,
        p,
        dl * n_img + di,
        np.array([iou_threshold]),
        [AREA_RANGES["all"]],
        None,
    )
    counted = ~m.ignored[0, 0]
    order = np.lexsort((-p.score, dl))
    order = order[counted[order]]
    names_arr = np.asarray(names, dtype=object)
    objects = np.bincount(gl[~g.ignore], minlength=len(names))
    return pd.DataFrame(
        {
            "label": names_arr[dl[order]],
            "score": p.score[order],
            "tp": m.matched[0, 0, order],
            "objects": objects[dl[order]],
        }
    ), pd.Series(objects, index=pd.Index(names, name="label"))


def _curve_points(rows: pd.DataFrame, objects: int) -> pd.DataFrame:
    """One label's precision, recall and F1 at each distinct score (the threshold that keeps
    the predictions at or above it), highest score first.
    """
    tps = np.cumsum(rows["tp"].to_numpy())
    n = np.arange(1, len(rows) + 1)
    score = rows["score"].to_numpy()
    last = np.r_[score[1:] != score[:-1], True] if len(score) else np.zeros(0, bool)
    tps, n, score = tps[last], n[last], score[last]
    precision = tps / n
    recall = tps / objects if objects else np.full(len(tps), np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        f1 = np.where(tps > 0, 2 * precision * recall / (precision + recall), 0.0)
    return pd.DataFrame({"threshold": score, "precision": precision, "recall": recall, "f1": f1})


def calibration_table(correct: np.ndarray, confidence: np.ndarray, bins: int = 10):
    """A reliability diagram's numbers and the expected calibration error.

    ``confidence`` in [0, 1] (a detector's score, a classifier's probability of its answer)
    is cut into ``bins`` equal-width bins; each gives its count, mean confidence and the share
    ``correct``. ECE is the count-weighted mean of |share correct − mean confidence|
    (Guo et al., 2017). Returns ``(table, ece)``; ECE is NaN without predictions.
    """
    correct = np.asarray(correct, dtype=float)
    confidence = np.clip(np.asarray(confidence, dtype=float), 0.0, 1.0)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.minimum((confidence * bins).astype(np.int64), bins - 1)  # 0.6 in [0.6, 0.8)
    count = np.bincount(which, minlength=bins)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_conf = np.bincount(which, confidence, minlength=bins) / count
        accuracy = np.bincount(which, correct, minlength=bins) / count
    table = pd.DataFrame(
        {
            "low": edges[:-1],
            "high": edges[1:],
            "count": count,
            "confidence": mean_conf,
            "accuracy": accuracy,
        }
    )
    if not len(correct):
        return table, float("nan")
    gap = np.abs(np.nan_to_num(accuracy) - np.nan_to_num(mean_conf))
    return table, float((count * gap).sum() / len(correct))


def _per_label_table(names, objects, coco: pd.DataFrame, counts: np.ndarray) -> pd.DataFrame:
    tp, missed, false = counts
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(tp + missed > 0, tp / (tp + missed), np.nan)
        precision = np.where(tp + false > 0, tp / (tp + false), np.nan)
    share = objects / max(int(objects.sum()), 1)
    table = pd.DataFrame(
        {
            "label": list(names),
            "detection_rate": rate,
            "precision": precision,
            **{c: coco[c].to_numpy() for c in ("ap", "ap50", "ap75", "ar100")},
            "share": share,
            "count": objects.astype(int),
        }
    )
    table["warning"] = [
        label_warning(int(c), float(sh), float(ap), float(r))
        for c, sh, ap, r in zip(objects, share, table["ap"], rate)
    ]
    return table


def rate_interval(found: int, counted: int) -> float:
    """Half-width of a 95% interval around the rate ``found / counted`` (objects, or images
    for a classifier), Agresti–Coull adjusted so a perfect score on 3 images is not taken as
    certain; NaN when nothing is counted.
    """
    if counted <= 0:
        return float("nan")
    n = counted + 4
    p = (found + 2) / n
    return float(1.96 * np.sqrt(p * (1 - p) / n))


def cell_warnings(
    count: int, share: float, ap: float | None = None, detection_rate: float | None = None
) -> dict[str, str]:
    """The warnings on one label's row, by column (``count``, ``share``, ``ap``,
    ``detection_rate``); a column without one is left out.

    The rules: fewer than ``MIN_COUNT`` (30) annotations, less than ``MIN_SHARE`` (2%) of all
    objects, COCO AP below ``MIN_AP`` (0.9), a detection rate below ``MIN_DETECTION_RATE``
    (0.5) at the report's thresholds. The first three reproduce the platform manual's
    example report cell by cell.
    """
    notes = {}
    if count < MIN_COUNT:
        notes["count"] = f"too few annotations ({count} < {MIN_COUNT}): label more images with it"
    if share < MIN_SHARE:
        notes["share"] = f"low share ({share:.1%} of objects < {MIN_SHARE:.0%}): balance the labels"
    if ap is not None and not np.isnan(ap) and ap < MIN_AP:
        notes["ap"] = f"low AP ({ap:.3f} < {MIN_AP}): review its errors and hard examples"
    if (
        detection_rate is not None
        and not np.isnan(detection_rate)
        and detection_rate < MIN_DETECTION_RATE
    ):
        notes["detection_rate"] = (
            f"low detection rate ({detection_rate:.2f} < {MIN_DETECTION_RATE}): "
            "review its missed objects"
        )
    return notes


def label_warning(
    count: int, share: float, ap: float | None = None, detection_rate: float | None = None
) -> str:
    """What is wrong with a label's data or results and what to do, in one line (the
    ``warning`` column); empty when nothing is. See `cell_warnings` for the rules.
    """
    return "; ".join(cell_warnings(count, share, ap, detection_rate).values())


WARNED_COLUMNS = ("detection_rate", "ap", "share", "count")


def _cell_warning_table(per_label: pd.DataFrame) -> pd.DataFrame:
    columns = [c for c in WARNED_COLUMNS if c in per_label.columns]
    rows = []
    for r in per_label.to_dict(orient="records"):
        notes = cell_warnings(
            int(r["count"]), float(r["share"]), r.get("ap"), r.get("detection_rate")
        )
        rows.append([notes.get(c, "") for c in columns])
    return pd.DataFrame(rows, columns=columns, index=pd.Index(per_label["label"], name="label"))


# -- classification -----------------------------------------------------------------------------
@dataclass
class ClassificationReport:
    """Per-label detection rate (recall), precision, count, share; see
    `evaluate_classification`.
    """

    per_label: pd.DataFrame
    accuracy: float
    confusion_matrix: pd.DataFrame
    _pairs: pd.DataFrame = field(repr=False)
    labels: list[str] = field(default_factory=list)
    version: str | None = None
    evaluated_on: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def tally(self) -> tuple[int, int]:
        """(images predicted correctly, images counted)."""
        p = self._pairs
        return int((p["true"] == p["predicted"]).sum()), len(p)

    @property
    def avg_detection_rate(self) -> float:
        """The manual's average detection rate: correctly predicted images / all labeled
        images (the accuracy); ``mean_detection_rate`` is the mean of the per-label column.
        """
        found, counted = self.tally
        return found / counted if counted else float("nan")

    @property
    def mean_detection_rate(self) -> float:
        """Mean over labels with images of the per-label detection rate (class recall)."""
        return _mean_valid(self.per_label["detection_rate"])

    def rate_interval(self) -> float:
        """Half-width of a 95% interval around ``avg_detection_rate`` (see `rate_interval`)."""
        return rate_interval(*self.tally)

    def cell_warnings(self) -> pd.DataFrame:
        """``per_label``'s shape (index: label), each cell the warning on it or ""."""
        return _cell_warning_table(self.per_label)

    def calibration(self, bins: int = 10) -> tuple[pd.DataFrame, float]:
        """The reliability diagram of the predicted labels' probabilities (the share right in
        each probability bin) and its expected calibration error; see `calibration_table`.
        """
        p = self._pairs
        if "score" not in p:
            raise ValidationError(
                "this report has no scores: pass scores= (the predicted labels' probabilities)"
            )
        right = (p["true"] == p["predicted"]).to_numpy()
        return calibration_table(right, p["score"].to_numpy(), bins)

    def header(self) -> str:
        """One line: model version, the average detection rate (correct images / all), the
        mean of the classes' recall, and the images.
        """
        parts = [
            f"model {self.version}" if self.version else "",
            f"avg detection rate {self.avg_detection_rate:.3f}",
            f"mean class recall {self.mean_detection_rate:.3f}",
            self.evaluated_on,
        ]
        return " · ".join(p for p in parts if p)

    def confusion(self) -> pd.DataFrame:
        """The confusion matrix (rows true, columns predicted), as ``confusion_matrix``."""
        return self.confusion_matrix

    def samples_in_cell(self, true: str, predicted: str) -> list:
        """The image ids counted in one confusion-matrix cell."""
        p = self._pairs
        return p.loc[(p["true"] == true) & (p["predicted"] == predicted), "image_id"].tolist()

    def errors(self, label: str | None = None) -> pd.DataFrame:
        """The misclassified images (``true`` != ``predicted``), of one true label or all."""
        p = self._pairs[self._pairs["true"] != self._pairs["predicted"]]
        return (p if label is None else p[p["true"] == label]).reset_index(drop=True)

    def _repr_html_(self) -> str:
        return _report_html(self.header(), self.notes, self.per_label)


def evaluate_classification(
    labels: Sequence,
    preds: Sequence,
    *,
    label_names: Sequence[str] | None = None,
    image_ids: Sequence | None = None,
    scores: Sequence[float] | None = None,
) -> ClassificationReport:
    """Per-label detection rate (recall), precision, count and share, and the confusion
    matrix (true label rows × predicted label columns). With ``scores`` (the model's
    probability of each predicted label), ``report.calibration()`` gives its reliability
    diagram and ECE.
    """
    y = np.asarray([str(v) for v in labels], dtype=object)
    p = np.asarray([str(v) for v in preds], dtype=object)
    if len(y) != len(p):
        raise ValidationError(f"labels ({len(y)}) and preds ({len(p)}) differ in length.")
    names = list(label_names) if label_names is not None else sorted(set(y) | set(p))
    index = {n: i for i, n in enumerate(names)}
    unknown = (set(y) | set(p)) - set(index)
    if unknown:
        raise ValidationError(f"label(s) {sorted(unknown)} are not in label_names={names}.")
    yi = np.array([index[v] for v in y], dtype=np.int64)
    pi = np.array([index[v] for v in p], dtype=np.int64)
    K = len(names)
    cm = np.bincount(yi * K + pi, minlength=K * K).reshape(K, K)
    tp = np.diag(cm).astype(float)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        recall = np.where(support > 0, tp / support, np.nan)
        precision = np.where(predicted > 0, tp / predicted, np.nan)
    share = support / max(len(y), 1)
    per_label = pd.DataFrame(
        {
            "label": names,
            "detection_rate": recall,
            "precision": precision,
            "count": support,
            "share": share,
        }
    )
    per_label["warning"] = [
        label_warning(int(c), float(s), None, r) for c, s, r in zip(support, share, recall)
    ]
    matrix = pd.DataFrame(
        cm, index=pd.Index(names, name="true"), columns=pd.Index(names, name="predicted")
    )
    ids = list(image_ids) if image_ids is not None else list(range(len(y)))
    pairs = pd.DataFrame({"image_id": ids, "true": y, "predicted": p})
    if scores is not None:
        if len(scores) != len(y):
            raise ValidationError(f"scores ({len(scores)}) and labels ({len(y)}) differ in length.")
        pairs["score"] = np.asarray(scores, dtype=float)
    acc = float((yi == pi).mean()) if len(y) else float("nan")
    return ClassificationReport(
        per_label=per_label, accuracy=acc, confusion_matrix=matrix, _pairs=pairs, labels=names
    )


# -- multi-label classification ---------------------------------------------------------------
def _ranked(truth: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One label's ranking: at each distinct score (falling), the true and false
    positives counted down to it, and the score.
    """
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], truth[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1] if len(s) else np.zeros(0, dtype=int)
    tps = np.cumsum(y)[last]
    return tps, (last + 1) - tps, s[last]


def average_precision(truth, scores) -> float:
    """Average precision of one label's scores: the precision at each distinct score
    weighted by the recall it adds (scikit-learn's ``average_precision_score``, ties as
    one step); NaN without a positive.
    """
    y = np.asarray(truth, dtype=bool)
    tps, fps, _ = _ranked(y, np.asarray(scores, dtype=float))
    if not y.any():
        return float("nan")
    precision, recall = tps / (tps + fps), tps / y.sum()
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def f1_thresholds(truth, probs, *, default: float = 0.5) -> np.ndarray:
    """Per label (column), the probability threshold with the best F1 on these images
    (a label is predicted when its probability is at least the threshold); ``default``
    for a label with no positive image. How a multi-label run picks its thresholds on its
    validation images.
    """
    y = np.asarray(truth, dtype=bool)
    p = np.asarray(probs, dtype=float)
    out = np.full(y.shape[1], default, dtype=float)
    for k in range(y.shape[1]):
        if not y[:, k].any():
            continue
        tps, fps, at = _ranked(y[:, k], p[:, k])
        f1 = 2 * tps / (tps + fps + y[:, k].sum())
        best = int(np.argmax(f1))  # the highest threshold among equals: fewest false ones
        # halfway to the next lower score, so a probability a little under the one seen
        # still counts
        below = at[best + 1] if best + 1 < len(at) else 0.0
        out[k] = float((at[best] + below) / 2) if at[best] > below else float(at[best])
    return out


@dataclass
class MultilabelReport:
    """Multi-label classification: per label its detection rate (recall), precision, F1,
    AP, threshold, count and share; mAP, exact-match ratio and Hamming loss; see
    `evaluate_multilabel`.
    """

    per_label: pd.DataFrame
    map: float  # mean over labels with a positive image of their AP
    exact_match: float  # images whose predicted label set is exactly the true one
    hamming_loss: float  # the share of (image, label) decisions that are wrong
    _truth: np.ndarray = field(repr=False)
    _probs: np.ndarray = field(repr=False)
    _thresholds: np.ndarray = field(repr=False)
    image_ids: list = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    version: str | None = None
    evaluated_on: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def predicted(self) -> np.ndarray:
        """``(N, K)`` booleans: each label's probability at least its threshold."""
        return self._probs >= self._thresholds[None, :]

    @property
    def tally(self) -> tuple[int, int]:
        """(true (image, label) pairs predicted, true pairs counted)."""
        return int((self.predicted & self._truth).sum()), int(self._truth.sum())

    @property
    def avg_detection_rate(self) -> float:
        """The manual's average detection rate: the labels images carry that the model
        gave them / all the labels they carry (pooled over labels).
        """
        found, counted = self.tally
        return found / counted if counted else float("nan")

    @property
    def mean_detection_rate(self) -> float:
        """Mean over labels with images of the per-label detection rate (recall)."""
        return _mean_valid(self.per_label["detection_rate"])

    def rate_interval(self) -> float:
        """Half-width of a 95% interval around ``avg_detection_rate`` (see `rate_interval`)."""
        return rate_interval(*self.tally)

    def cell_warnings(self) -> pd.DataFrame:
        """``per_label``'s shape (index: label), each cell the warning on it or ""."""
        return _cell_warning_table(self.per_label)

    def calibration(self, bins: int = 10) -> tuple[pd.DataFrame, float]:
        """Reliability of every (image, label) probability: the share of pairs whose label
        is true in each probability bin, and the expected calibration error.
        """
        return calibration_table(self._truth.ravel(), self._probs.ravel(), bins)

    def header(self) -> str:
        """One line: model version, the pooled detection rate, mAP, exact match, Hamming
        loss, and the images.
        """
        parts = [
            f"model {self.version}" if self.version else "",
            f"avg detection rate {self.avg_detection_rate:.3f}",
            f"mAP {self.map:.3f}",
            f"exact match {self.exact_match:.3f}",
            f"Hamming loss {self.hamming_loss:.3f}",
            self.evaluated_on,
        ]
        return " · ".join(p for p in parts if p)

    def confusion(self) -> pd.DataFrame:
        """Refused: several labels per image make no one matrix of true × predicted label."""
        raise ValidationError(
            "a multilabel report has no confusion matrix (an image may carry several labels); "
            "read report.per_label, or report.errors(label) for the images behind each one."
        )

    def errors(self, label: str | None = None) -> pd.DataFrame:
        """One row per wrong (image, label) decision: ``missed`` (the image carries the
        label, the model did not give it) or ``false`` (given, not carried), with the
        probability and the label's threshold.
        """
        wrong = self.predicted != self._truth
        rows, cols = np.nonzero(wrong)
        out = pd.DataFrame(
            {
                "image_id": [self.image_ids[r] for r in rows],
                "label": [self.labels[c] for c in cols],
                "predicted": np.where(self._truth[rows, cols], "missed", "false"),
                "score": self._probs[rows, cols],
                "threshold": self._thresholds[cols],
            }
        )
        return (out if label is None else out[out["label"] == label]).reset_index(drop=True)

    def _repr_html_(self) -> str:
        return _report_html(self.header(), self.notes, self.per_label)


def evaluate_multilabel(
    truth,
    probs,
    *,
    label_names: Sequence[str],
    thresholds=0.5,
    image_ids: Sequence | None = None,
) -> MultilabelReport:
    """Multi-label predictions against the truth.

    Parameters
    ----------
    truth : (N, K) array of 0 / 1 (or booleans)
        The labels each image carries, a column per name of ``label_names``.
    probs : (N, K) array
        Each label's probability.
    thresholds : float or (K,) array
        A label is predicted when its probability is at least its threshold (a run's are
        chosen on its validation images, `f1_thresholds`).
    """
    names = list(label_names)
    y = np.asarray(truth, dtype=bool).reshape(-1, len(names))
    p = np.asarray(probs, dtype=float).reshape(-1, len(names))
    if y.shape != p.shape:
        raise ValidationError(f"truth {y.shape} and probs {p.shape} differ in shape.")
    if not np.isfinite(p).all() or (p < 0).any() or (p > 1).any():
        raise ValidationError("probs: every probability must be a number from 0 to 1.")
    t = np.broadcast_to(np.asarray(thresholds, dtype=float), (len(names),)).copy()
    hit = p >= t[None, :]
    tp = (hit & y).sum(axis=0).astype(float)
    support, given = y.sum(axis=0), hit.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        recall = np.where(support > 0, tp / support, np.nan)
        precision = np.where(given > 0, tp / given, np.nan)
        f1 = np.where(support + given > 0, 2 * tp / (support + given), np.nan)
    ap = np.array([average_precision(y[:, k], p[:, k]) for k in range(len(names))])
    share = support / max(int(support.sum()), 1)
    per_label = pd.DataFrame(
        {
            "label": names,
            "detection_rate": recall,
            "precision": precision,
            "f1": f1,
            "ap": ap,
            "threshold": t,
            "count": support,
            "share": share,
        }
    )
    per_label["warning"] = [
        label_warning(int(c), float(s), None if np.isnan(a) else float(a), r)
        for c, s, a, r in zip(support, share, ap, recall)
    ]
    n = len(y)
    return MultilabelReport(
        per_label=per_label,
        map=_mean_valid(per_label["ap"]),
        exact_match=float((hit == y).all(axis=1).mean()) if n else float("nan"),
        hamming_loss=float((hit != y).mean()) if n else float("nan"),
        _truth=y,
        _probs=p,
        _thresholds=t,
        image_ids=list(image_ids) if image_ids is not None else list(range(n)),
        labels=names,
    )
