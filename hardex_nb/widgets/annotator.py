"""Annotator and Review: label one image at a time; edits reach the Dataset at once."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

import ipywidgets
import numpy as np
import pandas as pd
import traitlets

from .. import pointing, runlog
from ..annotation_rules import WHOLE_IMAGE
from ..media import load_rgb, thumbnail_bytes
from ..reasons import HARD_TYPES, REASON_TEXTS
from ..store import FLAG_COLUMNS
from . import cells, undo
from ._base import STATIC, BadMessage, bool_in, bundle, number_in, reject_unknown, text_in
from .training import Trains

if TYPE_CHECKING:
    from ..dataset import Dataset

MAX_SIDE = 1600  # images are sent downscaled to this; coordinates stay in full pixels
MAX_CROP = 2048  # a zoomed-in region is sent at native resolution up to this many px a side
BOX_FIELDS = ("x0", "y0", "x1", "y1")


UNDO_STEPS = 200  # undo steps an Annotator keeps


class Annotator(Trains):
    """Classification tag picker or detection editor for one image at a time.

    Detection: draw, move, resize, turn and delete boxes, polygons and ignore (masked) boxes
    and polygons, a text field on a box for OCR, pan and zoom (1:1 and fit), show/hide labels
    or every annotation, model confidence with a score-threshold slider, previous/next, undo,
    and keyboard shortcuts (listed on screen).
    Every edit is a Dataset call, so it is on disk when the widget shows it.

    ``run``: a detector for the point tool (`a`: one click proposes the box under it); its
    boxes are proposed where it is sure, the pixels' region elsewhere and without one.
    """

    _esm = bundle("annotator.js")
    _css = STATIC / "hardex.css"
    mode = traitlets.Unicode("annotate").tag(sync=True)
    task = traitlets.Unicode().tag(sync=True)
    labels: traitlets.List[Any] = traitlets.List().tag(sync=True)
    sample_id = traitlets.Int(-1).tag(sync=True)
    sample = traitlets.Dict().tag(sync=True)
    annotations: traitlets.List[Any] = traitlets.List().tag(sync=True)
    image = traitlets.Bytes(b"").tag(sync=True)
    threshold = traitlets.Float(0.0).tag(sync=True)
    position = traitlets.Int(0).tag(sync=True)
    reason_texts = traitlets.Dict({str(k): v for k, v in REASON_TEXTS.items()}).tag(sync=True)
    asking = traitlets.Dict().tag(sync=True)  # a question the widget shows before acting
    count = traitlets.Int(0).tag(sync=True)
    # classification: the model's top classes for the image shown, [[label, probability]]
    probabilities: traitlets.List[Any] = traitlets.List().tag(sync=True)
    # on a test image: what the newest run that predicted the test split found there, each
    # with its score, [{label, x0, y0, x1, y1, score}] (boxes None for classification)
    predicted: traitlets.List[Any] = traitlets.List().tag(sync=True)
    predicted_by = traitlets.Unicode("").tag(sync=True)  # that run's version, "" for none
    # the point tool's proposal for the last click: {x0, y0, x1, y1, label, score, source,
    # seq}, {} for none; accepted in the browser, which sends it back as add_box
    proposal = traitlets.Dict().tag(sync=True)
    # classification: a number key labels the image and opens the next (one key per image)
    advance = traitlets.Bool(True).tag(sync=True)

    def __init__(
        self,
        ds: Dataset,
        sample_id: int | None = None,
        *,
        sample_ids=None,
        threshold: float = 0.0,
        advance: bool = True,
        run=None,
        **kwargs,
    ):
        reject_unknown(type(self).__name__, kwargs, set())
        self.advance = advance
        self.ds = ds
        # the point tool's detector (``run``: a trained or wrapped one), else the pixels
        # alone; its boxes per image are kept (one prediction per image clicked on)
        self._pointer_run = run
        self._pointer_boxes: dict[tuple[str, int], tuple] = {}
        # undo steps: (sample id, [actions]); an undo goes back to that image first, then
        # reverts its actions in reverse order (a "Clear all" or a confirm is one step)
        self._undo = undo.History(UNDO_STEPS)
        # classification: the stored top classes, read when shown, with the result records
        # they were read from (read again only when those change)
        self._probabilities: tuple[list, dict[int, list]] | None = None
        self._tested: dict[str, pd.DataFrame] = {}  # a run's test predictions, read once
        super().__init__(
            task=ds.task, labels=ds.label_names, threshold=threshold, mode=self._mode()
        )
        self._order = self._initial_order(sample_ids)
        if sample_id is not None:
            (sid,) = ds.require_samples(sample_id)
            if sid not in self._order:
                self._order.insert(0, sid)
            self.show(sid)
        elif self._order:
            self.show(self._order[0])
        self.count = len(self._order)

    def _mode(self) -> str:
        return "annotate"

    def _initial_order(self, sample_ids) -> list[int]:
        if sample_ids is not None:
            return self.ds.require_samples(sample_ids)
        return self.ds.sample_rows()["sample_id"].astype(int).tolist()

    # -- state -----------------------------------------------------------------------------
    def show(self, sample_id: int) -> None:
        """Open one sample."""
        ds = self.ds
        ds.refresh()
        (sid,) = ds.require_samples(sample_id)
        self.image = thumbnail_bytes(ds.image_path(sid), size=MAX_SIDE, quality=90)
        self.sample_id = sid
        self.proposal = {}
        if sid in self._order:
            self.position = self._order.index(sid)
        self._refresh()

    def _refresh(self) -> None:
        row = self.ds.sample(self.sample_id)
        self.sample = {
            "sample_id": self.sample_id,
            "name": row["name"],
            "width": int(row["width"]),
            "height": int(row["height"]),
            "status": str(row["status"]),
            "label": cells.label(row["label"]),
            "hard": bool(row["hard"]),
            "hard_reasons": row["hard_reasons"],
            "hard_score": cells.number(row["hard_score"]),
            "split": str(row["split"]),
        }
        if self.task == "multilabel":  # its labels, and the model's score of each it gave
            tags = self.ds.annotations_of(self.sample_id)
            tags = tags[tags["kind"] == "tag"]
            self.sample = self.sample | {
                "labels": self.ds.labels_of(self.sample_id),
                "label_scores": {
                    str(t.label): cells.number(t.score)
                    for t in tags.itertuples(index=False)
                    if t.origin != "human"
                },
            }
        self.predicted_by, self.predicted = self._test_predictions(str(row["split"]))
        self.annotations = self._records(self.sample_id)
        self.labels = self.ds.label_names
        if self.task in WHOLE_IMAGE:
            if self._probabilities is None:
                self._probabilities = (self._result_marks(), runlog.model_probabilities(self.ds))
            self.probabilities = self._probabilities[1].get(self.sample_id, [])

    def _test_predictions(self, split: str) -> tuple[str, list]:
        """On a test image, the predictions of the newest run that stored test predictions
        (``hx.train(..., test=True)`` or ``hx.evaluate``) with their scores: the model's
        confidence on the images it is tested on, beside their labels.
        """
        if split != "test":
            return "", []
        runs = self.ds.runs
        done = runs.loc[runs["status"] == "succeeded"].sort_values("number", ascending=False)
        for version in done["version"]:
            pred = self._tested.get(version)
            if pred is None:
                pred = self.ds.predictions(version)
                if pred.empty:  # none yet: an evaluate may store them later
                    continue
                self._tested[version] = pred
            mine = pred.loc[pred["sample_id"] == self.sample_id].sort_values(
                "score", ascending=False
            )
            rows = [
                {
                    "label": cells.label(r.label),
                    **{k: cells.number(getattr(r, k)) for k in BOX_FIELDS},
                    "score": cells.number(r.score),
                }
                for r in mine.itertuples(index=False)
            ]
            return str(version), rows
        return "", []

    def _records(self, sid: int) -> list[dict]:
        return undo.records(self.ds, sid)

    def _find(self, ann_id: int, sid: int) -> dict | None:
        """One annotation of sample ``sid``, read from the dataset, as the browser gets it;
        None when it is no longer there.
        """
        return next((a for a in self._records(sid) if a["ann_id"] == ann_id), None)

    def _record(self, ann_id: int, sid: int) -> dict:
        found = self._find(ann_id, sid)
        if found is None:
            raise BadMessage(f"annotation {ann_id} is no longer on this image")
        return found

    def _result_marks(self) -> list:
        """What identifies the recorded results (key and time): a new job's record changes it."""
        return self.ds.results[["key", "created"]].values.tolist()

    def _still_listed(self, frame) -> set[int]:
        """The ids of ``_order`` that stay listed after a change elsewhere."""
        return set(frame.index)

    def _dataset_changed(self) -> None:
        """Another widget, job or process changed the dataset: drop what is gone from the
        list and show the image again (or the next one, when it was deleted).
        """
        frame = self.ds.sample_rows()
        keep = self._still_listed(frame)
        if self._probabilities is not None and self._probabilities[0] != self._result_marks():
            self._probabilities = None  # a job recorded new predictions: read them again
        self._tested.clear()  # an evaluate may have stored a run's test predictions anew
        if any(s not in keep for s in self._order):
            self._order = [s for s in self._order if s in keep]
            self._sync_queue()
        self.labels = self.ds.label_names
        if self.sample_id in keep:
            self._refresh()
        elif self._order:
            self.show(self._order[min(self.position, len(self._order) - 1)])
            self.notice = "the image shown was deleted or done elsewhere; here is the next one"
        elif self.sample_id != -1:
            self._show_nothing("no images left: they were deleted or done elsewhere")

    def _show_nothing(self, notice: str) -> None:
        self.sample_id = -1
        self.annotations = []
        self.image = b""
        self.sample = {}
        self.probabilities = []
        self.notice = notice

    # -- native pixels when zoomed in --------------------------------------------------------
    def _on_crop(self, content: dict) -> None:
        """The region in view (image px) as a lossless PNG at native resolution (scaled down
        only beyond ``MAX_CROP`` px a side), sent back with its place: zoomed in past the
        sent copy, the labeler sees the file's own pixels, not an enlarged thumbnail.
        """
        x0, y0, x1, y1 = (number_in(content, k) for k in BOX_FIELDS)
        width, height = int(self.sample.get("width", 0)), int(self.sample.get("height", 0))
        box = (
            max(0, int(x0)),
            max(0, int(y0)),
            min(width, int(np.ceil(x1))),
            min(height, int(np.ceil(y1))),
        )
        if box[2] <= box[0] or box[3] <= box[1]:
            raise BadMessage(f"crop: empty region {box} of a {width}×{height} image")
        key = (self.sample_id, str(self.ds.image_path(self.sample_id)))
        if getattr(self, "_decoded", (None, None))[0] != key:
            self._decoded = (key, load_rgb(key[1]))  # one decode per image shown
        region = self._decoded[1].crop(box)
        if max(region.size) > MAX_CROP:
            region.thumbnail((MAX_CROP, MAX_CROP))
        buf = io.BytesIO()
        region.save(buf, format="PNG", compress_level=1)
        place = dict(
            zip(BOX_FIELDS, box),
            sample_id=self.sample_id,
            native=max(box[2] - box[0], box[3] - box[1]) <= MAX_CROP,
        )
        self.send({"crop": place}, [buf.getvalue()])

    # -- navigation ------------------------------------------------------------------------
    def _on_next(self, content: dict) -> None:
        self._step(+1)

    def _on_prev(self, content: dict) -> None:
        self._step(-1)

    def _step(self, delta: int) -> None:
        if not self._order:
            raise BadMessage("no images to show")
        self.show(self._order[(self.position + delta) % len(self._order)])

    # -- edits -----------------------------------------------------------------------------
    def _label(self, content: dict) -> str:
        return self.ds.require_label(text_in(content, "label"))

    # -- point to label ------------------------------------------------------------------
    def _on_propose(self, content: dict) -> None:
        """One click of the point tool: the box it proposes (`hardex_nb.pointing`)."""
        if self.task != "detection":
            raise BadMessage("propose: the point tool is for detection datasets")
        x, y = number_in(content, "x"), number_in(content, "y")
        width, height = self.sample["width"], self.sample["height"]
        if not (0 <= x <= width and 0 <= y <= height):
            raise BadMessage(f"propose: ({x:g}, {y:g}) is outside the {width}×{height} image")
        run = self._pointer_run
        detections = None
        if run is not None:
            key = (run.version, self.sample_id)
            if key not in self._pointer_boxes:
                (raw,) = run.predict_raw([self.sample_id])
                labels = [run.labels[int(k)] for k in np.asarray(raw["labels"]).ravel()]
                self._pointer_boxes[key] = (raw["boxes"], raw["scores"], labels)
            detections = self._pointer_boxes[key]
        rgb = np.asarray(load_rgb(self.ds.image_path(self.sample_id)))
        found = pointing.propose_box(rgb, x, y, detections)
        seq = int(self.proposal.get("seq", 0)) + 1  # the same box twice still shows
        if found is None:
            self.proposal = {}
            self.notice = "nothing near that point stands out: draw its box (b)"
            return
        self.proposal = {**found.as_dict(), "seq": seq}
        where = (
            f"{run.version}'s {found.label} box, score {found.score:.2f}"
            if found.source == "detector" and run is not None
            else "the pixels around the click"
        )
        self.notice = f"proposed from {where}: Enter or a click inside keeps it, Esc drops it"

    def _box(self, content: dict) -> tuple[float, ...]:
        return tuple(number_in(content, k) for k in BOX_FIELDS)

    def _on_set_label(self, content: dict) -> None:
        label = content.get("label")
        if label is not None:
            label = self._label(content)
        previous = cells.label(self.ds.sample(self.sample_id)["label"])  # as on disk
        self.ds.set_label(self.sample_id, label)
        self._did(undo.SetLabel(previous))
        if not content.get("advance") or self.mode != "annotate":
            self._refresh()
        elif self.position + 1 < len(self._order):
            self.show(self._order[self.position + 1])
        else:
            self._refresh()
            self.notice = "that was the last image"

    def _on_toggle_label(self, content: dict) -> None:
        """Multilabel: give the image a label it lacks, or take away one it has (a model's
        proposed labels become the reviewer's).
        """
        if self.task != "multilabel":
            raise BadMessage("toggle_label is for multilabel datasets; use set_label")
        label = self._label(content)
        sid = self.sample_id
        before = undo.labels_now(self, sid)
        status = str(self.ds.sample(sid)["status"])
        held = list(before or [])
        now = [n for n in held if n != label] if label in held else [*held, label]
        self.ds.set_labels(sid, now)
        # reverted newest first: the labels come back, then the status they had
        self._did(undo.Status(status), undo.SetLabels(before))
        self._refresh()

    def _on_add_box(self, content: dict) -> None:
        kind = content.get("kind", "box")
        box = self._box(content)
        if kind == "ignore":
            ann = self.ds.add_ignore_region(self.sample_id, *box)
        elif kind in ("box", "text"):
            ann = self.ds.add_box(
                self.sample_id,
                self._label(content),
                *box,
                text=text_in(content, "text", optional=True),
            )
        else:
            raise BadMessage(f"kind={kind!r}: use box, text or ignore")
        self._did(undo.Added(ann))
        self._refresh()

    def _on_add_polygon(self, content: dict) -> None:
        """A polygon, or with ``kind="ignore"`` a masked (ignore) polygon."""
        points = content.get("points")
        if not isinstance(points, list):
            raise BadMessage("points: expected a list of [x, y]")
        kind = content.get("kind", "polygon")
        if kind == "ignore":
            ann = self.ds.add_ignore_polygon(self.sample_id, points)
        elif kind == "polygon":
            ann = self.ds.add_polygon(self.sample_id, self._label(content), points)
        else:
            raise BadMessage(f"kind={kind!r}: use polygon or ignore")
        self._did(undo.Added(ann))
        self._refresh()

    def _on_paste(self, content: dict) -> None:
        """Objects copied (Ctrl+C) on this or another image, added here as the labeler's
        own, cut to this image's bounds (one undo step). All are checked before any is
        added: a bad one adds none.
        """
        items = content.get("annotations")
        if not isinstance(items, list) or not items:
            raise BadMessage("paste: expected a list of copied objects")
        width, height = float(self.sample["width"]), float(self.sample["height"])
        todo = []
        for n, item in enumerate(items):
            if not isinstance(item, dict):
                raise BadMessage(f"paste: object {n} is not an object")
            kind = item.get("kind")
            if kind not in ("box", "text", "polygon", "ignore"):
                raise BadMessage(f"paste: object {n} has kind={kind!r}")
            # as _restore adds it: a record of the labeler's own, with no score
            a = {"kind": kind, "label": None if kind == "ignore" else self._label(item)}
            a |= {"score": None, "origin": "human", "hard_type": "none", "points": None}
            if item.get("points") is not None:
                a["points"] = _clip_points(item["points"], width, height, n)
                if a["points"] is None:
                    continue
                if kind != "ignore":
                    a["kind"] = "polygon"  # points make a polygon of a labeled object
            else:
                limits = (width, height, width, height)
                box = [min(max(v, 0.0), hi) for v, hi in zip(self._box(item), limits)]
                if box[2] - box[0] < 1 or box[3] - box[1] < 1:
                    continue
                a |= dict(zip(BOX_FIELDS, box))
                a["text"] = text_in(item, "text", optional=True)
                a["angle"] = number_in(item, "angle") if item.get("angle") is not None else None
            todo.append(a)
        if not todo:
            raise BadMessage("paste: every copied object lies outside this image")
        self._did(*[undo.Added(self._restore(a, self.sample_id)) for a in todo])
        left_out = len(items) - len(todo)
        self.notice = f"{len(todo)} object(s) pasted" + (
            f" ({left_out} outside this image left out)" if left_out else ""
        )
        self._refresh()

    def _current(self, ann_id) -> dict:
        if isinstance(ann_id, bool) or not isinstance(ann_id, int):
            raise BadMessage(f"ann_id={ann_id!r}: expected an annotation id (a whole number)")
        if not any(a["ann_id"] == ann_id for a in self.annotations):
            raise BadMessage(f"annotation {ann_id!r} is not on this image")
        # as it is on disk, which another Annotator may have changed since it was shown:
        # the undo step keeps what this edit really replaced
        found = self._find(ann_id, self.sample_id)
        if found is None:
            raise BadMessage(f"annotation {ann_id} was deleted meanwhile (another Annotator?)")
        return found

    def _on_update(self, content: dict) -> None:
        old = self._current(content.get("ann_id"))
        fields: dict[str, Any] = {}
        for key in BOX_FIELDS:
            if key in content:
                fields[key] = number_in(content, key)
        if "label" in content:
            fields["label"] = self._label(content)
        if "text" in content:
            fields["text"] = text_in(content, "text", optional=True)
        for flag in FLAG_COLUMNS:  # VOC's object attributes
            if flag in content:
                fields[flag] = bool_in(content, flag)
        if "angle" in content:
            if old["kind"] not in ("box", "text"):
                raise BadMessage(
                    f"angle: annotation {old['ann_id']} is a {old['kind']}; only a box turns"
                )
            fields["angle"] = number_in(content, "angle") % 360
        if "points" in content:
            if old["points"] is None:
                raise BadMessage(
                    f"points: annotation {old['ann_id']} is a {old['kind']}; only a "
                    "polygon has points"
                )
            if not isinstance(content["points"], list):
                raise BadMessage("points: expected a list of [x, y]")
            fields["points"] = content["points"]
        if not fields:
            raise BadMessage("update: nothing to change")
        moved = any(k in fields for k in (*BOX_FIELDS, "angle", "points"))
        if old["origin"] != "human" and ("label" in fields or moved):
            fields["origin"] = "human"  # a fixed model box is the reviewer's now
        self.ds.update_annotation(old["ann_id"], **fields)
        self._did(undo.Updated(old))
        self._refresh()

    # -- labels ----------------------------------------------------------------------------
    def _on_add_label(self, content: dict) -> None:
        name = text_in(content, "name")
        self.ds.add_label(name)
        self.notice = f"label {name!r} added"
        self._refresh()

    def _on_rename_label(self, content: dict) -> None:
        old, new = self._label(content), text_in(content, "name")
        self.ds.rename_label(old, new)
        self._did(undo.RenameLabel(new, old))
        self.notice = f"label {old!r} renamed {new!r}"
        self._refresh()

    def _on_delete_label(self, content: dict) -> None:
        """Asks first (``asking`` names what goes with the label); deletes on ``confirmed``."""
        label = self._label(content)
        if content.get("confirmed") is not True:
            ann = self.ds.annotations
            boxes = int((ann["label"] == label).sum())
            images = int((self.ds.samples["label"] == label).sum())
            self.asking = {
                "action": "delete_label",
                "label": label,
                "message": f"Delete label {label!r}, its {boxes} annotation(s) and "
                f"the class of {images} image(s)? This cannot be undone.",
            }
            return
        self.asking = {}
        self.ds.delete_label(label)
        self.notice = f"label {label!r} deleted"
        self._refresh()

    def _on_set_hard(self, content: dict) -> None:
        """Mark the image hard (reason 100, by hand) or clear the flag."""
        hard = bool_in(content, "hard")
        before = self.ds.sample(self.sample_id)
        self.ds.mark_hard(self.sample_id, hard)
        score = before["hard_score"]
        self._did(
            undo.SetHard(
                bool(before["hard"]),
                before["hard_reasons"],
                cells.number(score),
            )
        )
        self._refresh()

    def _on_set_hard_type(self, content: dict) -> None:
        """A box's hard type: none, false_positive or missed."""
        old = self._current(content.get("ann_id"))
        hard_type = text_in(content, "hard_type")
        if hard_type not in HARD_TYPES:
            raise BadMessage(f"hard_type={hard_type!r}: use one of {list(HARD_TYPES)}")
        self.ds.update_annotation(old["ann_id"], hard_type=hard_type)
        self._did(undo.Updated(old))
        self._refresh()

    def _on_clear(self, content: dict) -> None:
        """Delete every annotation of this image (undo brings them back one by one)."""
        negative = bool_in(content, "negative", optional=True) or False
        before = self.ds.sample(self.sample_id)["status"]
        self.ds.clear_annotations(self.sample_id, negative=negative)
        self._did(*[undo.Deleted(a) for a in self.annotations], undo.Status(str(before)))
        self.notice = "image marked as a negative (no objects)" if negative else "cleared"
        self._refresh()

    def _on_delete(self, content: dict) -> None:
        old = self._current(content.get("ann_id"))
        self.ds.delete_annotations([old["ann_id"]])
        self._did(undo.Deleted(old))
        self._refresh()

    def _did(self, *edits: undo.Edit) -> None:
        """Record one undo step on the image shown (the history keeps the last
        ``UNDO_STEPS``: a deleted image's step holds its bytes).
        """
        sid = self.sample_id
        self._undo.push(undo.Step(sid, [e.settled(self, sid) for e in edits]))

    def _on_undo(self, content: dict) -> None:
        if not len(self._undo):
            raise BadMessage("nothing to undo")
        self._replay(self._undo.pop(), undoing=True)

    def _on_redo(self, content: dict) -> None:
        if not self._undo.redoable:
            raise BadMessage("nothing to redo")
        self._replay(self._undo.pop_redo(), undoing=False)

    def _replay(self, step: undo.Step, *, undoing: bool) -> None:
        """Revert ``step``'s edits newest first, on the image they were made on (shown
        first); their inverses become the step that goes the other way.
        """
        done = "undone" if undoing else "redone"
        sid = step.sample_id
        if not step.adds_an_image_back:
            if sid not in set(self.ds.sample_rows().index):
                self.notice = f"nothing {done}: that image was deleted meanwhile"
                return
            if sid != self.sample_id and sid in self._order:
                self.show(sid)  # undo where the edit was made, and show it
        for edit in step.edits:
            changed = edit.changed_since(self, sid)
            if changed:  # the step is dropped: replaying it would overwrite that
                self.notice = (
                    f"nothing {done}: {changed} since, in another Annotator, a cell or a "
                    "job; that later edit is kept"
                )
                return
        position = self.position
        inverses = []
        for edit in reversed(step.edits):
            sid, inverse = edit.revert(self, sid)
            inverses.append(inverse)
        back = undo.Step(sid, [e.settled(self, sid) for e in inverses])
        (self._undo.undone if undoing else self._undo.redone)(back)
        self._after_replay(sid, position)
        name = self.sample.get("name", "")
        self.notice = f"{done} on {name}" if name else done

    def _show_position(self, position: int, empty: str) -> None:
        """Show the image at ``position`` in the order (the last one past its end), or none
        with the notice ``empty``.
        """
        if self._order:
            self.show(self._order[min(position, len(self._order) - 1)])
        else:
            self._show_nothing(empty)

    def _after_replay(self, sid: int, position: int) -> None:
        """Show the image a replayed step ends on (the one at ``position`` when it is gone)."""
        if sid not in set(self.ds.sample_rows().index):
            self._show_position(position, "no image left")
        elif sid != self.sample_id:
            self.show(sid)
        else:
            self._refresh()

    def _sync_queue(self) -> None:
        self.count = len(self._order)

    def _save_sample(self, sid: int) -> dict:
        """What adds image ``sid`` back after a delete (`undo.save_sample`), with its place
        in the queue.
        """
        index = self._order.index(sid) if sid in self._order else 0
        return {**undo.save_sample(self.ds, sid), "index": index}

    def _restore_sample(self, saved: dict) -> int:
        """Add a deleted image back (a new sample id) where it was in the queue."""
        sid = undo.restore_sample(self.ds, saved, self.renumber)
        self._order.insert(min(saved["index"], len(self._order)), sid)
        self._sync_queue()
        self._undo.move(saved["sample_id"], sid)
        return sid

    def _restore(self, a: dict, sid: int) -> int:
        return undo.restore_annotation(self.ds, a, sid)

    def renumber(self, old: int, new: int) -> None:
        """Point the undo steps that name annotation ``old`` at ``new``."""
        self._undo.renumber(old, new)


QUEUE_EMPTY = "the queue is empty: every auto-label is confirmed"


class Review(Annotator):
    """The to-be-confirmed queue, hardest first: auto labels, hard badge, reasons and per-box
    hard type. Confirm (the image becomes labeled and leaves the queue), fix, delete, skip,
    all by keyboard.
    """

    queue: traitlets.List[Any] = traitlets.List().tag(sync=True)

    def _mode(self) -> str:
        return "review"

    def _initial_order(self, sample_ids) -> list[int]:
        frame = self.ds.sample_rows()
        todo = frame[frame["status"] == "to_confirm"]
        score = todo["hard_score"].astype(float).fillna(-1.0).to_numpy()
        hard = todo["hard"].astype(bool).to_numpy()
        order = np.lexsort((todo["sample_id"].to_numpy(), -score, ~hard))
        ids = todo["sample_id"].to_numpy()[order].astype(int).tolist()
        self.queue = list(ids)  # a copy: _order is edited in place
        return ids

    def _sync_queue(self) -> None:
        self.queue = list(self._order)
        self.count = len(self._order)

    def _still_listed(self, frame) -> set[int]:
        return set(frame.index[frame["status"] == "to_confirm"])

    def _leave_queue(self, sid: int) -> None:
        i = self._order.index(sid)
        self._order.remove(sid)
        self._sync_queue()
        self._show_position(i, QUEUE_EMPTY)

    def _after_replay(self, sid: int, position: int) -> None:
        if sid in set(self.ds.sample_rows().index) and sid not in self._order:
            # a confirm redone: the image left the queue again, the next one shows
            self._show_position(position, QUEUE_EMPTY)
            return
        super()._after_replay(sid, position)

    def _on_confirm(self, content: dict) -> None:
        """Confirm what is shown: model boxes the score threshold hides are deleted first
        (undo brings them back, with the image, to the queue).
        """
        sid = self.sample_id
        if sid not in self._order:
            raise BadMessage("this image is not in the queue")
        # the threshold the reviewer saw comes with the click: ipywidgets may still hold the
        # slider's last state update back when a message overtakes it
        shown = content.get("threshold", self.threshold)
        if not isinstance(shown, (int, float)) or not 0 <= shown <= 1:
            raise BadMessage(f"confirm: threshold {shown!r} is not a number in [0, 1]")
        self.threshold = float(shown)
        hidden = [
            a
            for a in self.annotations
            if a["origin"] != "human" and a["score"] is not None and a["score"] < self.threshold
        ]
        if hidden:
            self.ds.delete_annotations([a["ann_id"] for a in hidden])
        before = str(self.ds.sample(sid)["status"])
        relabeled: list = []
        if self.task == "multilabel":  # the labels shown become the reviewer's
            held = undo.labels_now(self, sid)
            self.ds.set_labels(sid, held or [])
            relabeled = [undo.SetLabels(held)]
        self.ds.confirm([sid])
        self._did(
            undo.Requeue(self._order.index(sid)),
            *[undo.Deleted(a) for a in hidden],
            undo.Status(before),
            *relabeled,  # reverted first: then the status goes back as it was
        )
        self._leave_queue(sid)
        if hidden:
            self.notice = (
                f"confirmed without {len(hidden)} box(es) under the threshold "
                f"{self.threshold:.2f} (undo brings them back)"
            )

    def _on_delete_sample(self, content: dict) -> None:
        """Delete the image (after the widget asked); undo adds it back, with its labels."""
        if content.get("confirmed") is not True:
            raise BadMessage("delete_sample needs confirmed=true (the widget asks first)")
        sid = self.sample_id
        saved = self._save_sample(sid)
        self.ds.delete_samples([sid])
        self._did(undo.DeletedSample(saved))
        self._leave_queue(sid)

    def _on_skip(self, content: dict) -> None:
        self._step(+1)


def _clip_points(points, width: float, height: float, n: int):
    """A copied polygon's rings cut to the image (each point moved inside); None when a
    ring collapses to less than 3 distinct points.
    """
    nested = bool(points) and isinstance(points[0], list) and isinstance(points[0][0], list)
    rings = points if nested else [points]
    out = []
    for ring in rings:
        try:
            pts = [
                [min(max(float(x), 0.0), width), min(max(float(y), 0.0), height)] for x, y in ring
            ]
        except (TypeError, ValueError):
            raise BadMessage(f"paste: object {n} has points that are not [x, y] pairs") from None
        if len({(x, y) for x, y in pts}) < 3:
            return None
        out.append(pts)
    return out[0] if len(out) == 1 else out


class OpensAnnotator:
    """For a widget that lists images (Gallery, ConfusionMatrix, ReportView): shown as a
    column, itself and below it the Annotator that its "open" makes (or the one linked).
    """

    annotator: Any = None
    ds: Dataset  # set by the widget

    def _start_column(self) -> None:
        self._column = ipywidgets.VBox([self])

    def _repr_mimebundle_(self, **kwargs):
        return self._column._repr_mimebundle_(**kwargs)

    def _open_in_annotator(self, sample_id: int, order: list[int]) -> None:
        (sid,) = self.ds.require_samples([sample_id])
        if self.annotator is None:
            self.annotator = Annotator(self.ds, sid, sample_ids=order)
            self._column.children = (self, self.annotator)
        else:
            self.annotator.show(sid)
