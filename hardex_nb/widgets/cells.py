"""Cells of the dataset's frames as the widgets send them: plain JSON values, one place.

pandas gives NaN, NA, NumPy scalars, categories and timestamps; the browser wants None,
numbers, strings. `plain` turns any cell into that, `number` / `text`
say what a field must be."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def missing(value: Any) -> bool:
    """NaN, None, pandas' NA or NaT."""
    if value is None:
        return True
    try:
        return bool(value != value)  # NaN, NaT; NA raises TypeError
    except TypeError:
        return True


def plain(value: Any) -> Any:
    """``value`` as JSON can hold it (None for a missing one)."""
    if missing(value):
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def number(value: Any) -> float | None:
    """A float, or None for a missing value."""
    return None if missing(value) else float(value)


def text(value: Any) -> str | None:
    """A string, or None for a missing value (or one that is not text)."""
    return value if isinstance(value, str) else None


def label(value: Any) -> str | None:
    """A label (a category or a string), or None."""
    return None if missing(value) else str(value)


def plural(n: int, noun: str) -> str:
    """``1 image``, ``2 images``: a count with its noun."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"
