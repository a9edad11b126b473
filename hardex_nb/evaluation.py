"""Evaluation: per-label detection rate, precision, AP, confusion and error details.

Pure array/DataFrame functions (no Dataset). COCO AP follows pycocotools' COCOeval for
boxes exactly (all areas, 100 detections per image and label, 101 recall points, greedy
matching by score with its tie rules), vectorized over images, labels and IoU thresholds;
``report.map``/``map50`` equal ``COCOeval.stats[0]``/``stats[1]``. Crowd annotations are not
modeled: every ground-truth box counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .errors import ValidationError

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
RECALL_POINTS = np.linspace(0.0, 1.0, 101)
MAX_DETS = 100
BACKGROUND = "background"
MIN_COUNT = 20          # fewer annotations than this: "too few"
MIN_SHARE = 0.05        # fewer than 5% of all objects: "low share"
MIN_AP = 0.3            # COCO AP below this: "low AP"

BOX = ["x0", "y0", "x1", "y1"]


# -- input checks -----------------------------------------------------------------------------
def _check_frame(frame: pd.DataFrame, name: str, score: bool) -> pd.DataFrame:
    if not isinstance(frame, pd.DataFrame):
        raise ValidationError(f"{name}: expected a DataFrame with columns image_id, label, x0, y0, "
                              "x1, y1" + (", score" if score else ""))
    need = ["image_id", "label", *BOX] + (["score"] if score else [])
    missing = [c for c in need if c not in frame.columns]
    if missing:
        raise ValidationError(f"{name}: missing column(s) {missing}.")
    out = frame[need].reset_index(drop=True)
    coords = out[BOX + (["score"] if score else [])].to_numpy(dtype="float64")
    bad = ~np.isfinite(coords).all(axis=1)
    if bad.any():
        raise ValidationError(f"{name}: row {int(np.flatnonzero(bad)[0])} has a NaN or infinite "
                              "coordinate or score.")
    flipped = (out["x1"].to_numpy() < out["x0"].to_numpy()) | (out["y1"].to_numpy() < out["y0"].to_numpy())
    if flipped.any():
        raise ValidationError(f"{name}: row {int(np.flatnonzero(flipped)[0])} has x1 < x0 or y1 < y0.")
    out["label"] = out["label"].astype(str)
    return out


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(N, M)`` IoU of boxes ``a (N, 4)`` and ``b (M, 4)`` (x0, y0, x1, y1), computed as
    pycocotools does from (x, y, w, h)."""
    aw, ah = a[:, 2] - a[:, 0], a[:, 3] - a[:, 1]
    bw, bh = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    w = np.minimum((a[:, 0] + aw)[:, None], (b[:, 0] + bw)[None]) - np.maximum(a[:, 0][:, None], b[:, 0][None])
    h = np.minimum((a[:, 1] + ah)[:, None], (b[:, 1] + bh)[None]) - np.maximum(a[:, 1][:, None], b[:, 1][None])
    inter = np.where((w > 0) & (h > 0), w * h, 0.0)
    union = (aw * ah)[:, None] + (bw * bh)[None] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, 0.0)


# -- greedy matching, vectorized over groups and thresholds ----------------------------------
@dataclass
class _Groups:
    """Detections and ground truth grouped by (image, label), padded to rectangles."""

    dt_index: np.ndarray   # (G, D) row of pred, -1 padding; detections sorted by score
    gt_index: np.ndarray   # (G, M) row of gt, -1 padding
    ious: np.ndarray       # (G, D, M), -1 where padded


def _group(gt: pd.DataFrame, pred: pd.DataFrame, key_gt: np.ndarray, key_dt: np.ndarray,
           max_dets: int | None) -> _Groups:
    keys = np.union1d(key_gt, key_dt)
    g_of_gt = np.searchsorted(keys, key_gt)
    g_of_dt = np.searchsorted(keys, key_dt)
    G = len(keys)
    # detections: by group, then score descending, stable in input order
    order = np.argsort(-pred["score"].to_numpy(), kind="stable")
    order = order[np.argsort(g_of_dt[order], kind="stable")]
    rank_dt = _rank_within(g_of_dt[order])
    if max_dets is not None:
        keep = rank_dt < max_dets
        order, rank_dt = order[keep], rank_dt[keep]
    gt_order = np.argsort(g_of_gt, kind="stable")
    rank_gt = _rank_within(g_of_gt[gt_order])
    D = int(rank_dt.max()) + 1 if len(rank_dt) else 0
    M = int(rank_gt.max()) + 1 if len(rank_gt) else 0
    dt_index = np.full((G, D), -1, dtype=np.int64)
    dt_index[g_of_dt[order], rank_dt] = order
    gt_index = np.full((G, M), -1, dtype=np.int64)
    gt_index[g_of_gt[gt_order], rank_gt] = gt_order
    dbox = pred[BOX].to_numpy(dtype="float64")[np.maximum(dt_index, 0)]   # (G, D, 4)
    gbox = gt[BOX].to_numpy(dtype="float64")[np.maximum(gt_index, 0)] if len(gt) else \
        np.zeros((G, M, 4))
    ious = _pairwise_iou(dbox, gbox)
    ious[dt_index < 0] = -1.0
    ious[np.broadcast_to((gt_index < 0)[:, None, :], ious.shape)] = -1.0
    return _Groups(dt_index, gt_index, ious)


def _rank_within(sorted_groups: np.ndarray) -> np.ndarray:
    """Position of each element within its run of equal values (input sorted by group)."""
    if len(sorted_groups) == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_groups)) + 1]
    lengths = np.diff(np.r_[starts, len(sorted_groups)])
    return np.arange(len(sorted_groups)) - np.repeat(starts, lengths)


def _pairwise_iou(d: np.ndarray, g: np.ndarray) -> np.ndarray:
    """``(G, D, M)`` IoU between the boxes ``d (G, D, 4)`` and ``g (G, M, 4)``."""
    dw, dh = d[..., 2] - d[..., 0], d[..., 3] - d[..., 1]
    gw, gh = g[..., 2] - g[..., 0], g[..., 3] - g[..., 1]
    w = (np.minimum((d[..., 0] + dw)[:, :, None], (g[..., 0] + gw)[:, None, :])
         - np.maximum(d[..., 0][:, :, None], g[..., 0][:, None, :]))
    h = (np.minimum((d[..., 1] + dh)[:, :, None], (g[..., 1] + gh)[:, None, :])
         - np.maximum(d[..., 1][:, :, None], g[..., 1][:, None, :]))
    inter = np.where((w > 0) & (h > 0), w * h, 0.0)
    union = (dw * dh)[:, :, None] + (gw * gh)[:, None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def _match(groups: _Groups, thresholds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """COCO greedy matching. Returns ``dt_gt (T, G, D)`` and ``gt_dt (T, G, M)``: the matched
    partner's column, or -1."""
    G, D, M = groups.ious.shape
    T = len(thresholds)
    dt_gt = np.full((T, G, D), -1, dtype=np.int64)
    gt_dt = np.full((T, G, M), -1, dtype=np.int64)
    if M == 0 or D == 0:
        return dt_gt, gt_dt
    limits = np.minimum(thresholds, 1 - 1e-10)[:, None, None]
    for r in range(D):
        iou = groups.ious[:, r, :][None]                            # (1, G, M)
        ok = (iou >= limits) & (gt_dt < 0)                          # (T, G, M)
        scored = np.where(ok, iou, -np.inf)
        # among equal best IoUs, pycocotools keeps the last ground truth
        rev = scored[:, :, ::-1]
        best = M - 1 - rev.argmax(axis=2)                           # (T, G)
        found = np.take_along_axis(ok, best[:, :, None], axis=2)[:, :, 0]
        t_idx, g_idx = np.nonzero(found)
        dt_gt[t_idx, g_idx, r] = best[t_idx, g_idx]
        gt_dt[t_idx, g_idx, best[t_idx, g_idx]] = r
    return dt_gt, gt_dt


# -- COCO AP ----------------------------------------------------------------------------------
def _average_precision(scores: np.ndarray, tp: np.ndarray, n_gt: int) -> np.ndarray:
    """``(T,)`` AP over 101 recall points for detections of one label.

    ``scores (N,)`` in the accumulation order, ``tp (T, N)`` bool.
    """
    T = tp.shape[0]
    if n_gt == 0:
        return np.full(T, np.nan)
    if len(scores) == 0:
        return np.zeros(T)
    order = np.argsort(-scores, kind="mergesort")
    tp = tp[:, order]
    tps = np.cumsum(tp, axis=1, dtype=np.float64)
    fps = np.cumsum(~tp, axis=1, dtype=np.float64)
    rc = tps / n_gt
    pr = tps / (fps + tps + np.spacing(1))
    pr = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]
    out = np.zeros(T)
    for t in range(T):
        idx = np.searchsorted(rc[t], RECALL_POINTS, side="left")
        q = np.where(idx < len(scores), pr[t][np.minimum(idx, len(scores) - 1)], 0.0)
        out[t] = q.mean()
    return out


@dataclass
class DetectionReport:
    """Per-label detection metrics; see :func:`evaluate_detections`."""

    per_label: pd.DataFrame
    map: float
    map50: float
    iou_threshold: float
    score_threshold: float
    _details: pd.DataFrame = field(repr=False)
    _pairs: pd.DataFrame = field(repr=False)
    labels: list[str] = field(default_factory=list)

    def errors(self, label: str | None = None) -> pd.DataFrame:
        """Per image and box: ``kind`` is ``tp`` (found), ``missed`` (ground truth not
        found) or ``false`` (a prediction matching no ground truth of its label), with
        coordinates, score and best IoU."""
        d = self._details
        return (d if label is None else d[d["label"] == label]).reset_index(drop=True)

    def confusion(self) -> pd.DataFrame:
        """Counts of true label (rows) × predicted label (columns), with ``background``:
        a missed object is (label, background), a false box (background, label)."""
        names = [*self.labels, BACKGROUND]
        table = pd.crosstab(pd.Categorical(self._pairs["true"], categories=names),
                            pd.Categorical(self._pairs["predicted"], categories=names),
                            dropna=False)
        table.index.name, table.columns.name = "true", "predicted"
        return table

    def samples_in_cell(self, true: str, predicted: str) -> list:
        """Image ids behind one confusion-matrix cell."""
        p = self._pairs
        return sorted(p.loc[(p["true"] == true) & (p["predicted"] == predicted), "image_id"].unique())

    def _repr_html_(self) -> str:
        return (f"<b>mAP</b> {self.map:.4f} &nbsp; <b>mAP50</b> {self.map50:.4f}<br>"
                + self.per_label.to_html(index=False, float_format="{:.3f}".format))


def evaluate_detections(gt: pd.DataFrame, pred: pd.DataFrame, *, iou_threshold: float = 0.5,
                        score_threshold: float = 0.5, image_ids: Sequence | None = None,
                        labels: Sequence[str] | None = None) -> DetectionReport:
    """Evaluate box predictions against ground truth.

    Parameters
    ----------
    gt : DataFrame
        Columns image_id, label, x0, y0, x1, y1 (pixels).
    pred : DataFrame
        The same plus score.
    iou_threshold, score_threshold : float
        For detection rate (recall), precision, errors and confusion.
    image_ids : sequence, optional
        Every evaluated image (images without ground truth still count for false boxes);
        default: those in gt or pred.
    labels : sequence of str, optional
        Label order of the report; default: sorted labels of gt and pred.

    Returns
    -------
    DetectionReport
        ``per_label`` columns: label, detection_rate, precision, ap, ap50, share, count,
        warning. ``map``/``map50``: means of ap/ap50 over labels with ground truth.
    """
    gt = _check_frame(gt, "gt", score=False)
    pred = _check_frame(pred, "pred", score=True)
    if image_ids is not None:
        allowed = set(image_ids)
        pred = pred[pred["image_id"].isin(allowed)].reset_index(drop=True)
        gt = gt[gt["image_id"].isin(allowed)].reset_index(drop=True)
    names = list(labels) if labels is not None else sorted(set(gt["label"]) | set(pred["label"]))
    lab_id = {n: i for i, n in enumerate(names)}
    for frame, what in ((gt, "gt"), (pred, "pred")):
        unknown = set(frame["label"]) - set(lab_id)
        if unknown:
            raise ValidationError(f"{what}: label(s) {sorted(unknown)} are not in labels={names}.")
    img_codes = pd.Index(sorted(set(gt["image_id"]) | set(pred["image_id"])))
    gi = img_codes.get_indexer(gt["image_id"])
    di = img_codes.get_indexer(pred["image_id"])
    gl = gt["label"].map(lab_id).to_numpy(dtype=np.int64)
    dl = pred["label"].map(lab_id).to_numpy(dtype=np.int64)
    L = max(len(names), 1)
    # groups keyed by (label, image): accumulation order = image order within a label
    key_gt, key_dt = gl * len(img_codes) + gi, dl * len(img_codes) + di
    groups = _group(gt, pred, key_gt, key_dt, MAX_DETS)
    dt_gt, _ = _match(groups, IOU_THRESHOLDS)
    valid = groups.dt_index >= 0
    det_rows = groups.dt_index[valid]
    tp_all = (dt_gt >= 0)[:, valid]                                  # (T, N) in group order
    det_label = dl[det_rows]
    scores = pred["score"].to_numpy(dtype="float64")[det_rows]
    n_gt = np.bincount(gl, minlength=L)
    ap = np.full((len(names), len(IOU_THRESHOLDS)), np.nan)
    starts = np.searchsorted(det_label, np.arange(len(names) + 1))
    for k in range(len(names)):
        s, e = starts[k], starts[k + 1]
        ap[k] = _average_precision(scores[s:e], tp_all[:, s:e], int(n_gt[k]))
    valid_ap = ~np.isnan(ap[:, 0])
    mean_ap = float(ap[valid_ap].mean()) if valid_ap.any() else float("nan")
    mean_ap50 = float(ap[valid_ap, 0].mean()) if valid_ap.any() else float("nan")
    details, pairs = _thresholded(gt, pred, gi, di, gl, dl, names, img_codes, iou_threshold,
                                  score_threshold)
    per_label = _per_label_table(names, n_gt, ap, details)
    return DetectionReport(per_label=per_label, map=mean_ap, map50=mean_ap50,
                           iou_threshold=iou_threshold, score_threshold=score_threshold,
                           _details=details, _pairs=pairs, labels=names)


def _thresholded(gt, pred, gi, di, gl, dl, names, img_codes, iou_threshold, score_threshold):
    """Errors at one IoU and score threshold, and the label-agnostic confusion pairs."""
    keep = pred["score"].to_numpy() >= score_threshold
    p = pred[keep].reset_index(drop=True)
    pdi, pdl = di[keep], dl[keep]
    n_img = len(img_codes)
    names_arr = np.asarray(names, dtype=object)
    groups = _group(gt, p, gl * n_img + gi, pdl * n_img + pdi, None)
    dt_gt, gt_dt = _match(groups, np.array([iou_threshold]))
    p_scores = p["score"].to_numpy(dtype="float64")
    # ground truth: found (tp) or missed
    g_idx, m_idx = np.nonzero(groups.gt_index >= 0)
    gt_rows = groups.gt_index[g_idx, m_idx]
    partner = gt_dt[0, g_idx, m_idx]
    found = partner >= 0
    safe = np.maximum(partner, 0)
    best_gt = groups.ious.max(axis=1, initial=-1.0)[g_idx, m_idx] if groups.ious.size else \
        np.full(len(gt_rows), -1.0)
    iou_gt = np.where(found, groups.ious[g_idx, safe, m_idx] if groups.ious.size else 0.0,
                      np.maximum(best_gt, 0.0))
    score_gt = np.where(found, p_scores[np.maximum(groups.dt_index[g_idx, safe], 0)]
                        if len(p_scores) else np.nan, np.nan)
    part_gt = pd.DataFrame({"image_id": gt["image_id"].to_numpy()[gt_rows],
                            "label": names_arr[gl[gt_rows]],
                            "kind": np.where(found, "tp", "missed")})
    for c in BOX:
        part_gt[c] = gt[c].to_numpy(dtype="float64")[gt_rows]
    part_gt["score"], part_gt["iou"] = score_gt, iou_gt
    # predictions matching no ground truth of their label
    g_idx, r_idx = np.nonzero((groups.dt_index >= 0) & (dt_gt[0] < 0))
    dt_rows = groups.dt_index[g_idx, r_idx]
    best_dt = groups.ious.max(axis=2, initial=-1.0)[g_idx, r_idx] if groups.ious.size else \
        np.full(len(dt_rows), -1.0)
    part_dt = pd.DataFrame({"image_id": p["image_id"].to_numpy()[dt_rows],
                            "label": names_arr[pdl[dt_rows]], "kind": "false"})
    for c in BOX:
        part_dt[c] = p[c].to_numpy(dtype="float64")[dt_rows]
    part_dt["score"], part_dt["iou"] = p_scores[dt_rows], np.maximum(best_dt, 0.0)
    details = pd.concat([part_gt, part_dt], ignore_index=True)
    # confusion: match ignoring labels, one image at a time, highest scores first
    agn = _group(gt, p, gi, pdi, None)
    a_dt_gt, a_gt_dt = _match(agn, np.array([iou_threshold]))
    g_idx, m_idx = np.nonzero(agn.gt_index >= 0)
    rows = agn.gt_index[g_idx, m_idx]
    partner = a_gt_dt[0, g_idx, m_idx]
    pred_label = np.where(partner >= 0, names_arr[pdl[np.maximum(agn.dt_index[g_idx, np.maximum(
        partner, 0)], 0)]] if len(pdl) else BACKGROUND, BACKGROUND)
    pairs_gt = pd.DataFrame({"image_id": gt["image_id"].to_numpy()[rows],
                             "true": names_arr[gl[rows]], "predicted": pred_label})
    g_idx, r_idx = np.nonzero((agn.dt_index >= 0) & (a_dt_gt[0] < 0))
    rows = agn.dt_index[g_idx, r_idx]
    pairs_dt = pd.DataFrame({"image_id": p["image_id"].to_numpy()[rows], "true": BACKGROUND,
                             "predicted": names_arr[pdl[rows]]})
    return details, pd.concat([pairs_gt, pairs_dt], ignore_index=True)


def _per_label_table(names, n_gt, ap, details) -> pd.DataFrame:
    counts = details.groupby(["label", "kind"]).size().unstack(fill_value=0) if len(details) \
        else pd.DataFrame()
    total = max(int(n_gt.sum()), 1)
    rows = []
    for k, name in enumerate(names):
        c = counts.loc[name] if name in counts.index else {}
        tp, missed, false = (int(c.get(x, 0)) for x in ("tp", "missed", "false"))
        rate = tp / (tp + missed) if tp + missed else np.nan
        precision = tp / (tp + false) if tp + false else np.nan
        row = dict(label=name, detection_rate=rate, precision=precision, ap=float(np.nanmean(ap[k]))
                   if not np.isnan(ap[k]).all() else np.nan, ap50=ap[k, 0], share=n_gt[k] / total,
                   count=int(n_gt[k]))
        row["warning"] = label_warning(row["count"], row["share"], row["ap"])
        rows.append(row)
    return pd.DataFrame(rows, columns=["label", "detection_rate", "precision", "ap", "ap50",
                                       "share", "count", "warning"])


def label_warning(count: int, share: float, ap: float | None) -> str:
    """What is wrong with a label's data and what to do; empty when nothing is."""
    notes = []
    if count < MIN_COUNT:
        notes.append(f"too few annotations ({count} < {MIN_COUNT}): label more images with it")
    if share < MIN_SHARE:
        notes.append(f"low share ({share:.1%} of objects < {MIN_SHARE:.0%}): balance the labels")
    if ap is not None and not np.isnan(ap) and ap < MIN_AP:
        notes.append(f"low AP ({ap:.2f} < {MIN_AP}): review its errors and hard examples")
    return "; ".join(notes)


# -- classification -----------------------------------------------------------------------------
@dataclass
class ClassificationReport:
    per_label: pd.DataFrame
    accuracy: float
    confusion_matrix: pd.DataFrame
    _pairs: pd.DataFrame = field(repr=False)
    labels: list[str] = field(default_factory=list)

    def confusion(self) -> pd.DataFrame:
        return self.confusion_matrix

    def samples_in_cell(self, true: str, predicted: str) -> list:
        p = self._pairs
        return p.loc[(p["true"] == true) & (p["predicted"] == predicted), "image_id"].tolist()

    def errors(self, label: str | None = None) -> pd.DataFrame:
        p = self._pairs[self._pairs["true"] != self._pairs["predicted"]]
        return (p if label is None else p[p["true"] == label]).reset_index(drop=True)

    def _repr_html_(self) -> str:
        return (f"<b>accuracy</b> {self.accuracy:.4f}<br>"
                + self.per_label.to_html(index=False, float_format="{:.3f}".format))


def evaluate_classification(labels: Sequence, preds: Sequence, *,
                            label_names: Sequence[str] | None = None,
                            image_ids: Sequence | None = None) -> ClassificationReport:
    """Per-label detection rate (recall), precision, count and share, and the confusion
    matrix (true label rows × predicted label columns)."""
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
    per_label = pd.DataFrame({"label": names, "detection_rate": recall, "precision": precision,
                              "count": support, "share": share})
    per_label["warning"] = [label_warning(int(c), float(s), None) for c, s in zip(support, share)]
    matrix = pd.DataFrame(cm, index=pd.Index(names, name="true"),
                          columns=pd.Index(names, name="predicted"))
    ids = list(image_ids) if image_ids is not None else list(range(len(y)))
    pairs = pd.DataFrame({"image_id": ids, "true": y, "predicted": p})
    acc = float((yi == pi).mean()) if len(y) else float("nan")
    return ClassificationReport(per_label=per_label, accuracy=acc, confusion_matrix=matrix,
                                _pairs=pairs, labels=names)
