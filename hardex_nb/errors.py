"""Error types, one per failure family.

Every message names the thing that is wrong (file, line, field or id) and says what to do.
Each type is also a ``ValueError`` (or ``RuntimeError`` for jobs) so callers that catch
the built-in families keep working.
"""

from __future__ import annotations


class HardexError(Exception):
    """Base class of every error raised on purpose by hardex_nb."""


class ValidationError(HardexError, ValueError):
    """An argument or edit is invalid (unknown id or label, box outside the image, NaN, ...)."""


class ImageError(HardexError, ValueError):
    """An image cannot be used: wrong format, corrupt, too small, too large or too elongated."""


class FormatError(HardexError, ValueError):
    """An annotation or archive file cannot be read; ``problems`` lists every bad file."""

    def __init__(self, message: str, problems: list[str] | None = None):
        self.problems = list(problems or [])
        if self.problems:
            shown = "\n".join(f"  - {p}" for p in self.problems[:50])
            more = len(self.problems) - 50
            if more > 0:
                shown += f"\n  ... and {more} more"
            message = f"{message}\n{shown}"
        super().__init__(message)


class StoreError(HardexError, RuntimeError):
    """The dataset folder or its SQLite file cannot be created, opened or migrated."""


class JobError(HardexError, RuntimeError):
    """A training, auto-label or collect job cannot start or failed."""
