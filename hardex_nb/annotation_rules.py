"""Every rule an annotation obeys, in one place: label names, boxes, rotated boxes, polygons,
scores, origins and hard types, and the stored annotation row.

Each check raises `hardex_nb.errors.ValidationError` with what is wrong and what to
do. ``Dataset`` lets it reach the user as it is; an import catches it and lists it, with the
file and line it came from, among every other problem of the import (nothing is written).
"""

from __future__ import annotations

import json
import math
import unicodedata
from typing import Any

import numpy as np

from .errors import ValidationError
from .geometry import centre_inside, is_turned, polygon_area, polygon_parts
from .reasons import HARD_TYPES

TASKS = ("classification", "multilabel", "detection")
WHOLE_IMAGE = ("classification", "multilabel")  # tasks whose labels name the whole image
IGNORE_LABEL = "__ignore__"  # what every format calls an ignore (masked) region
ANNOTATION_FIELDS = (
    "sample_id",
    "kind",
    "label",
    "x0",
    "y0",
    "x1",
    "y1",
    "points",
    "angle",
    "text",
    "score",
    "origin",
    "hard_type",
    "difficult",
    "truncated",
    "occluded",
)


# -- text -----------------------------------------------------------------------------------
def storable(text: str) -> bool:
    """Whether ``text`` encodes as UTF-8 (JSON's ``\\ud800`` escapes decode to lone
    surrogates that no database or file can hold)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def label_problem(name: str) -> str | None:
    """Why a label name cannot travel through every format, or None. Control characters
    (a newline splits classes.txt, XML refuses most of them), leading or trailing spaces
    (YOLO and VOC files lose them) and the reserved ``__ignore__`` (ignore regions) are
    refused."""
    if any(unicodedata.category(c) in ("Cc", "Cs") or c in "\u2028\u2029" for c in name):
        return "holds a control character (a newline, a tab, ...), which label files cannot hold"
    if name != name.strip():
        return "has leading or trailing spaces, which YOLO and VOC files cannot keep"
    if name == IGNORE_LABEL:
        return f"is reserved: {IGNORE_LABEL} marks ignore regions in every format"
    return None


def check_label_name(name: Any) -> str:
    """A new label's name: a non-empty string of valid Unicode that every format carries."""
    if not isinstance(name, str) or not name.strip():
        raise ValidationError(f"label {name!r}: a label is a non-empty string.")
    if not storable(name):
        raise ValidationError(
            f"label {name!r} is not valid Unicode text (it holds a lone surrogate); fix the name."
        )
    problem = label_problem(name)
    if problem:
        raise ValidationError(f"label {name!r} {problem}; pick another name.")
    return name


def check_text(name: str, value: Any) -> None:
    """A text field (OCR text, origin) that the store can hold."""
    if isinstance(value, str) and not storable(value):
        raise ValidationError(f"{name} {value!r} is not valid Unicode (a lone surrogate).")


# -- numbers ----------------------------------------------------------------------------------
def finite(name: str, value: Any) -> float:
    """``value`` as a finite float."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ValidationError(f"{name}={value!r} is not a number.") from None
    except OverflowError:
        raise ValidationError(f"{name}={value!r} is too large (over 1e308).") from None
    if not math.isfinite(out):
        raise ValidationError(f"{name}={value!r} is not finite.")
    return out


def check_score(value: Any, what: str = "a confidence") -> float | None:
    """``None``, or a finite number in [0, 1]."""
    if value is None:
        return None
    score = finite("score", value)
    if not 0.0 <= score <= 1.0:
        raise ValidationError(f"score={score}: {what} lies in [0, 1].")
    return score


def check_origin(origin: Any, hard_type: Any) -> None:
    """Who made an annotation (``human`` or a run version) and its hard type."""
    if not isinstance(origin, str) or not origin:
        raise ValidationError(f"origin={origin!r}: use 'human' or a run version like 'V3'.")
    check_text("origin", origin)
    if hard_type not in HARD_TYPES:
        raise ValidationError(f"hard_type={hard_type!r}: use one of {list(HARD_TYPES)}.")


# -- geometry ---------------------------------------------------------------------------------
def check_box(
    coords,
    width: float,
    height: float,
    *,
    angle: Any = None,
    where: str = "",
    outside: str = "error",
    ordered: bool = True,
) -> tuple[tuple[float, float, float, float], bool]:
    """A box ``(x0, y0, x1, y1)`` on an image of ``width`` × ``height`` px, and whether it was
    clipped.

    ``ordered``: x0 < x1 and y0 < y1 are required (else the corners are sorted first, as the
    files of other tools allow). A turned box (``angle``) keeps its rectangle and needs its
    centre inside the image (training and evaluation clip its enclosing box). Otherwise a
    box reaching outside the image is refused (``outside="error"``) or clipped to it
    (``"clip"``); one with no area inside is always refused. ``where`` names the image.
    """
    coords = tuple(coords)
    if len(coords) != 4:
        raise ValidationError(f"box {coords!r} on {where}: give four coordinates.")
    x0, y0, x1, y1 = (finite(n, v) for n, v in zip(("x0", "y0", "x1", "y1"), coords))
    shown = f"({x0:g}, {y0:g}, {x1:g}, {y1:g})"
    if ordered and (x1 <= x0 or y1 <= y0):
        raise ValidationError(f"box {shown} on {where}: need x0 < x1 and y0 < y1.")
    x0, x1, y0, y1 = min(x0, x1), max(x0, x1), min(y0, y1), max(y0, y1)
    if is_turned(angle):
        if x1 <= x0 or y1 <= y0 or not centre_inside(x0, y0, x1, y1, width, height):
            cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
            raise ValidationError(
                f"rotated box {shown} (angle {angle}) on {where}: it has no area or its "
                f"centre ({cx:g}, {cy:g}) is outside the {width:g}×{height:g} px image."
            )
        return (x0, y0, x1, y1), False
    cx0, cy0 = max(x0, 0.0), max(y0, 0.0)
    cx1, cy1 = min(x1, float(width)), min(y1, float(height))
    if cx1 <= cx0 or cy1 <= cy0:
        raise ValidationError(
            f"box {shown} has no area inside {where} ({width:g}×{height:g} px); fix or delete it."
        )
    clipped = (cx0, cy0, cx1, cy1) != (x0, y0, x1, y1)
    if clipped and outside != "clip":
        raise ValidationError(
            f"box {shown} reaches outside {where} ({width:g}×{height:g} px); clip it to the "
            "image (an import clips with outside='clip')."
        )
    return (cx0, cy0, cx1, cy1), clipped


def check_polygon(
    points, width: float, height: float, *, where: str = "", outside: str = "error"
) -> tuple[list, bool]:
    """A polygon's ring ``[[x, y], ...]`` (3 or more points around an area), or a list of
    rings (an object in pieces), inside the image; returned as nested lists, and whether a
    ring was clipped to the image (``outside="clip"``; else a point outside is refused)."""
    try:
        parts = polygon_parts(points)
    except OverflowError:
        raise ValidationError(
            f"points on {where}: a coordinate is too large (over 1e308)."
        ) from None
    except (TypeError, ValueError):
        raise ValidationError(f"points on {where}: give (N, 2) numbers.") from None
    if not parts:
        raise ValidationError(
            f"points on {where}: a polygon needs shape (N, 2), N ≥ 3; got no points."
        )
    for arr in parts:
        if arr.ndim != 2 or arr.shape[1] != 2 or arr.shape[0] < 3:
            raise ValidationError(
                f"points on {where}: a polygon needs shape (N, 2), N ≥ 3; got {arr.shape}."
            )
        if not np.isfinite(arr).all():
            raise ValidationError(f"points on {where}: NaN or infinite coordinate.")
        if polygon_area(arr) <= 0:
            raise ValidationError(
                f"points on {where} enclose no area (collinear or repeated points); a "
                "polygon needs three or more points around an area."
            )
    limits = np.array([width, height], dtype=float)
    out_of = any(((arr < 0) | (arr > limits)).any() for arr in parts)
    if out_of and outside != "clip":
        raise ValidationError(
            f"points on {where} fall outside the image ({width:g}×{height:g} px)."
        )
    if out_of:
        parts = [np.clip(arr, 0, limits) for arr in parts]
        if polygon_area(parts) <= 0:
            raise ValidationError(
                f"points on {where} have no area inside the image ({width:g}×{height:g} px); "
                "fix or delete the polygon."
            )
    rings = [arr.tolist() for arr in parts]
    return (rings[0] if len(rings) == 1 else rings), out_of


def bounds(points) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) of a polygon's points (every ring of a polygon in pieces)."""
    arr = np.concatenate(polygon_parts(points))
    return (*arr.min(axis=0).tolist(), *arr.max(axis=0).tolist())


# -- the stored row ---------------------------------------------------------------------------
def annotation_row(
    sample_id: int,
    kind: str,
    label: str | None,
    box,
    *,
    points=None,
    angle=None,
    text=None,
    score=None,
    origin: str = "human",
    hard_type: str = "none",
    difficult: bool = False,
    truncated: bool = False,
    occluded: bool = False,
) -> dict:
    """One annotation as the store keeps it (``points`` as JSON, the flags as 0 / 1); the
    one place that builds it (Dataset edits, imports, auto-labels, tiles)."""
    x0, y0, x1, y1 = box if box is not None else (None,) * 4
    return dict(
        sample_id=sample_id,
        kind=kind,
        label=None if kind == "ignore" else label,
        x0=None if x0 is None else float(x0),
        y0=None if y0 is None else float(y0),
        x1=None if x1 is None else float(x1),
        y1=None if y1 is None else float(y1),
        points=json.dumps(points) if points is not None and not isinstance(points, str) else points,
        angle=angle,
        text=text,
        score=score,
        origin=origin or "human",
        hard_type=hard_type or "none",
        difficult=int(bool(difficult)),
        truncated=int(bool(truncated)),
        occluded=int(bool(occluded)),
    )
