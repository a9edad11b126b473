"""Gallery: a paged thumbnail grid with the dataset's filters and batch actions."""

from __future__ import annotations

import tempfile
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import traitlets

from ..dataset import QUERY_FILTERS, ImportReport
from ..ingest import fit_name
from ..media import MAX_BYTES
from ..reasons import REASON_TEXTS, parse_reasons
from . import cells, undo
from ._base import (
    STATIC,
    BadMessage,
    Thumbnails,
    bool_in,
    bundle,
    ids_in,
    int_in,
    reject_unknown,
    takes_buffers,
    text_in,
)
from .annotator import OpensAnnotator
from .training import Trains

if TYPE_CHECKING:
    from ..dataset import Dataset

FILTERS = set(QUERY_FILTERS)  # the filters of ds.query
SORTS = {"added": "added_at", "name": "name", "hard_score": "hard_score", "width": "width"}
MAX_THUMB_BOXES = 50  # boxes drawn on one thumbnail


MAX_PAGE_SIZE = 500  # thumbnails a page sends at once
UNDO_DELETES = 10  # batch deletes the Gallery can undo, newest first
UNDO_BYTES = 256 * 2**20  # a batch delete of more image bytes than this cannot be undone
PAGE_SIZES = (24, 48, 96, 192)  # what the page-size menu offers


class Gallery(OpensAnnotator, Trains):
    """Thumbnails of the samples matching ``filters`` (those of ``ds.query``), one page at a
    time: only the page in view is read and its thumbnails sent as binary buffers.

    Sort by time added, name, hard score or width (``sort_by=``, ``ascending=``). Select
    many (click, shift-click, the page, or every match), then mark hard / not hard,
    confirm, delete (asks first) or open one in a linked `Annotator`
    (``annotator=``), or else in one shown below the gallery. Hard examples carry a "hard"
    badge; boxes can be drawn on the thumbnails. When nothing matches, the gallery says
    which filter excludes everything.
    """

    _esm = bundle("gallery.js")
    _css = STATIC / "hardex.css"
    filters = traitlets.Dict().tag(sync=True)
    page = traitlets.Int(0).tag(sync=True)
    page_size = traitlets.Int(48).tag(sync=True)
    page_sizes: traitlets.List[Any] = traitlets.List(list(PAGE_SIZES)).tag(sync=True)
    task = traitlets.Unicode().tag(sync=True)
    total = traitlets.Int(0).tag(sync=True)
    rows: traitlets.List[Any] = traitlets.List().tag(sync=True)
    selected: traitlets.List[Any] = traitlets.List().tag(sync=True)
    labels: traitlets.List[Any] = traitlets.List().tag(sync=True)
    opened = traitlets.Int(-1).tag(sync=True)
    sort_by = traitlets.Unicode("added").tag(sync=True)
    ascending = traitlets.Bool(True).tag(sync=True)
    empty_reason = traitlets.Unicode("").tag(sync=True)
    # what Undo would bring back ("3 images"), empty when nothing: the button's text
    undoable = traitlets.Unicode("").tag(sync=True)

    def __init__(
        self,
        ds: Dataset,
        *,
        page_size: int = 48,
        annotator=None,
        sample_ids=None,
        sort_by: str = "added",
        ascending: bool = True,
        **filters,
    ):
        reject_unknown("Gallery", filters, FILTERS)
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size={page_size}: use 1 to {MAX_PAGE_SIZE}")
        if sort_by not in SORTS:
            raise ValueError(f"sort_by={sort_by!r}: use one of {sorted(SORTS)}")
        self.ds = ds
        self.annotator = annotator
        self._restrict = None if sample_ids is None else [int(i) for i in sample_ids]
        self._thumbs = Thumbnails(ds)
        super().__init__(
            filters={k: cells.plain(v) for k, v in filters.items()},
            page_size=page_size,
            labels=ds.label_names,
            task=ds.task,
            sort_by=sort_by,
            ascending=bool(ascending),
        )
        self._matching = pd.Index([])
        self._deleted: deque[list[dict]] = deque(maxlen=UNDO_DELETES)
        self._start_column()
        self._refresh()

    # -- data ------------------------------------------------------------------------------
    def _dataset_changed(self) -> None:
        self.labels = self.ds.label_names
        self._refresh()
        matching = set(self._matching)
        self.selected = [i for i in self.selected if i in matching]

    def _refresh(self, *, keep_page: bool = True) -> None:
        ds = self.ds
        ids = ds.query_ids(
            sort_by=SORTS[self.sort_by],
            ascending=self.ascending,
            **{k: self.filters.get(k) for k in FILTERS},
        )
        if self._restrict is not None:
            ids = ids.intersection(self._restrict, sort=False)
        self._matching = ids
        self.total = len(ids)
        self.empty_reason = self._why_empty() if not len(ids) else ""
        pages = max(1, -(-self.total // self.page_size))
        self.page = min(self.page if keep_page else 0, pages - 1)
        self._send_page(ids)

    def _send_page(self, ids: pd.Index) -> None:
        start = self.page * self.page_size
        part = self.ds.samples_at(ids[start : start + self.page_size])
        ann = self.ds.annotation_rows()
        ann = ann[ann["sample_id"].isin(part["sample_id"])]
        per_sample = (
            ann.groupby("sample_id")["label"]
            .apply(lambda s: sorted({str(v) for v in s if v is not None and v == v}))
            .to_dict()
        )
        boxes = {
            int(sid): [
                [b.x0, b.y0, b.x1, b.y1, cells.label(b.label) or ""]
                for b in group.itertuples(index=False)
                if b.kind != "tag" and b.x0 == b.x0  # a multi-label image's tags: no box
            ][:MAX_THUMB_BOXES]
            for sid, group in ann.groupby("sample_id")
        }
        rows = []
        for r in part.itertuples(index=False):
            labels = [str(r.label)] if isinstance(r.label, str) else per_sample.get(r.sample_id, [])
            rows.append(
                {
                    "sample_id": int(r.sample_id),
                    "name": r.name,
                    "labels": labels,
                    "status": str(r.status),
                    "added": r.added_at.strftime("%Y-%m-%d %H:%M"),
                    "width": int(r.width),
                    "height": int(r.height),
                    "hard": bool(r.hard),
                    "reasons": r.hard_reasons,
                    "why": "; ".join(
                        REASON_TEXTS.get(c, f"reason {c}") for c in parse_reasons(r.hard_reasons)
                    ),
                    "hard_score": cells.number(r.hard_score),
                    "boxes": boxes.get(int(r.sample_id), []),
                }
            )
        self.rows = rows
        ids = [row["sample_id"] for row in rows]
        self.send({"type": "thumbs", "ids": ids}, [self._thumbs.get(i) for i in ids])

    def _why_empty(self) -> str:
        """Which filter, on its own, matches no image (with the dataset's range of sizes),
        or that only their combination excludes everything.
        """
        frame = self.ds.sample_rows()
        if frame.empty:
            return "This dataset has no images yet: add some (Upload, or ds.add_images)."
        alone = []
        for key, value in self.filters.items():
            if len(self.ds.query_ids(**{key: value})) == 0:
                col = key.split("_", 1)[-1]
                extra = ""
                if key.startswith("min_"):
                    extra = f" (the largest is {int(frame[col].max())} px)"
                elif key.startswith("max_"):
                    extra = f" (the smallest is {int(frame[col].min())} px)"
                alone.append(f"{key}={value!r} matches no image{extra}")
        if alone:
            return "No image matches: " + "; ".join(alone) + "."
        if self._restrict is not None and not self._restrict:
            return "No image matches: this gallery was given no sample ids."
        return "No image matches every filter at once (each matches some on its own)."

    @property
    def sample_ids(self) -> list[int]:
        """Every sample id matching the filters (all pages)."""
        return [int(i) for i in self._matching]

    # -- messages --------------------------------------------------------------------------
    def _on_page(self, content: dict) -> None:
        page = int_in(content, "page")
        if page < 0:
            raise BadMessage("page: expected a non-negative integer")
        self.page = page
        self._refresh()

    def _on_page_size(self, content: dict) -> None:
        """Thumbnails per page; the page shown becomes the one holding its first image."""
        size = int_in(content, "size")
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise BadMessage(f"size: expected 1 to {MAX_PAGE_SIZE} images a page")
        first = self.page * self.page_size
        self.page_size = size
        self.page = first // size
        self._refresh()

    def _on_set_label(self, content: dict) -> None:
        """Classification: the selected images all get one label (the documents' confirm
        flow: select the wrong ones, give them the right label).
        """
        label = self.ds.require_label(text_in(content, "label"))
        ids = self._selected_ids(content)
        self.ds.set_label(ids, label)
        self.notice = f"{len(ids)} image{'s' if len(ids) != 1 else ''} labeled {label!r}"
        self._refresh()

    def _on_change_labels(self, content: dict) -> None:
        """Multilabel: the selected images all get a label (``give``) or lose it, each
        keeping its other labels.
        """
        label = self.ds.require_label(text_in(content, "label"))
        give = bool_in(content, "give")
        ids = self._selected_ids(content)
        if give:
            self.ds.change_labels(ids, add=[label])
        else:
            self.ds.change_labels(ids, remove=[label])
        n = f"{len(ids)} image{'s' if len(ids) != 1 else ''}"
        self.notice = f"{n} {'given' if give else 'without'} {label!r}"
        self._refresh()

    def _on_filter(self, content: dict) -> None:
        new = content.get("filters")
        if not isinstance(new, dict):
            raise BadMessage("filters: expected an object")
        reject_unknown("filter", new, FILTERS)
        cleaned = {k: v for k, v in new.items() if v is not None and v != ""}
        for key in ("name", "label", "added_after", "added_before", "split"):
            text_in(cleaned, key, optional=True)
        for key in ("min_width", "min_height", "max_width", "max_height"):
            int_in(cleaned, key, optional=True)
        bool_in(cleaned, "hard", optional=True)
        status = cleaned.get("status")
        if status is not None and not (
            isinstance(status, str)
            or (isinstance(status, list) and all(isinstance(v, str) for v in status))
        ):
            raise BadMessage("status: expected a status or a list of statuses")
        given: dict[str, Any] = {k: cleaned.get(k) for k in FILTERS}
        self.ds.query_ids(**given)  # validates
        self.filters = cleaned
        self.page = 0
        self._refresh()

    def _on_sort(self, content: dict) -> None:
        by = text_in(content, "by")
        if by not in SORTS:
            raise BadMessage(f"by={by!r}: sort by one of {sorted(SORTS)}")
        self.sort_by, self.ascending = by, bool_in(content, "ascending")
        self.page = 0
        self._refresh()

    def _on_select_all(self, content: dict) -> None:
        """Select every image matching the filters (all pages)."""
        self.selected = self.sample_ids
        self.notice = f"all {cells.plural(len(self.selected), 'matching image')} selected"

    def _selected_ids(self, content: dict) -> list[int]:
        return self.ds.require_samples(ids_in(content))

    def _on_select(self, content: dict) -> None:
        self.selected = self._selected_ids(content)

    def _on_mark_hard(self, content: dict) -> None:
        hard = bool_in(content, "hard")
        ids = self._selected_ids(content)
        self.ds.mark_hard(ids, hard)
        self.notice = f"{len(ids)} marked {'hard' if hard else 'not hard'}"
        self._refresh()

    def _on_confirm(self, content: dict) -> None:
        ids = self._selected_ids(content)
        self.ds.confirm(ids)
        self.notice = f"{len(ids)} confirmed"
        self._refresh()

    def _on_delete(self, content: dict) -> None:
        if content.get("confirmed") is not True:
            raise BadMessage("delete needs confirmed=true (the widget asks first)")
        ids = self._selected_ids(content)
        size = sum(self.ds.image_path(i).stat().st_size for i in ids)
        saved = [undo.save_sample(self.ds, i) for i in ids] if size <= UNDO_BYTES else None
        self.ds.delete_samples(ids)
        self.selected = []
        if saved is None:
            self.notice = (
                f"{cells.plural(len(ids), 'image')} deleted; {size / 2**20:,.0f} MB of images "
                f"is over the {UNDO_BYTES // 2**20} MB Undo keeps, so this cannot be undone"
            )
        else:
            self._deleted.append(saved)
            self.notice = f"{cells.plural(len(ids), 'image')} deleted (Undo brings them back)"
        self._show_undoable()
        self._refresh()

    def _on_undo(self, content: dict) -> None:
        """Add the images of the last batch delete back, with their labels and fields."""
        if not self._deleted:
            raise BadMessage("nothing to undo")
        saved = self._deleted.pop()
        back = [undo.restore_sample(self.ds, s) for s in saved]
        self.selected = back
        self.notice = f"{cells.plural(len(back), 'image')} added back"
        self._show_undoable()
        self._refresh()

    def _show_undoable(self) -> None:
        self.undoable = cells.plural(len(self._deleted[-1]), "image") if self._deleted else ""

    @takes_buffers
    def _on_upload(self, content: dict, buffers: list[bytes]) -> None:
        """Images chosen in the upload control: ``names`` and one buffer each; checked and
        added like `Dataset.add_images` (a report of what was added and rejected).
        """
        names = content.get("names")
        if (
            not isinstance(names, list)
            or not all(isinstance(n, str) for n in names)
            or len(names) != len(buffers)
            or not names
        ):
            raise BadMessage("upload: expected one file name per file sent")
        if any(len(b) > MAX_BYTES for b in buffers):
            raise BadMessage("upload: a file is over the 100 MB limit")
        unwritable: list[tuple[str, str]] = []
        with tempfile.TemporaryDirectory(prefix="hardex-upload-") as tmp:
            paths = []
            for k, (name, data) in enumerate(zip(names, buffers)):
                # one file at a time: a name this file system cannot hold loses no other
                safe = fit_name(Path(name.replace("\\", "/")).name or f"upload_{k}")
                folder = Path(tmp) / str(k)  # keeps same-named files apart
                folder.mkdir()
                try:
                    (folder / safe).write_bytes(bytes(data))
                except (OSError, ValueError) as exc:
                    reason = getattr(exc, "strerror", None) or str(exc)
                    unwritable.append((name, f"cannot be saved under that name ({reason})"))
                    continue
                paths.append(folder / safe)
            report = self.ds.add_images(paths) if paths else ImportReport()
        report.rejected = unwritable + report.rejected
        self.notice_details = upload_details(report)
        self.notice = upload_summary(report)
        self._refresh()

    def _on_open(self, content: dict) -> None:
        selected = self._selected_ids(content)
        if not selected:
            raise BadMessage("open: select an image first")
        self.opened = selected[0]
        self._open_in_annotator(selected[0], self.sample_ids)


def upload_summary(report: ImportReport) -> str:
    """One line for the upload notice: how many files went where."""
    parts = [f"{cells.plural(len(report.added), 'image')} added"]
    if report.duplicates:
        parts.append(f"{len(report.duplicates)} already in the dataset")
    if report.skipped:
        parts.append(f"{len(report.skipped)} skipped")
    if report.rejected:
        parts.append(f"{len(report.rejected)} rejected")
    line = ", ".join(parts)
    return line + (f". {report.advice}" if report.advice else "")


def upload_details(report: ImportReport) -> list[str]:
    """Every file the upload did not add, and why: the notice lists them all and stays."""
    return (
        [f"{name}: {reason}" for name, reason in report.rejected]
        + [f"{name}: not an image (an annotation or text file); skipped" for name in report.skipped]
        + [
            f"{name}: the same bytes as image {sid}, already in the dataset; not added again"
            for name, sid in report.duplicates
        ]
    )
