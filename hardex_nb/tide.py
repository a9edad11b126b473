"""TIDE: what each kind of detection error costs in AP (Bolya et al., ECCV 2020).

Every false positive and missed object gets one type, tested in this order: ``loc`` (right
label, IoU with a ground truth between the background and foreground thresholds), ``cls``
(IoU at or above the foreground threshold with an object of another label), ``dupe``
(above it with an object of its label that a higher-scored prediction already took),
``bkg`` (IoU at most the background threshold with every object), ``both`` (none of
those), ``missed`` (an object no prediction found and no error above could fix). The
``dAP`` of a type is the AP gained by fixing its errors alone and nothing else: a ``cls`` or
``loc`` error becomes the true positive of its object (the highest-scored one per object;
the others are dropped), ``dupe``, ``bkg`` and ``both`` predictions are dropped, a
missed object is no longer counted.

This follows the reference implementation (``tidecv`` 1.0.1) step by step, including its
AP (101 recall points, the mean over labels with a prediction or an object, in percent as
TIDE reports it) and its order of points with equal scores, so that the numbers equal it
(a test holds it on real COCO detections). Ignored ground truth (crowd regions, VOC
difficult) are TIDE's ignore regions: a prediction inside one (crowd IoU above the
foreground threshold) is not counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .errors import ValidationError
from .evaluation import DetectionReport, _check_frame, _pairwise_iou

ERROR_TYPES = ("cls", "loc", "both", "dupe", "bkg", "missed")  # TIDE's order
SPECIAL_TYPES = ("false_pos", "false_neg")
RECALL_POINTS = np.arange(101) / 100


class _AP:
    """One label's points (``id -> (score, correct)``, in insertion order) and objects."""

    __slots__ = ("objects", "points")

    def __init__(self) -> None:
        self.points: dict[tuple[str, int], tuple[float, bool]] = {}
        self.objects = 0

    def empty(self) -> bool:
        return not self.points and self.objects == 0

    def ap(self) -> float:
        if self.objects == 0:
            return 0.0
        points = sorted(self.points.values(), key=lambda p: -p[0])  # stable, as TIDE's
        correct = np.array([c for _, c in points], dtype=bool)
        tps = np.cumsum(correct)
        precision = tps / np.arange(1, len(correct) + 1)
        recall = tps / self.objects
        precision = np.maximum.accumulate(precision[::-1])[::-1] if len(precision) else precision
        idx = np.searchsorted(recall, RECALL_POINTS, side="left")
        inside = idx < len(precision)
        curve = np.zeros(len(RECALL_POINTS))
        curve[inside] = precision[idx[inside]]
        return float(curve.sum() / len(curve) * 100)


def _mean_ap(table: dict[str, _AP]) -> float:
    aps = [a.ap() for a in table.values() if not a.empty()]
    return sum(aps) / len(aps) if aps else float("nan")


@dataclass
class _Error:
    kind: str
    image_id: object
    pred: int | None  # row in the prediction frame
    gt: int | None  # row in the ground-truth frame
    label: str  # the prediction's label, or the missed object's
    original: tuple | None  # (label, (score, correct)) as counted, or None
    fixed: tuple | None  # (label, (score, correct)), (label, -1) for a missed object, or None


@dataclass
class TideReport:
    """TIDE's breakdown; see `tide_errors`."""

    ap: float  # AP at the foreground threshold, percent (TIDE's units)
    main: pd.Series  # dAP per error type (cls, loc, both, dupe, bkg, missed)
    special: pd.Series  # dAP of perfect precision (false_pos) and of perfect recall (false_neg)
    per_label: pd.DataFrame  # label × (ap, the dAP of each type fixed within the label, counts)
    errors: pd.DataFrame = field(repr=False)  # one row per error: type, image, label, boxes
    pos_threshold: float = 0.5
    background_threshold: float = 0.1

    @property
    def counts(self) -> pd.Series:
        """How many errors of each type."""
        return self.errors["type"].value_counts().reindex(list(ERROR_TYPES), fill_value=0)

    def summary(self) -> pd.DataFrame:
        """Type, dAP and count, in TIDE's order."""
        return pd.DataFrame({"dAP": self.main, "count": self.counts}).rename_axis("type")


def tide_errors(
    gt: pd.DataFrame,
    pred: pd.DataFrame,
    *,
    pos_threshold: float = 0.5,
    background_threshold: float = 0.1,
    max_dets: int = 100,
    image_ids: Sequence | None = None,
    box_format: str = "xyxy",
) -> TideReport:
    """TIDE's error breakdown of box predictions (frames as `evaluate_detections` takes them).

    ``image_ids``: the evaluated images in order (a prediction on another image is not
    counted; the order decides only among equal scores); default: those in gt or pred,
    sorted. ``max_dets``: the highest-scored predictions kept per image.
    """
    g = _check_frame(gt, "gt", score=False, box_format=box_format)
    p = _check_frame(pred, "pred", score=True, box_format=box_format)
    g_img, p_img = g.frame["image_id"].to_numpy(), p.frame["image_id"].to_numpy()
    if image_ids is None:
        images = sorted(set(g_img.tolist()) | set(p_img.tolist()))
    else:
        images = list(image_ids)
    g_label = np.array([None if pd.isna(v) else str(v) for v in g.frame["label"]], dtype=object)
    p_label = p.frame["label"].astype(str).to_numpy(dtype=object)
    g_rows = pd.Series(np.arange(len(g_img))).groupby(g_img).indices if len(g_img) else {}
    p_rows = pd.Series(np.arange(len(p_img))).groupby(p_img).indices if len(p_img) else {}

    table: dict[str, _AP] = {}
    errors: list[_Error] = []
    missed_by_label: dict[str, int] = {}
    best: dict[int, tuple[float, int]] = {}  # gt row -> (best score, pred row) of its fixes
    gt_used: dict[int, bool] = {}

    def ap_of(label: str) -> _AP:
        if label not in table:
            table[label] = _AP()
        return table[label]

    def claim(pred_row: int, gt_row: int) -> bool:
        """TIDE's BestGTMatch: a cls / loc error may fix an object no prediction found; the
        highest-scored such error is the fix."""
        if gt_used[gt_row]:
            return False
        score = p.score[pred_row]
        if gt_row not in best or best[gt_row][0] < score:
            best[gt_row] = (score, pred_row)
        return True

    for image in images:
        gi = g_rows.get(image, np.zeros(0, dtype=np.int64))
        objects = gi[~g.ignore[gi]]
        regions = gi[g.ignore[gi]]
        for row in objects:
            ap_of(g_label[row]).objects += 1
            gt_used[int(row)] = False
        pi = p_rows.get(image, np.zeros(0, dtype=np.int64))
        if len(pi) == 0:
            for row in objects:
                missed_by_label[g_label[row]] = missed_by_label.get(g_label[row], 0) + 1
                errors.append(_missed(g, g_label, int(row), image))
            continue
        pi = pi[np.argsort(-p.score[pi], kind="stable")][:max_dets]
        iou = _pairwise_iou(
            p.xywh[pi][None], g.xywh[objects][None], np.zeros((1, len(objects)), bool)
        )[0]
        same = p_label[pi][:, None] == g_label[objects][None, :]
        cls_iou = iou * same
        used = np.zeros(len(pi), dtype=object)  # False, True or None (ignored)
        used[:] = False
        taken = np.zeros(len(objects), dtype=bool)
        buffer = cls_iou.copy()
        for k in range(len(pi)):
            if not len(objects):
                break
            j = int(np.argmax(buffer[k]))
            if buffer[k, j] >= pos_threshold:
                used[k], taken[j] = True, True
                gt_used[int(objects[j])] = True
                buffer[:, j] = 0
        for r in regions:
            if not len(pi):
                break
            crowd_iou = _pairwise_iou(p.xywh[pi][None], g.xywh[[r]][None], np.ones((1, 1), bool))[
                0, :, 0
            ]
            for k in range(len(pi)):
                if (
                    used[k] is False
                    and crowd_iou[k] > pos_threshold
                    and (g_label[r] is None or g_label[r] == p_label[pi[k]])
                ):
                    used[k] = None
        other_iou = iou * ~same
        used_cls = cls_iou * taken[None, :]
        for k, row in enumerate(pi):
            row = int(row)
            label, score = p_label[row], float(p.score[row])
            if used[k] is not None:
                ap_of(label).points[("p", row)] = (score, bool(used[k]))
            if used[k] is True:
                continue
            original = None if used[k] is None else (label, (score, False))
            if not len(objects):
                errors.append(_Error("bkg", image, row, None, label, original, None))
                continue
            j = int(np.argmax(cls_iou[k]))
            if background_threshold <= cls_iou[k, j] <= pos_threshold:
                gt_row = int(objects[j])
                fix = (label, (score, True)) if claim(row, gt_row) else None
                errors.append(_Error("loc", image, row, gt_row, label, original, fix))
                continue
            j = int(np.argmax(other_iou[k]))
            if other_iou[k, j] >= pos_threshold:
                gt_row = int(objects[j])
                fix = (g_label[gt_row], (score, True)) if claim(row, gt_row) else None
                errors.append(_Error("cls", image, row, gt_row, label, original, fix))
                continue
            j = int(np.argmax(used_cls[k]))
            if used_cls[k, j] >= pos_threshold:
                errors.append(_Error("dupe", image, row, int(objects[j]), label, original, None))
                continue
            j = int(np.argmax(iou[k]))
            kind = "bkg" if iou[k, j] <= background_threshold else "both"
            errors.append(_Error(kind, image, row, None, label, original, None))
        for j, row in enumerate(objects):
            if not taken[j]:
                missed_by_label[g_label[row]] = missed_by_label.get(g_label[row], 0) + 1
                if int(row) not in best:
                    errors.append(_missed(g, g_label, int(row), image))
    # a fix counts only for the highest-scored error of its object
    for e in errors:
        target = e.gt
        if e.kind in ("cls", "loc") and e.fixed is not None and target is not None:
            if best[target][1] != e.pred:
                e.fixed = None
    base = _mean_ap(table)
    main, per_label_gain = {}, {}
    for kind in ERROR_TYPES:
        fixed = _fix(table, errors, lambda e, kind=kind: e.kind == kind)
        main[kind] = max(_mean_ap(fixed) - base, 0.0)
        per_label_gain[kind] = {
            name: fixed[name].ap() - a.ap() if name in fixed else 0.0 for name, a in table.items()
        }
    special = {
        "false_pos": _mean_ap(_fix(table, errors, lambda e: False, drop_false=True)) - base,
        "false_neg": _mean_ap(_fix(table, errors, lambda e: False, minus=missed_by_label)) - base,
    }
    frame = _error_frame(errors, g, p)
    counts = (
        frame.groupby(["label", "type"]).size().unstack(fill_value=0)
        if len(frame)
        else pd.DataFrame()
    ).reindex(index=list(table), columns=list(ERROR_TYPES), fill_value=0)
    rows = []
    for name, a in table.items():
        entry: dict[str, object] = {"label": name, "ap": a.ap()}
        entry.update({f"d_{k}": max(per_label_gain[k][name], 0.0) for k in ERROR_TYPES})
        entry.update({f"n_{k}": int(counts.loc[name, k]) for k in ERROR_TYPES})
        rows.append(entry)
    per_label = pd.DataFrame(rows).set_index("label").sort_index() if rows else pd.DataFrame()
    return TideReport(
        ap=base,
        main=pd.Series(main, name="dAP"),
        special=pd.Series(special, name="dAP"),
        per_label=per_label,
        errors=frame,
        pos_threshold=pos_threshold,
        background_threshold=background_threshold,
    )


def tide_of(report: DetectionReport, background_threshold: float = 0.1) -> TideReport:
    """TIDE's breakdown of a report's predictions, at its IoU threshold and on its images."""
    if report.inputs is None:
        raise ValidationError("this report was made without its frames: run hx.evaluate again")
    gt, pred, box_format = report.inputs
    return tide_errors(
        gt,
        pred,
        pos_threshold=report.iou_threshold,
        background_threshold=background_threshold,
        image_ids=report.image_ids,
        box_format=box_format,
    )


def _missed(g, g_label, row: int, image) -> _Error:
    return _Error("missed", image, None, row, g_label[row], None, (g_label[row], -1))


def _fix(
    table: dict[str, _AP],
    errors: list[_Error],
    chosen,
    *,
    drop_false: bool = False,
    minus: dict[str, int] | None = None,
) -> dict[str, _AP]:
    """TIDE's ``fix_errors``: the errors ``chosen`` fixed, the rest as counted; then the
    correct points; ``drop_false`` gives every false positive score 0 (TIDE's FalsePos),
    ``minus`` takes objects off per label (its FalseNeg: every miss forgiven).
    """
    objects = {name: a.objects for name, a in table.items()}
    out: dict[str, _AP] = {}

    def push(label: str, key, point) -> None:
        if label not in out:
            out[label] = _AP()
        if drop_false:  # TIDE's FalsePos: right points score 1, false ones 0
            point = (1.0, True) if point[1] else (0.0, False)
        out[label].points[key] = point

    for e in errors:
        label_point = e.fixed if chosen(e) else e.original
        if label_point is None:
            continue
        label, point = label_point
        if point == -1:
            objects[label] = objects.get(label, 0) - 1
            continue
        key = ("p", e.pred) if e.pred is not None else ("g", e.gt)
        push(label, key, point)
    for name, a in table.items():
        for key, point in a.points.items():
            if point[1]:
                push(name, key, point)
    for name, n in objects.items():
        if name not in out:
            out[name] = _AP()
        out[name].objects = n - (minus or {}).get(name, 0)
    return out


def _error_frame(errors: list[_Error], g, p) -> pd.DataFrame:
    cols = ["type", "image_id", "label", "score", "x0", "y0", "x1", "y1"]
    cols += ["gt_label", "gt_x0", "gt_y0", "gt_x1", "gt_y1"]
    rows = []
    for e in errors:
        box = p.xyxy[e.pred].tolist() if e.pred is not None else [np.nan] * 4
        score = float(p.score[e.pred]) if e.pred is not None else np.nan
        if e.gt is not None:
            gt_label = g.frame["label"].iloc[e.gt]
            gt_box = g.xyxy[e.gt].tolist()
        else:
            gt_label, gt_box = None, [np.nan] * 4
        rows.append([e.kind, e.image_id, e.label, score, *box, gt_label, *gt_box])
    return pd.DataFrame(rows, columns=cols)
