"""Point to label: one click on an object proposes its box.

Two sources, best first:

- **a detector** (`from_detections`: the Annotator's ``run=``): of every box the model
  keeps on the image (down to a score of ``MIN_SCORE``), those containing the click, ranked
  by score and by how near the click is to the box's centre (a person clicks on the middle
  of an object);
- **the pixels** (`grow_box`), when no detector exists or none of its boxes holding the
  click scores ``SURE`` (a doubtful detector box is proposed only where the pixels find
  nothing):
  the region around the click that stands out from its surroundings. The surface under it
  is a plane fitted to the border of a window around the click, its spread the border's
  MAD about that plane (a lighting gradient, grain and noise are not objects); the pixels
  of the 3×3-blurred window deviating from the plane by more than two spreads and half the
  deviation of the most deviant pixel near the click (an edge at half maximum), joined to
  that pixel, are the object; where the unblurred pixels stand out clearly they draw its
  edge (a one-pixel scratch stays one pixel wide). The window doubles while the region
  reaches its edge, or while nothing in it stands out (it may lie inside a large object).

`propose_box` is what the Annotator's point tool calls. ``bench/bench_point.py`` measures
both sources on held-out generated inspection images: the share of clicks whose proposal
overlaps the object at IoU ≥ 0.7, and the seconds a box costs (``hardex_nb.review_time``).
Measured there (150 objects): the pixels give IoU ≥ 0.7 for 65% of clicks (holes 97%,
scratches 84%, dents 54%, stains 21%), 5.7 s a box against 7.0 s drawn (19% saved); a
detector trained on the CPU on 50 images scores no box ``SURE`` and changes nothing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

MIN_SCORE = 0.05  # the lowest detector score a proposal may have
SURE = 0.3  # a detector box from this score is proposed before the pixels' region
SEED_RADIUS = 4  # px around the click searched for the object's most deviant pixel
MIN_WINDOW = 24  # px each side of the click: the smallest window looked at
HALF = 0.5  # of the peak deviation: the edge of a blurred object (its half maximum)
BRIDGE = 2  # px: gaps of twice this within an object are bridged
CORE = 0.3  # of the blurred region: what the unblurred pixels must hold to draw the edge


@dataclass
class Proposal:
    """A proposed box in image pixels; ``label`` and ``score`` come from the detector
    (None from the pixels); ``source`` is ``"detector"`` or ``"pixels"``."""

    x0: float
    y0: float
    x1: float
    y1: float
    label: str | None
    score: float | None
    source: str

    def as_dict(self) -> dict:
        return asdict(self)


def from_detections(
    boxes: np.ndarray, scores: np.ndarray, labels: list, x: float, y: float
) -> Proposal | None:
    """The detector's box for a click at (x, y): of the boxes holding the point and scoring
    at least ``MIN_SCORE``, the best by score × (1 − half the click's offset from the centre,
    0 at the centre and 1 at an edge); None when no box holds it."""
    boxes = np.asarray(boxes, float).reshape(-1, 4)
    scores = np.asarray(scores, float).ravel()
    inside = (
        (boxes[:, 0] <= x)
        & (x <= boxes[:, 2])
        & (boxes[:, 1] <= y)
        & (y <= boxes[:, 3])
        & (scores >= MIN_SCORE)
    )
    if not inside.any():
        return None
    half_w = np.maximum((boxes[:, 2] - boxes[:, 0]) / 2, 1e-6)
    half_h = np.maximum((boxes[:, 3] - boxes[:, 1]) / 2, 1e-6)
    off = np.maximum(
        np.abs(x - (boxes[:, 0] + boxes[:, 2]) / 2) / half_w,
        np.abs(y - (boxes[:, 1] + boxes[:, 3]) / 2) / half_h,
    )
    rank = np.where(inside, scores * (1 - 0.5 * np.clip(off, 0, 1)), -1.0)
    k = int(np.argmax(rank))
    x0, y0, x1, y1 = (float(v) for v in boxes[k])
    return Proposal(x0, y0, x1, y1, labels[k], float(scores[k]), "detector")


def _blur(a: np.ndarray) -> np.ndarray:
    """3×3 mean, edges repeated."""
    p = np.pad(a, 1, mode="edge")
    h, w = a.shape
    out = np.zeros_like(a)
    for dy in range(3):
        for dx in range(3):
            out += p[dy : dy + h, dx : dx + w]
    return out / 9.0


def _background(win: np.ndarray, edge: int = 3) -> tuple[np.ndarray, float]:
    """The surface under an object: a plane fitted to the window's border (a lighting
    gradient across the part is not an object), refitted without the border pixels far
    from it (another object crossing the border), and the spread of the border about it
    (1.4826 × MAD, + 1 grey level)."""
    h, w = win.shape
    on_edge = np.zeros((h, w), bool)
    on_edge[:edge] = on_edge[-edge:] = True
    on_edge[:, :edge] = on_edge[:, -edge:] = True
    ys, xs = np.nonzero(on_edge)
    values = win[on_edge].astype(np.float64)
    design = np.column_stack([xs, ys, np.ones_like(xs)]).astype(np.float64)
    keep = np.ones(len(values), bool)
    for _ in range(2):
        coef, *_ = np.linalg.lstsq(design[keep], values[keep], rcond=None)
        residual = values - design @ coef
        mad = float(np.median(np.abs(residual[keep])))
        keep = np.abs(residual) <= 3 * 1.4826 * mad + 1.0
    yy, xx = np.mgrid[0:h, 0:w]
    return coef[0] * xx + coef[1] * yy + coef[2], 1.4826 * mad + 1.0


def _dilate(mask: np.ndarray, r: int) -> np.ndarray:
    """``mask`` grown by ``r`` px (a square)."""
    out = mask.copy()
    h, w = mask.shape
    p = np.pad(mask, r)
    for dy in range(2 * r + 1):
        for dx in range(2 * r + 1):
            out |= p[dy : dy + h, dx : dx + w]
    return out


def _component(mask: np.ndarray, seed: tuple[int, int]) -> np.ndarray:
    """The pixels of ``mask`` 8-connected to ``seed`` (grown a ring at a time)."""
    region = np.zeros_like(mask)
    region[seed] = True
    while True:
        p = np.pad(region, 1)
        h, w = region.shape
        grown = np.zeros_like(region)
        for dy in range(3):
            for dx in range(3):
                grown |= p[dy : dy + h, dx : dx + w]
        grown &= mask
        if (grown == region).all():
            return region
        region = grown


def grow_box(rgb: np.ndarray, x: float, y: float) -> Proposal | None:
    """The box of the region at (x, y) that stands out from its surroundings (see the
    module's docstring); None when nothing near the click does."""
    gray = np.asarray(rgb, np.float32)
    if gray.ndim == 3:
        gray = gray.mean(axis=2)
    height, width = gray.shape
    cx, cy = int(np.clip(x, 0, width - 1)), int(np.clip(y, 0, height - 1))
    r = max(MIN_WINDOW, min(height, width) // 8)
    while True:
        x0, y0 = max(0, cx - r), max(0, cy - r)
        x1, y1 = min(width, cx + r + 1), min(height, cy + r + 1)
        win = _blur(gray[y0:y1, x0:x1])
        level, spread = _background(win)
        deviation = np.abs(win - level)
        sy, sx = cy - y0, cx - x0
        ys = slice(max(0, sy - SEED_RADIUS), sy + SEED_RADIUS + 1)
        xs = slice(max(0, sx - SEED_RADIUS), sx + SEED_RADIUS + 1)
        near = deviation[ys, xs]
        k = int(np.argmax(near))
        seed = (ys.start + k // near.shape[1], xs.start + k % near.shape[1])
        peak = float(deviation[seed])
        if peak < 3.0 * spread:
            if r >= max(height, width):
                return None  # nothing near the click stands out from its surroundings
            r *= 2  # or the window lies inside the object: look wider
            continue
        mask = deviation > max(2.0 * spread, HALF * peak)
        # gaps up to 2 * BRIDGE px do not split an object (a dent: bright on one side, dark
        # on the other, level with its surroundings across the middle)
        region = _component(_dilate(mask, BRIDGE), seed) & mask
        # the blur widens a thin line by a pixel each side and rounds a pit's tips off:
        # where the unblurred pixels stand out clearly, they draw the edge
        sharp = gray[y0:y1, x0:x1]
        sharp_level, sharp_spread = _background(sharp)
        raw = np.abs(sharp - sharp_level)
        near = _dilate(region, 1)
        core = near & (raw > max(3.0 * sharp_spread, HALF * float(raw[near].max())))
        if core.sum() >= CORE * region.sum():
            region = _component(_dilate(core, BRIDGE), seed) & core if core[seed] else core
        rows, cols = np.nonzero(region)
        touches = (
            (rows.min() == 0 and y0 > 0)
            or (cols.min() == 0 and x0 > 0)
            or (rows.max() == win.shape[0] - 1 and y1 < height)
            or (cols.max() == win.shape[1] - 1 and x1 < width)
        )
        if not touches or r >= max(height, width):
            break
        r *= 2
    return Proposal(
        float(x0 + cols.min()),
        float(y0 + rows.min()),
        float(x0 + cols.max() + 1),
        float(y0 + rows.max() + 1),
        None,
        None,
        "pixels",
    )


def propose_box(
    rgb: np.ndarray,
    x: float,
    y: float,
    detections: tuple[np.ndarray, np.ndarray, list] | None = None,
) -> Proposal | None:
    """The box one click at (x, y) proposes: the detector's (``detections``: its boxes,
    scores and label names on the image) when one of its boxes holding the click scores at
    least ``SURE``, else the pixels' region of ``rgb``, else a doubtful detector box; None
    when nothing is found.
    """
    found = None
    if detections is not None:
        boxes, scores, labels = detections
        found = from_detections(boxes, scores, labels, x, y)
        if found is not None and found.score is not None and found.score >= SURE:
            return found
    # a doubtful detector box is kept only where the pixels find nothing
    return grow_box(rgb, x, y) or found
