"""The Annotator's undo and redo steps: one small class per kind of edit, each able to
revert itself.

A `Step` is what one user action did on one image (its ``sample_id``): a list of
edits, reverted newest first. Reverting an edit returns its inverse, the edit that does it
again: an undone step becomes a redo step, and a redone one an undo step again. The
`History` keeps the last ``limit`` steps each way (a deleted image's step holds its
bytes: the history never grows without end); a new edit clears the redo steps.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from ..store import FLAG_COLUMNS
from . import cells

if TYPE_CHECKING:
    from .annotator import Annotator

BOX_FIELDS = ("x0", "y0", "x1", "y1")
RESTORED_FIELDS = ("label", *BOX_FIELDS, "angle", "text", "origin", "hard_type", *FLAG_COLUMNS)


@dataclass
class Edit:
    """One edit of a step. ``revert`` undoes it on sample ``sid`` and returns the sample's
    id afterwards (an image added back gets a new one) and the inverse edit (which does it
    again); ``renumbered`` is the same edit naming annotation ``new`` where it named ``old``
    (a restored annotation's new id)."""

    def revert(self, w: Annotator, sid: int) -> tuple[int, Edit]:
        raise NotImplementedError

    def renumbered(self, old: int, new: int) -> Edit:
        return self


@dataclass
class Added(Edit):
    ann_id: int

    def revert(self, w: Annotator, sid: int) -> tuple[int, Edit]:
        record = w._record(self.ann_id, sid)
        w.ds.delete_annotations([self.ann_id])
        return sid, Deleted(record)

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

    def revert(self, w: Annotator, sid: int) -> tuple[int, Edit]:
        new = w._restore(self.record, sid)
        w.renumber(self.record["ann_id"], new)
        return sid, Added(new)


@dataclass
class Updated(_OfAnnotation):
    """The annotation before an update: reverting writes those fields back."""

    def revert(self, w: Annotator, sid: int) -> tuple[int, Edit]:
        old = self.record
        now = w._record(old["ann_id"], sid)
        fields = {k: old[k] for k in RESTORED_FIELDS}
        if old["points"] is not None:
            fields["points"] = old["points"]
        w.ds.update_annotation(old["ann_id"], **fields)
        return sid, Updated(now)


@dataclass
class SetLabel(Edit):
    label: str | None

    def revert(self, w: Annotator, sid: int) -> tuple[int, Edit]:
        now = cells.label(w.ds.sample(sid)["label"])
        w.ds.set_label(sid, self.label)
        return sid, SetLabel(now)


@dataclass
class RenameLabel(Edit):
    new: str
    old: str

    def revert(self, w: Annotator, sid: int) -> tuple[int, Edit]:
        w.ds.rename_label(self.new, self.old)
        return sid, RenameLabel(self.old, self.new)


@dataclass
class Status(Edit):
    status: str

    def revert(self, w: Annotator, sid: int) -> tuple[int, Edit]:
        now = str(w.ds.sample(sid)["status"])
        w.ds.set_status(sid, self.status)
        return sid, Status(now)


@dataclass
class SetHard(Edit):
    hard: bool
    reasons: str
    score: float | None

    def revert(self, w: Annotator, sid: int) -> tuple[int, Edit]:
        row = w.ds.sample(sid)
        now = SetHard(bool(row["hard"]), row["hard_reasons"], cells.number(row["hard_score"]))
        w.ds.mark_hard(sid, self.hard, reasons=self.reasons, score=self.score, replace=True)
        return sid, now


@dataclass
class Requeue(Edit):
    """A Review image that left the queue goes back to where it was."""

    index: int

    def revert(self, w: Annotator, sid: int) -> tuple[int, Edit]:
        w._order.insert(min(self.index, len(w._order)), sid)
        w._sync_queue()
        return sid, Dequeue()


@dataclass
class Dequeue(Edit):
    """A Review image leaves the queue again (a confirm redone)."""

    def revert(self, w: Annotator, sid: int) -> tuple[int, Edit]:
        index = w._order.index(sid) if sid in w._order else 0
        if sid in w._order:
            w._order.remove(sid)
            w._sync_queue()
        return sid, Requeue(index)


@dataclass
class DeletedSample(Edit):
    saved: dict[str, Any]  # its bytes, fields, annotations and place in the queue

    def revert(self, w: Annotator, sid: int) -> tuple[int, Edit]:
        return w._restore_sample(self.saved), DeleteSample()


@dataclass
class DeleteSample(Edit):
    """The image is deleted again (a delete redone); reverting this adds it back."""

    def revert(self, w: Annotator, sid: int) -> tuple[int, Edit]:
        saved = w._save_sample(sid)
        w.ds.delete_samples([sid])
        if sid in w._order:
            w._order.remove(sid)
            w._sync_queue()
        return sid, DeletedSample(saved)


@dataclass
class Step:
    sample_id: int
    edits: list[Edit] = field(default_factory=list)

    @property
    def adds_an_image_back(self) -> bool:
        return bool(self.edits) and isinstance(self.edits[0], DeletedSample)


class History:
    """The undo steps and the redo steps, newest last, at most ``limit`` each."""

    def __init__(self, limit: int):
        self._steps: deque[Step] = deque(maxlen=limit)
        self._redo: deque[Step] = deque(maxlen=limit)

    def __len__(self) -> int:
        return len(self._steps)

    @property
    def redoable(self) -> int:
        return len(self._redo)

    def push(self, step: Step) -> None:
        """A new edit: it can be undone, and what was undone before cannot be redone."""
        self._steps.append(step)
        self._redo.clear()

    def pop(self) -> Step:
        return self._steps.pop()

    def undone(self, step: Step) -> None:
        """``step`` (the inverse of an undone step) can be redone."""
        self._redo.append(step)

    def redone(self, step: Step) -> None:
        """``step`` (the inverse of a redone step) can be undone again."""
        self._steps.append(step)

    def pop_redo(self) -> Step:
        return self._redo.pop()

    def _all(self):
        yield from self._steps
        yield from self._redo

    def renumber(self, old: int, new: int) -> None:
        """Steps that name annotation ``old`` name ``new`` now (it was restored anew)."""
        for step in self._all():
            step.edits = [e.renumbered(old, new) for e in step.edits]

    def move(self, old_sid: int, new_sid: int) -> None:
        """Steps made on image ``old_sid`` belong to ``new_sid`` (it was added back)."""
        for step in self._all():
            if step.sample_id == old_sid:
                step.sample_id = new_sid
