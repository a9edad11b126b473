"""COCOeval's inner loops, compiled: greedy matching per image and label, and accumulation
into interpolated precision.

Written as pycocotools' ``evaluateImg`` and ``accumulate`` are, loop for loop, and compiled
with numba (cached on disk: the first call in a fresh install compiles for a few seconds,
later processes load the machine code). `hardex_nb.evaluation` prepares the arrays and
builds the report; nothing here knows of frames or labels.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit

#: above this many ground-truth boxes in one (image, label) group, each prediction looks only
#: at those its x-range can overlap (sorted by x), not at all of them
SWEEP_FROM = 64


@njit(cache=True, nogil=True)
def _iou(dxywh, gxywh, d, g, crowd):
    """pycocotools' ``bbIou`` for one pair, operation for operation (crowd: the
    detection's area is the union)."""
    dx, dy, dw, dh = dxywh[d, 0], dxywh[d, 1], dxywh[d, 2], dxywh[d, 3]
    gx, gy, gw, gh = gxywh[g, 0], gxywh[g, 1], gxywh[g, 2], gxywh[g, 3]
    w = min(dw + dx, gw + gx) - max(dx, gx)
    if w <= 0:
        return 0.0
    h = min(dh + dy, gh + gy) - max(dy, gy)
    if h <= 0:
        return 0.0
    inter = w * h
    da = dw * dh
    return inter / (da if crowd else da + gw * gh - inter)


@njit(cache=True, nogil=True, parallel=True)
def greedy_match(
    d_rows,
    d_start,
    d_count,
    g_rows,
    g_start,
    g_count,
    dxywh,
    gxywh,
    gcrowd,
    gign,
    limits,
    matched,
    ignored,
    gt_dt,
    dt_iou,
    gt_iou,
    threads,
):
    """Match every group's detections (``d_rows[d_start:d_start + d_count]``, highest score
    first) to its ground truth (``g_rows[...]``, input order) for each area range ``a``
    (``gign[a]``: ground truth ignored there) and IoU limit ``t``, as ``evaluateImg`` does:
    ground truth not ignored comes first, a taken one is skipped unless a crowd region, the
    best IoU at or above the limit wins (the last one on ties), a match to a counted object
    stops the search before the ignored ones.

    Writes ``matched[d, a, t]``, ``ignored[d, a, t]`` (matched to ignored ground truth),
    ``gt_dt[t, g]`` (a detection matched to it in the first area range, or left as it
    was), and ``dt_iou`` / ``gt_iou`` (IoU with the partner at the first limit in the first
    range, else the best IoU in the group). ``threads``: how many threads share the groups,
    cut into four pieces a thread of about equal work (`threads`).
    """
    bounds = _balanced(d_count * g_count + d_count + g_count, 4 * threads)
    for c in numba.prange(bounds.shape[0] - 1):  # groups apart: each thread its own rows
        _match_groups(
            bounds[c],
            bounds[c + 1],
            d_rows,
            d_start,
            d_count,
            g_rows,
            g_start,
            g_count,
            dxywh,
            gxywh,
            gcrowd,
            gign,
            limits,
            matched,
            ignored,
            gt_dt,
            dt_iou,
            gt_iou,
        )


def threads() -> int:
    """Threads numba may use (``NUMBA_NUM_THREADS``, the machine's cores by default)."""
    return numba.get_num_threads()


@njit(cache=True, nogil=True)
def _balanced(cost, parts):
    """Bounds cutting ``range(len(cost))`` into up to ``parts`` pieces of about equal total
    ``cost`` (a crowded image alone in its piece), for threads to share."""
    n = cost.shape[0]
    parts = max(1, min(parts, n))
    total = np.cumsum(cost)
    goals = (np.arange(1, parts) * (total[-1] if n else 0)) / parts
    inner = np.searchsorted(total, goals)
    bounds = np.empty(parts + 1, dtype=np.int64)
    bounds[0], bounds[parts] = 0, n
    for i in range(parts - 1):
        bounds[i + 1] = max(bounds[i], min(n, inner[i] + 1))
    return bounds


@njit(cache=True, nogil=True)
def _match_groups(
    lo,
    hi,
    d_rows,
    d_start,
    d_count,
    g_rows,
    g_start,
    g_count,
    dxywh,
    gxywh,
    gcrowd,
    gign,
    limits,
    matched,
    ignored,
    gt_dt,
    dt_iou,
    gt_iou,
):
    """`greedy_match` for groups ``lo`` to ``hi``, with its own scratch arrays."""
    A, T = gign.shape[0], limits.shape[0]
    width_d, width_g = 0, 0
    for k in range(lo, hi):
        width_d = max(width_d, d_count[k])
        width_g = max(width_g, g_count[k])
    lowest = limits.min()
    # each detection's ground truth at or above the lowest limit (below it, one is passed
    # over at every limit), in input order: rows start[r]:start[r + 1] of near_j / near_iou
    start = np.empty(width_d + 1, dtype=np.int64)
    near_j = np.empty(max(width_g, 16), dtype=np.int64)
    near_iou = np.empty(max(width_g, 16))
    pick = np.empty(width_g, dtype=np.int64)  # one detection's candidates in COCOeval's order
    taken = np.empty((T, width_g), dtype=np.bool_)
    ign = np.empty(width_g, dtype=np.bool_)
    g_best = np.empty(width_g)
    partner = np.empty(width_g, dtype=np.int64)  # the row matched at the first limit
    partner_iou = np.empty(width_g)
    x_of = np.empty(width_g)
    for k in range(lo, hi):
        D, M, ds, gs = d_count[k], g_count[k], d_start[k], g_start[k]
        g_best[:M] = 0.0
        partner[:M] = -1
        start[0] = 0
        swept = M > SWEEP_FROM  # a crowded image: only ground truth near in x is looked at
        if swept:
            for j in range(M):
                x_of[j] = gxywh[g_rows[gs + j], 0]
            by_x = np.argsort(x_of[:M])
            x_sorted = x_of[:M][by_x]
            widest = 0.0
            for j in range(M):
                widest = max(widest, gxywh[g_rows[gs + j], 2])
        for r in range(D):
            d, best, c = d_rows[ds + r], 0.0, start[r]
            lo_j, hi_j = 0, M
            if swept:  # overlap needs gx < dx + dw and gx > dx - gw (with a margin)
                dx, dw = dxywh[d, 0], dxywh[d, 2]
                slack = 1e-9 * (abs(dx) + dw + widest + 1.0)
                lo_j = np.searchsorted(x_sorted, dx - widest - slack)
                hi_j = np.searchsorted(x_sorted, dx + dw + slack, side="right")
            for jj in range(lo_j, hi_j):
                j = by_x[jj] if swept else jj
                g = g_rows[gs + j]
                v = _iou(dxywh, gxywh, d, g, gcrowd[g])
                best = max(best, v)
                g_best[j] = max(g_best[j], v)
                if v >= lowest:
                    if c == near_j.shape[0]:  # grow the candidate store
                        near_j = np.concatenate((near_j, np.empty_like(near_j)))
                        near_iou = np.concatenate((near_iou, np.empty_like(near_iou)))
                    near_j[c], near_iou[c] = j, v
                    c += 1
            if swept:  # back to input order, COCOeval's: an insertion sort of a few
                for i in range(start[r] + 1, c):
                    j, v, h = near_j[i], near_iou[i], i
                    while h > start[r] and near_j[h - 1] > j:
                        near_j[h], near_iou[h] = near_j[h - 1], near_iou[h - 1]
                        h -= 1
                    near_j[h], near_iou[h] = j, v
            start[r + 1] = c
            dt_iou[d] = best
        for a in range(A):
            for j in range(M):
                ign[j] = gign[a, g_rows[gs + j]]
            taken[:, :M] = False
            for r in range(D):
                lo_r, hi_r = start[r], start[r + 1]
                if lo_r == hi_r:
                    continue
                c = 0  # counted ground truth first, then the ignored (stable)
                for i in range(lo_r, hi_r):
                    if not ign[near_j[i]]:
                        pick[c] = i
                        c += 1
                for i in range(lo_r, hi_r):
                    if ign[near_j[i]]:
                        pick[c] = i
                        c += 1
                d = d_rows[ds + r]
                for t in range(T):
                    best, m, m_iou = limits[t], -1, 0.0
                    for ii in range(c):
                        j = near_j[pick[ii]]
                        if taken[t, j] and not gcrowd[g_rows[gs + j]]:
                            continue
                        if m > -1 and not ign[m] and ign[j]:
                            break  # the first ignored candidate ends it after a counted match
                        v = near_iou[pick[ii]]
                        if v < best:
                            continue
                        best, m, m_iou = v, j, v
                    if m == -1:
                        continue
                    taken[t, m] = True
                    matched[d, a, t] = True
                    ignored[d, a, t] = ign[m]
                    if a == 0:
                        gt_dt[t, g_rows[gs + m]] = d
                        if t == 0:
                            dt_iou[d] = m_iou
                            partner[m], partner_iou[m] = r, m_iou
        for j in range(M):  # ground truth: IoU with its partner at the first limit, else its best
            gt_iou[g_rows[gs + j]] = partner_iou[j] if partner[j] >= 0 else g_best[j]


@njit(cache=True, nogil=True, parallel=True)
def accumulate(rows, label_start, rank, matched, ignored, counted, combos, recall_points, threads):
    """``accumulate``'s interpolated precision and recall per label and (area range, max
    detections) combination.

    ``rows``: detection rows by label, then falling score (stable: image order on ties),
    label ``k`` at ``rows[label_start[k]:label_start[k + 1]]``; ``matched`` and ``ignored``
    are ``(Nd, A, T)`` (a detection's flags together); ``rank``: each row's rank by
    score within its image and label; ``counted[a, k]``: objects not ignored; ``combos[c]``:
    (area index, max detections). Returns ``precision (K, C, T, R)`` and ``recall (K, C, T)``,
    -1 where a label has no counted object (COCOeval's "absent").

    COCOeval interpolates over every counted detection; the interpolated precision at a
    recall level is the highest precision at or past it, and a false detection's precision
    is below that of the true one before it, so only the true ones are kept here: the same
    numbers, one division per true detection. ``threads``: how many threads share the labels.
    """
    K, C = label_start.shape[0] - 1, combos.shape[0]
    T, R = matched.shape[2], recall_points.shape[0]
    precision = np.full((K, C, T, R), -1.0)
    recall = np.full((K, C, T), -1.0)
    bounds = _balanced(label_start[1:] - label_start[:-1] + 1, threads)
    for c in numba.prange(bounds.shape[0] - 1):  # labels apart: each thread its own
        _accumulate_labels(
            bounds[c],
            bounds[c + 1],
            rows,
            label_start,
            rank,
            matched,
            ignored,
            counted,
            combos,
            recall_points,
            precision,
            recall,
        )
    return precision, recall


@njit(cache=True, nogil=True)
def _accumulate_labels(
    lo,
    hi,
    rows,
    label_start,
    rank,
    matched,
    ignored,
    counted,
    combos,
    recall_points,
    precision,
    recall,
):
    """`accumulate` for labels ``lo`` to ``hi``, with its own scratch arrays."""
    C, T, R = combos.shape[0], matched.shape[2], recall_points.shape[0]
    n_max = 0
    for k in range(lo, hi):
        n_max = max(n_max, label_start[k + 1] - label_start[k])
    pr = np.empty((C, T, n_max))  # precision at each true detection
    n = np.empty((C, T), dtype=np.int64)  # counted detections so far
    tp = np.empty((C, T), dtype=np.int64)  # true ones among them
    eps = np.spacing(1.0)
    for k in range(lo, hi):
        n[:] = 0
        tp[:] = 0
        for i in range(label_start[k], label_start[k + 1]):
            d, r = rows[i], rank[i]
            for c in range(C):
                if r >= combos[c, 1]:
                    continue
                a = combos[c, 0]
                for t in range(T):
                    if ignored[d, a, t]:
                        continue
                    n[c, t] += 1
                    if matched[d, a, t]:
                        pr[c, t, tp[c, t]] = (tp[c, t] + 1) / (n[c, t] + eps)
                        tp[c, t] += 1
        for c in range(C):
            n_gt = counted[combos[c, 0], k]
            if n_gt == 0:
                continue
            for t in range(T):
                m, p = tp[c, t], pr[c, t]
                for i in range(m - 1, 0, -1):  # precision made monotone from the end
                    if p[i] > p[i - 1]:
                        p[i - 1] = p[i]
                recall[k, c, t] = m / n_gt
                i = 0  # recall after the i-th true detection: (i + 1) / n_gt
                for q in range(R):  # the first point at or past each recall level
                    while i < m and (i + 1) / n_gt < recall_points[q]:
                        i += 1
                    precision[k, c, t, q] = p[i] if i < m else 0.0


@njit(cache=True, nogil=True)
def stable_by_key(rows, keys, n_keys):
    """``rows`` reordered by ``keys[rows]`` (integers in ``[0, n_keys)``), keeping their order
    within a key: a counting sort, one pass to count and one to place."""
    start = np.zeros(n_keys + 1, dtype=np.int64)
    for r in rows:
        start[keys[r] + 1] += 1
    for k in range(n_keys):
        start[k + 1] += start[k]
    out = np.empty(rows.shape[0], dtype=np.int64)
    for r in rows:
        k = keys[r]
        out[start[k]] = r
        start[k] += 1
    return out


@njit(cache=True, nogil=True)
def by_falling_score(score):
    """Rows by falling ``score`` (finite), input order on ties: ``np.argsort(-score,
    kind="stable")``, as a radix sort of the floats' bits (four passes of 16 bits)."""
    n = score.shape[0]
    keys = np.empty(n, dtype=np.uint64)
    for i in range(n):
        x = -score[i] + 0.0  # -0.0 becomes 0.0: a tie, as numpy sorts it
        u = np.float64(x).view(np.uint64)
        # the bits in the floats' order: negatives flipped, positives above them
        keys[i] = ~u if u >> np.uint64(63) else u | np.uint64(1 << 63)
    order = np.arange(n)
    spare = np.empty(n, dtype=np.int64)
    spare_keys = np.empty(n, dtype=np.uint64)  # the keys travel with their rows
    count = np.empty(65537, dtype=np.int64)
    for shift in range(0, 64, 16):
        count[:] = 0
        s = np.uint64(shift)
        for i in range(n):
            count[((keys[i] >> s) & np.uint64(0xFFFF)) + 1] += 1
        for b in range(65536):
            count[b + 1] += count[b]
        for i in range(n):
            b = (keys[i] >> s) & np.uint64(0xFFFF)
            spare[count[b]] = order[i]
            spare_keys[count[b]] = keys[i]
            count[b] += 1
        order, spare = spare, order
        keys, spare_keys = spare_keys, keys
    return order
