"""Annotator and Review: label one image at a time; edits reach the Dataset at once."""

from __future__ import annotations

from typing import Any

import numpy as np
import traitlets

from ..media import thumbnail_bytes
from ..reasons import HARD_TYPES, REASON_TEXTS, Reason
from ._base import STATIC, BadMessage, Widget, bool_in, bundle, number_in, reject_unknown, text_in

MAX_SIDE = 1600  # images are sent downscaled to this; coordinates stay in full pixels
BOX_FIELDS = ("x0", "y0", "x1", "y1")


class Annotator(Widget):
    """Classification tag picker or detection editor for one image at a time.

    Detection: draw, move, resize, turn and delete boxes, polygons and ignore (masked) boxes
    and polygons, a text field on a box for OCR, pan and zoom (1:1 and fit), show/hide labels
    or every annotation, model confidence with a score-threshold slider, previous/next, undo,
    and keyboard shortcuts (listed on screen).
    Every edit is a Dataset call, so it is on disk when the widget shows it.
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

    def __init__(
        self, ds, sample_id: int | None = None, *, sample_ids=None, threshold: float = 0.0, **kwargs
    ):
        reject_unknown(type(self).__name__, kwargs, set())
        self.ds = ds
        self._undo: list[tuple] = []
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
            "label": None if row["label"] != row["label"] else row["label"],
            "hard": bool(row["hard"]),
            "hard_reasons": row["hard_reasons"],
            "hard_score": None
            if row["hard_score"] != row["hard_score"]
            else float(row["hard_score"]),
        }
        ann = self.ds.annotations_of(self.sample_id)
        rows = []
        for a in ann.itertuples(index=False):
            rows.append(
                {
                    "ann_id": int(a.ann_id),
                    "kind": str(a.kind),
                    "label": None if a.label != a.label else str(a.label),
                    "x0": a.x0,
                    "y0": a.y0,
                    "x1": a.x1,
                    "y1": a.y1,
                    "points": a.points if isinstance(a.points, list) else None,
                    "angle": None if a.angle is None or a.angle != a.angle else float(a.angle),
                    "score": None if a.score != a.score else float(a.score),
                    "origin": str(a.origin),
                    "hard_type": str(a.hard_type),
                    "text": a.text if isinstance(a.text, str) else None,
                }
            )
        self.annotations = rows
        self.labels = self.ds.label_names

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

    def _box(self, content: dict) -> tuple[float, ...]:
        return tuple(number_in(content, k) for k in BOX_FIELDS)

    def _on_set_label(self, content: dict) -> None:
        label = content.get("label")
        if label is not None:
            label = self._label(content)
        previous = self.sample.get("label")
        self.ds.set_label(self.sample_id, label)
        self._undo.append(("set_label", self.sample_id, previous))
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
        self._undo.append(("added", ann))
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
        self._undo.append(("added", ann))
        self._refresh()

    def _current(self, ann_id) -> dict:
        if isinstance(ann_id, bool) or not isinstance(ann_id, int):
            raise BadMessage(f"ann_id={ann_id!r}: expected an annotation id (a whole number)")
        for a in self.annotations:
            if a["ann_id"] == ann_id:
                return a
        raise BadMessage(f"annotation {ann_id!r} is not on this image")

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
        self._undo.append(("updated", old))
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
        self._undo.append(("rename_label", new, old))
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
        self.ds.mark_hard(self.sample_id, hard, reasons=[Reason.MARKED_BY_HAND] if hard else [])
        score = before["hard_score"]
        self._undo.append(
            (
                "set_hard",
                self.sample_id,
                bool(before["hard"]),
                before["hard_reasons"],
                None if score != score else float(score),
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
        self._undo.append(("updated", old))
        self._refresh()

    def _on_clear(self, content: dict) -> None:
        """Delete every annotation of this image (undo brings them back one by one)."""
        negative = bool_in(content, "negative", optional=True) or False
        before = self.ds.sample(self.sample_id)["status"]
        for a in self.annotations:
            self._undo.append(("deleted", a))
        self.ds.clear_annotations(self.sample_id, negative=negative)
        self._undo.append(("status", self.sample_id, str(before)))
        self.notice = "image marked as a negative (no objects)" if negative else "cleared"
        self._refresh()

    def _on_delete(self, content: dict) -> None:
        old = self._current(content.get("ann_id"))
        self.ds.delete_annotations([old["ann_id"]])
        self._undo.append(("deleted", old))
        self._refresh()

    def _on_undo(self, content: dict) -> None:
        if not self._undo:
            raise BadMessage("nothing to undo")
        step = self._undo.pop()
        if step[0] == "added":
            self.ds.delete_annotations([step[1]])
        elif step[0] == "deleted":  # restored under a new id: earlier steps follow it
            self._renumber(step[1]["ann_id"], self._restore(step[1]))
        elif step[0] == "updated":
            old = step[1]
            fields = {
                k: old[k] for k in ("label", *BOX_FIELDS, "angle", "text", "origin", "hard_type")
            }
            if old["points"] is not None:
                fields["points"] = old["points"]
            self.ds.update_annotation(old["ann_id"], **fields)
        elif step[0] == "set_label":
            self.ds.set_label(step[1], step[2])
        elif step[0] == "rename_label":
            self.ds.rename_label(step[1], step[2])
        elif step[0] == "status":
            self.ds.set_status(step[1], step[2])
        elif step[0] == "set_hard":
            _, sid, hard, reasons, score = step
            self.ds.mark_hard(sid, hard, reasons=reasons, score=score)
        self.notice = "undone"
        self._refresh()

    def _restore(self, a: dict) -> int:
        """Add a deleted annotation back; returns its new id."""
        sid = self.sample_id
        if a["kind"] == "ignore" and a["points"] is not None:
            return self.ds.add_ignore_polygon(sid, a["points"])
        if a["kind"] == "ignore":
            return self.ds.add_ignore_region(sid, a["x0"], a["y0"], a["x1"], a["y1"])
        if a["kind"] == "polygon":
            return self.ds.add_polygon(
                sid,
                a["label"],
                a["points"],
                score=a["score"],
                origin=a["origin"],
                hard_type=a["hard_type"],
            )
        return self.ds.add_box(
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
        )

    def _renumber(self, old: int, new: int) -> None:
        """Point the undo steps that name annotation ``old`` at ``new``."""
        for k, step in enumerate(self._undo):
            if step[0] == "added" and step[1] == old:
                self._undo[k] = ("added", new)
            elif step[0] in ("updated", "deleted") and step[1]["ann_id"] == old:
                self._undo[k] = (step[0], {**step[1], "ann_id": new})


class Review(Annotator):
    """The to-be-confirmed queue, hardest first: auto labels, hard badge, reasons and per-box
    hard type. Confirm (the image becomes labeled and leaves the queue), fix, delete, skip,
    all by keyboard."""

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

    def _leave_queue(self, sid: int) -> None:
        i = self._order.index(sid)
        self._order.remove(sid)
        self.queue = list(self._order)
        self.count = len(self._order)
        if self._order:
            self.show(self._order[min(i, len(self._order) - 1)])
        else:
            self.sample_id = -1
            self.annotations = []
            self.image = b""
            self.sample = {}
            self.notice = "the queue is empty: every auto-label is confirmed"

    def _on_confirm(self, content: dict) -> None:
        sid = self.sample_id
        if sid not in self._order:
            raise BadMessage("this image is not in the queue")
        self.ds.confirm([sid])
        self._leave_queue(sid)

    def _on_delete_sample(self, content: dict) -> None:
        if content.get("confirmed") is not True:
            raise BadMessage("delete_sample needs confirmed=true (the widget asks first)")
        sid = self.sample_id
        self.ds.delete_samples([sid])
        self._leave_queue(sid)

    def _on_skip(self, content: dict) -> None:
        self._step(+1)
