"""The hard-example vocabulary, in one place: reason codes and their texts, box hard types,
and how reasons are stored. Every layer may import it (it imports nothing of the package
but the error types).
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum, IntEnum

from .errors import ValidationError


class Reason(IntEnum):
    """Why an example is hard: ModelArts' codes 0–5, this project's from 100. Stored as the
    codes joined by ``-`` (``"1-4"``): see `encode_reasons` / `parse_reasons`.
    """

    NO_TARGET = 0
    LOW_CONFIDENCE = 1
    CLUSTER_DISAGREES = 2
    FAR_FROM_CLASS = 3
    INCONSISTENT = 4
    RESOLUTION = 5
    MARKED_BY_HAND = 100
    SUSPECTED_MISLABEL = 101

    @property
    def text(self) -> str:
        """What the reason says, as the widgets and reports show it."""
        return REASON_TEXTS[int(self)]


REASON_TEXTS = {
    0: "no target found",
    1: "low confidence",
    2: "disagrees with training clusters",
    3: "far from same-class training data",
    4: "inconsistent across augmented views",
    5: "resolution unlike the training set",
    100: "marked hard by hand",
    101: "suspected mislabel",
}


class HardType(str, Enum):
    """A box's kind of hardness."""

    NONE = "none"
    FALSE_POSITIVE = "false_positive"
    MISSED = "missed"


HARD_TYPES = tuple(t.value for t in HardType)


def encode_reasons(codes: Iterable[int]) -> str:
    """Reason codes as stored: unique, in order, joined by ``-`` (``[1, 4, 1]`` → ``"1-4"``)."""
    return "-".join(str(int(c)) for c in dict.fromkeys(int(c) for c in codes))


def parse_reasons(text: str | None) -> list[int]:
    """The codes of a stored reasons string (``"1-4"`` → ``[1, 4]``; ``""`` → ``[]``)."""
    try:
        return [int(c) for c in str(text or "").split("-") if c.strip()]
    except ValueError:
        raise ValidationError(f"reasons={text!r}: codes are whole numbers joined by '-'.") from None
