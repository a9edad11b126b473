"""The Annotator's undo and redo steps: one small class per kind of edit, each able to
revert itself.

A `Step` is what one user action did on one image (its ``sample_id``): a list of
edits, reverted newest first. Reverting an edit returns its inverse, the edit that does it
again: an undone step becomes a redo step, and a redone one an undo step again. The
`History` keeps the last ``limit`` steps each way (a deleted image's step holds its
bytes: the history never grows without end); a new edit clears the redo steps.

An edit also keeps what it left (``after``, filled in by `Edit.settled` once it is on disk):
when another Annotator, a cell or a job has changed that since, `Edit.changed_since` says
what, and the step is not replayed: an undo never overwrites a later edit made elsewhere.
"""

from __future__ import annotations

import tempfile
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..reasons import parse_reasons
from ..store import FLAG_COLUMNS
from . import cells

if TYPE_CHECKING:
    from ..dataset import Dataset
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

    def settled(self, w: Annotator, sid: int) -> Edit:
        """This edit with what it left on disk noted (``after``), once it is written."""
        return self

    def changed_since(self, w: Annotator, sid: int) -> str | None:
        """What changed what this edit left, in words (None when it is as it was left)."""
        return None


def _state(record: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if record is None else {k: record[k] for k in (*RESTORED_FIELDS, "points")}


def _annotation_changed(
    w: Annotator, sid: int, after: dict[str, Any] | None, ann_id: int
) -> str | None:
    if after is None:
        return None
    now = w._find(ann_id, sid)
    what = f"the {after['label'] or 'unlabeled'} {after['kind']}"
    if now is None:
        return f"{what} was deleted"
    return f"{what} was changed" if _state(now) != _state(after) else None


@dataclass
class Added(Edit):
    ann_id: int
    after: dict[str, Any] | None = None

    def revert(self, w: Annotator, sid: int) -> tuple[int, Edit]:
        record = w._record(self.ann_id, sid)
        w.ds.delete_annotations([self.ann_id])
        return sid, Deleted(record)

    def renumbered(self, old: int, new: int) -> Edit:
        if self.ann_id != old:
            return self
        return Added(new, None if self.after is None else {**self.after, "ann_id": new})

    def settled(self, w: Annotator, sid: int) -> Edit:
        return replace(self, after=w._find(self.ann_id, sid))

    def changed_since(self, w: Annotator, sid: int) -> str | None:
        return _annotation_changed(w, sid, self.after, self.ann_id)


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

    after: dict[str, Any] | None = None

    def renumbered(self, old: int, new: int) -> Edit:
        if self.record["ann_id"] != old:
            return self
        after = None if self.after is None else {**self.after, "ann_id": new}
        return replace(self, record={**self.record, "ann_id": new}, after=after)

    def settled(self, w: Annotator, sid: int) -> Edit:
        return replace(self, after=w._find(self.record["ann_id"], sid))

    def changed_since(self, w: Annotator, sid: int) -> str | None:
        return _annotation_changed(w, sid, self.after, self.record["ann_id"])

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
    after: tuple[str | None] | None = None  # the label this edit gave, once written

    def revert(self, w: Annotator, sid: int) -> tuple[int, Edit]:
        now = cells.label(w.ds.sample(sid)["label"])
        w.ds.set_label(sid, self.label)
        return sid, SetLabel(now)

    def settled(self, w: Annotator, sid: int) -> Edit:
        return replace(self, after=(cells.label(w.ds.sample(sid)["label"]),))

    def changed_since(self, w: Annotator, sid: int) -> str | None:
        if self.after is None:
            return None
        now = cells.label(w.ds.sample(sid)["label"])
        return None if now == self.after[0] else f"the image's label was set to {now!r}"


@dataclass
class SetLabels(Edit):
    """A multi-label image's labels (None: it had none, unlabeled)."""

    labels: list[str] | None
    after: tuple[list[str] | None] | None = None  # the labels this edit gave, once written

    def revert(self, w: Annotator, sid: int) -> tuple[int, Edit]:
        now = labels_now(w, sid)
        w.ds.set_labels(sid, self.labels)
        return sid, SetLabels(now)

    def settled(self, w: Annotator, sid: int) -> Edit:
        return replace(self, after=(labels_now(w, sid),))

    def changed_since(self, w: Annotator, sid: int) -> str | None:
        if self.after is None:
            return None
        now = labels_now(w, sid)
        return None if now == self.after[0] else f"the image's labels were set to {now}"


def labels_now(w: Annotator, sid: int) -> list[str] | None:
    labels = w.ds.labels_of(sid)
    return None if not labels and str(w.ds.sample(sid)["status"]) == "unlabeled" else labels


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


# -- what an undo adds back: annotation records and whole images ---------------------------
def records(ds: Dataset, sid: int) -> list[dict]:
    """Sample ``sid``'s annotations as the browser gets them (JSON values)."""
    rows = []
    for a in ds.annotations_of(sid).itertuples(index=False):
        if a.kind == "tag":  # a multi-label image's labels: the sample's "labels"
            continue
        rows.append(
            {
                "ann_id": int(a.ann_id),
                "kind": str(a.kind),
                "label": cells.label(a.label),
                "x0": a.x0,
                "y0": a.y0,
                "x1": a.x1,
                "y1": a.y1,
                "points": a.points if isinstance(a.points, list) else None,
                "angle": cells.number(a.angle),
                "score": cells.number(a.score),
                "origin": str(a.origin),
                "hard_type": str(a.hard_type),
                "text": cells.text(a.text),
                **{flag: bool(getattr(a, flag)) for flag in FLAG_COLUMNS},
            }
        )
    return rows


def restore_annotation(ds: Dataset, a: dict, sid: int) -> int:
    """Add annotation record ``a`` to sample ``sid`` (a deleted one back, or a pasted one);
    returns its new id."""
    flags = {flag: a.get(flag, False) for flag in FLAG_COLUMNS}
    if a["kind"] == "ignore" and a["points"] is not None:
        return ds.add_ignore_polygon(sid, a["points"])
    if a["kind"] == "ignore":
        return ds.add_ignore_region(sid, a["x0"], a["y0"], a["x1"], a["y1"])
    if a["kind"] == "polygon":
        return ds.add_polygon(
            sid,
            a["label"],
            a["points"],
            score=a["score"],
            origin=a["origin"],
            hard_type=a["hard_type"],
            **flags,
        )
    return ds.add_box(
        sid,
        a["label"],
        a["x0"],
        a["y0"],
        a["x1"],
        a["y1"],
        score=a["score"],
        origin=a["origin"],
        text=a["text"],
        angle=a["angle"],
        hard_type=a["hard_type"],
        **flags,
    )


def save_sample(ds: Dataset, sid: int) -> dict:
    """What adds image ``sid`` back after a delete: its bytes, fields and annotations."""
    row = ds.sample(sid)
    return {
        "sample_id": sid,
        "name": row["name"],
        "bytes": ds.image_path(sid).read_bytes(),
        "annotations": records(ds, sid),
        "row": {
            "label": cells.label(row["label"]),
            "status": str(row["status"]),
            "split": str(row["split"]),
            "source": str(row["source"]),
            "hard": bool(row["hard"]),
            "reasons": parse_reasons(row["hard_reasons"]),
            "score": cells.number(row["hard_score"]),
        },
    }


def restore_sample(
    ds: Dataset, saved: dict, renumber: Callable[[int, int], None] = lambda old, new: None
) -> int:
    """Add a deleted image back (a new sample id) with its fields and annotations; each
    annotation's old and new id go to ``renumber``."""
    row = saved["row"]
    used = {a["label"] for a in saved["annotations"] if a["label"] is not None}
    for name in sorted((used | {row["label"]}) - {None} - set(ds.label_names)):
        ds.add_label(name)  # deleted since: it comes back with what it labels
    with tempfile.TemporaryDirectory(prefix="hardex-undo-") as tmp:
        path = Path(tmp) / saved["name"]
        path.write_bytes(saved["bytes"])
        # its bytes may be another sample's too (added with duplicates="add"): add it anyway
        (sid,) = ds.add_images([path], origin=row.get("source", "upload"), duplicates="add").added
    if row["label"] is not None:
        ds.set_label(sid, row["label"])
    for a in saved["annotations"]:
        renumber(a["ann_id"], restore_annotation(ds, a, sid))
    ds.set_split(sid, row["split"])
    ds.mark_hard(sid, row["hard"], reasons=row["reasons"], score=row["score"], replace=True)
    ds.set_status(sid, row["status"])
    return sid
