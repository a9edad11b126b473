"""The Annotator's undo steps: one small class per kind of edit, each able to revert itself.

A :class:`Step` is what one user action did on one image (its ``sample_id``): a list of
edits, reverted newest first. The :class:`History` keeps the last ``limit`` steps (a deleted
image's step holds its bytes: the history never grows without end).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .annotator import Annotator

BOX_FIELDS = ("x0", "y0", "x1", "y1")
RESTORED_FIELDS = ("label", *BOX_FIELDS, "angle", "text", "origin", "hard_type")


@dataclass
class Edit:
    """One edit of a step. ``revert`` undoes it on sample ``sid`` and returns the sample's
    id afterwards (an image added back gets a new one); ``renumbered`` is the same edit
    naming annotation ``new`` where it named ``old`` (a restored annotation's new id)."""

    def revert(self, w: Annotator, sid: int) -> int:
        raise NotImplementedError

    def renumbered(self, old: int, new: int) -> Edit:
        return self


@dataclass
class Added(Edit):
    ann_id: int

    def revert(self, w: Annotator, sid: int) -> int:
        w.ds.delete_annotations([self.ann_id])
        return sid

    def renumbered(self, old: int, new: int) -> Edit:
        return Added(new) if self.ann_id == old else self


@dataclass
class _OfAnnotation(Edit):
    record: dict[str, Any]  # the annotation as the widget showed it

    def renumbered(self, old: int, new: int) -> Edit:
        if self.record["ann_id"] != old:
            return self
        return replace(self, record={**self.record, "ann_id": new})


@dataclass
class Deleted(_OfAnnotation):
    """A deleted annotation: reverting adds it back (under a new id, which the steps before
    it then name)."""

    def revert(self, w: Annotator, sid: int) -> int:
        w.renumber(self.record["ann_id"], w._restore(self.record, sid))
        return sid


@dataclass
class Updated(_OfAnnotation):
    """The annotation before an update: reverting writes those fields back."""

    def revert(self, w: Annotator, sid: int) -> int:
        old = self.record
        fields = {k: old[k] for k in RESTORED_FIELDS}
        if old["points"] is not None:
            fields["points"] = old["points"]
        w.ds.update_annotation(old["ann_id"], **fields)
        return sid


@dataclass
class SetLabel(Edit):
    label: str | None

    def revert(self, w: Annotator, sid: int) -> int:
        w.ds.set_label(sid, self.label)
        return sid


@dataclass
class RenameLabel(Edit):
    new: str
    old: str

    def revert(self, w: Annotator, sid: int) -> int:
        w.ds.rename_label(self.new, self.old)
        return sid


@dataclass
class Status(Edit):
    status: str

    def revert(self, w: Annotator, sid: int) -> int:
        w.ds.set_status(sid, self.status)
        return sid


@dataclass
class SetHard(Edit):
    hard: bool
    reasons: str
    score: float | None

    def revert(self, w: Annotator, sid: int) -> int:
        w.ds.mark_hard(sid, self.hard, reasons=self.reasons, score=self.score, replace=True)
        return sid


@dataclass
class Requeue(Edit):
    """A Review image that left the queue goes back to where it was."""

    index: int

    def revert(self, w: Annotator, sid: int) -> int:
        w._order.insert(min(self.index, len(w._order)), sid)
        w._sync_queue()
        return sid


@dataclass
class DeletedSample(Edit):
    saved: dict[str, Any]  # its bytes, fields, annotations and place in the queue

    def revert(self, w: Annotator, sid: int) -> int:
        return w._restore_sample(self.saved)


@dataclass
class Step:
    sample_id: int
    edits: list[Edit] = field(default_factory=list)

    @property
    def adds_an_image_back(self) -> bool:
        return bool(self.edits) and isinstance(self.edits[0], DeletedSample)


class History:
    """The undo steps, newest last, at most ``limit``."""

    def __init__(self, limit: int):
        self._steps: deque[Step] = deque(maxlen=limit)

    def __len__(self) -> int:
        return len(self._steps)

    def push(self, step: Step) -> None:
        self._steps.append(step)

    def pop(self) -> Step:
        return self._steps.pop()

    def renumber(self, old: int, new: int) -> None:
        """Steps that name annotation ``old`` name ``new`` now (it was restored anew)."""
        for step in self._steps:
            step.edits = [e.renumbered(old, new) for e in step.edits]

    def move(self, old_sid: int, new_sid: int) -> None:
        """Steps made on image ``old_sid`` belong to ``new_sid`` (it was added back)."""
        for step in self._steps:
            if step.sample_id == old_sid:
                step.sample_id = new_sid
