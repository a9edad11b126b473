"""Rotated boxes: one definition, used by the dataset, training, evaluation and the formats.

A rotated box is stored like any box (``x0, y0, x1, y1``: the rectangle before turning) with
``angle`` in degrees: the rectangle turned about its centre, clockwise on screen (image ``y``
points down; SVG's ``rotate(angle, cx, cy)``). Its corners are, in order, the turned
top-left, top-right, bottom-right and bottom-left corners, the order DOTA and X-AnyLabeling's
``rotation`` shapes use. torchvision's detectors are axis-aligned: a rotated box trains and
is evaluated as its enclosing axis-aligned box, clipped to the image.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd


def is_turned(angle) -> bool:
    """Whether ``angle`` (degrees, or None / NaN) turns a box at all."""
    return angle is not None and angle == angle and float(angle) % 360 != 0


def centre_inside(x0: float, y0: float, x1: float, y1: float, width: float, height: float) -> bool:
    """The rule for a rotated box in an image: its centre lies inside (its corners may not)."""
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    return 0 <= cx <= width and 0 <= cy <= height


def corners(x0: float, y0: float, x1: float, y1: float, angle: float | None) -> np.ndarray:
    """The four corners ``(4, 2)`` of a box turned by ``angle`` degrees about its centre."""
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    local = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype="float64") - [cx, cy]
    t = math.radians(float(angle or 0.0))
    turn = np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
    return local @ turn.T + [cx, cy]


def from_corners(points) -> tuple[tuple[float, float, float, float], float]:
    """``(box, angle)`` of the rectangle whose corners are ``points`` (4 × 2, in order around
    it; a quadrilateral that is not quite a rectangle gets the rectangle of its first two
    sides). The angle is that of the first side, in (-180, 180]."""
    p = np.asarray(points, dtype="float64").reshape(4, 2)
    cx, cy = p.mean(axis=0)
    w = float(np.hypot(*(p[1] - p[0])))
    h = float(np.hypot(*(p[2] - p[1])))
    angle = math.degrees(math.atan2(p[1, 1] - p[0, 1], p[1, 0] - p[0, 0]))
    if angle <= -180:
        angle += 360
    return (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), angle


def enclosing(
    x0: float, y0: float, x1: float, y1: float, angle: float | None
) -> tuple[float, float, float, float]:
    """The axis-aligned box around a (turned) box."""
    if not is_turned(angle):
        return x0, y0, x1, y1
    c = corners(x0, y0, x1, y1, angle)
    return (float(c[:, 0].min()), float(c[:, 1].min()), float(c[:, 0].max()), float(c[:, 1].max()))


def turned(ann: pd.DataFrame) -> pd.Series:
    """Which rows of an annotation frame are turned boxes (a box or text box whose
    ``angle`` is set and not a whole turn)."""
    if "angle" not in ann.columns:
        return pd.Series(False, index=ann.index)
    angle = pd.to_numeric(ann["angle"], errors="coerce")
    return angle.notna() & (angle % 360 != 0) & ann["kind"].isin(["box", "text"])


def axis_aligned(ann: pd.DataFrame, sizes: pd.DataFrame | None = None) -> pd.DataFrame:
    """``ann`` with each turned box's ``x0..y1`` replaced by its enclosing box, clipped to
    its image when ``sizes`` (indexed by sample_id, columns width and height) is given.
    Rows without an angle are returned as they are."""
    if "angle" not in ann.columns or not len(ann):
        return ann
    rows_turned = turned(ann)
    if not rows_turned.any():
        return ann
    out = ann.copy()
    rows = out.loc[rows_turned]
    boxes = np.array([enclosing(r.x0, r.y0, r.x1, r.y1, r.angle) for r in rows.itertuples()])
    if sizes is not None:
        wh = sizes.loc[rows["sample_id"].astype(int), ["width", "height"]].to_numpy(float)
        boxes = np.clip(boxes, 0, np.concatenate([wh, wh], axis=1))
    out.loc[rows_turned, ["x0", "y0", "x1", "y1"]] = boxes
    return out


def polygon_parts(points) -> list[np.ndarray]:
    """The rings of a polygon as ``(N_i, 2)`` arrays.

    ``points`` is one ring ``[[x, y], ...]`` or, for an object in several pieces (a COCO
    segmentation with several polygons, labelme shapes sharing a ``group_id``), a list of
    rings ``[[[x, y], ...], [[x, y], ...]]``."""
    if points is None or len(points) == 0:
        return []
    first = points[0]
    if len(first) and isinstance(first[0], (list, tuple, np.ndarray)):
        return [np.asarray(part, dtype="float64") for part in points]
    return [np.asarray(points, dtype="float64")]


def polygon_area(points) -> float:
    """Shoelace area of a ring ``(N, 2)``, or the summed area of several rings (0 for
    collinear or repeated points)."""
    total = 0.0
    for p in polygon_parts(points):
        x, y = p[:, 0], p[:, 1]
        total += float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2)
    return total
