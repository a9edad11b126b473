"""The Dataset: pandas frames in memory, persisted in SQLite, edited through validated calls.

Reads come from in-memory frames; every edit is one SQLite transaction committed before the
call returns (see `hardex_nb.store`). When another process commits to the same dataset
the frames are reloaded before the next read or write, so two notebooks on one dataset see
each other's work and their writes serialize.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shutil
import socket
import sqlite3
import threading
import time
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import annotation_rules as rules
from . import formats, ingest, runlog, staging
from . import store as db
from ._frames import TableRows
from .annotation_rules import TASKS, storable
from .errors import FormatError, StoreError, ValidationError
from .formats.common import (
    AnnotationImport,
    opened_source,
)
from .processes import pid_alive
from .reasons import HARD_TYPES, Reason, encode_reasons, parse_reasons
from .store import (
    ANNOTATION_COLUMNS,
    FLAG_COLUMNS,
    LABEL_IN_USE,
    LABEL_MISSING,
    RUN_COLUMNS,
    SAMPLE_COLUMNS,
    Store,
)

STATUSES = ("unlabeled", "to_confirm", "labeled")
KINDS = ("box", "polygon", "ignore", "text", "tag")  # tag: one of a multi-label image's labels
SPLITS = ("train", "val", "test")
QUERY_FILTERS = (
    "name",
    "label",
    "status",
    "added_after",
    "added_before",
    "min_width",
    "min_height",
    "max_width",
    "max_height",
    "hard",
    "split",
)
MIN_IMAGES_ADVISED = 30  # the platform's advice for a dataset worth training on
MEDIA_NAME = re.compile(r"^\d{7,}_")  # media/<sample id>_<name>: the copies the store names
# every stored column but the ids and the kind
EDITABLE_ANNOTATION_FIELDS = set(ANNOTATION_COLUMNS) - {"ann_id", "sample_id", "kind"}


@dataclass
class ImportReport:
    """What an import did: ``added`` sample ids, ``duplicates`` (name, sample id) of files
    whose bytes the dataset already held (not added again), ``rejected`` (name, reason)
    pairs, ``skipped`` annotation side files (JSON, XML, TXT) that are not images, and
    ``advice`` (e.g. when the dataset still holds fewer than 30 images).
    """

    added: list[int] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    advice: str = ""
    duplicates: list[tuple[str, int]] = field(default_factory=list)

    def __repr__(self) -> str:
        lines = [
            f"ImportReport: {len(self.added)} added, {len(self.duplicates)} already in the "
            f"dataset, {len(self.rejected)} rejected, {len(self.skipped)} skipped"
        ]
        if self.advice:
            lines.append(f"  advice: {self.advice}")
        lines += [f"  rejected {name}: {reason}" for name, reason in self.rejected[:20]]
        if len(self.rejected) > 20:
            lines.append(f"  ... and {len(self.rejected) - 20} more")
        return "\n".join(lines)


def _as_ids(ids: Any) -> list[int]:
    """An int, a sequence of ints, a Series or a frame with ``sample_id`` as a list."""
    if isinstance(ids, (int, np.integer)):
        return [int(ids)]
    if isinstance(ids, pd.DataFrame):
        ids = ids["sample_id"]
    return [int(i) for i in ids]


def _flag(name: str, value: Any) -> bool:
    """A strict boolean: True/False (or 0/1 as stored), nothing else."""
    if isinstance(value, (bool, np.bool_)) or (
        isinstance(value, (int, np.integer)) and int(value) in (0, 1)
    ):
        return bool(value)
    raise ValidationError(f"{name}={value!r}: use True or False.")


def _whole(name: str, value: Any) -> int:
    """A whole number of pixels (not a bool, not infinite)."""
    if isinstance(value, (float, np.floating)) and math.isfinite(value) and value == int(value):
        value = int(value)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ValidationError(f"{name}={value!r}: give a whole number of pixels.")
    return int(value)


def _sorted(frame: pd.DataFrame, sort_by: str | None, ascending: bool) -> pd.DataFrame:
    """``frame`` in the order of column ``sort_by`` (stable; missing values last)."""
    if sort_by is None:
        return frame
    if sort_by not in SAMPLE_COLUMNS:
        raise ValidationError(f"sort_by={sort_by!r}: use a column of ds.samples.")
    return frame.sort_values(sort_by, ascending=ascending, kind="stable", na_position="last")


def _timestamp(value: Any, name: str) -> float:
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError):
        raise ValidationError(f"{name}={value!r} is not a date or time.") from None
    if ts.tzinfo is None:
        ts = ts.tz_localize("UTC")
    return ts.timestamp()


class Room:
    """The dataset's internals, as its own modules (``ingest``, ``runlog``) receive them:
    the store, the in-memory rows, the label list, the run table and the one write
    transaction. Nothing else uses it (``tests/test_layers.py``); users read the public
    frames instead.
    """

    def __init__(self, ds: Dataset):
        self._ds = ds

    @property
    def store(self) -> Store:
        """The dataset's SQLite store."""
        return self._ds._store

    @property
    def samples(self) -> TableRows:
        """The samples table as held in memory (not a copy)."""
        return self._ds._samples

    @property
    def annotations(self) -> TableRows:
        """The annotations table as held in memory (not a copy)."""
        return self._ds._annotations

    @property
    def labels(self) -> list[str]:
        """The label names in order (the list itself: extend it after a committed write)."""
        return self._ds._labels

    @property
    def runs(self) -> pd.DataFrame:
        """The training runs table (not a copy)."""
        return self._ds._runs

    def reload_runs(self) -> None:
        """Read the run table again (after a write to it)."""
        self._ds._runs = self.store.read_table("runs", RUN_COLUMNS, "number")

    def write(self):
        """The dataset's write transaction (see ``Dataset._write``)."""
        return self._ds._write()

    def write_annotation_rows(self, cur, rows: list[dict]) -> None:
        """Insert annotation rows inside the open write transaction ``cur``."""
        self._ds._write_annotation_rows(cur, rows)


class Dataset:
    """A folder holding an SQLite store and ``media/``; see `create` and `open`.

    Attributes ``samples``, ``annotations``, ``labels`` and ``runs`` are pandas DataFrames
    (copies: editing them does not change the dataset). Change the dataset through its
    methods; each is one transaction committed before it returns.
    """

    def __init__(self, store: Store):
        self._store = store
        self.path = store.folder
        task = store.get_meta("task")
        if task not in TASKS:
            store.close()
            raise StoreError(
                f"{store.path}: its task is {task!r}, not one of {TASKS}; "
                "the file is damaged or not a hardex_nb dataset."
            )
        self.task: str = task
        self._lock = threading.RLock()
        self.import_result: AnnotationImport | None = None  # set by from_files
        self._generation = 0
        self._reloads = 0
        self.room = Room(self)  # what the dataset's own modules (ingest, runlog) work with
        self.log = runlog.RunLog(self)  # runs, results, predictions, embeddings, job claims
        self._reload()

    # -- opening ------------------------------------------------------------------------
    @classmethod
    def create(cls, path: str | Path, *, task: str, labels: Sequence[str] = ()) -> Dataset:
        """Create a dataset folder at ``path`` (missing or empty).

        Parameters
        ----------
        task : {"classification", "multilabel", "detection"}
            ``classification``: one label per image (`set_label`); ``multilabel``: any
            number of labels per image (`set_labels`; each stored as an annotation of kind
            ``tag``); ``detection``: boxes, polygons, ignore regions and texts.
        labels : sequence of str
            The ordered label set; more can be added with `add_label`.
        """
        if task not in TASKS:
            raise ValidationError(
                f"task={task!r}: use 'classification', 'multilabel' or 'detection'."
            )
        folder = Path(path).resolve()  # once: a later os.chdir changes nothing
        if folder.exists() and any(folder.iterdir()):
            raise StoreError(
                f"{folder} exists and is not empty; open it with "
                "Dataset.open(path) or pick a new folder."
            )
        labels = list(labels)
        cls._new_label_names(labels)
        (folder / "media").mkdir(parents=True, exist_ok=True)
        store = Store(folder, create=True)
        with store.transaction() as cur:
            cur.execute("INSERT OR REPLACE INTO meta VALUES ('task', ?)", (task,))
            cur.execute("INSERT OR REPLACE INTO meta VALUES ('created_at', ?)", (str(time.time()),))
            cur.executemany(
                "INSERT INTO labels VALUES (?, ?)", [(name, i) for i, name in enumerate(labels)]
            )
        store.changed_elsewhere()
        return cls(store)

    @classmethod
    def open(cls, path: str | Path, *, read_only: bool | None = None) -> Dataset:
        """Open an existing dataset folder (the path is resolved once, here).

        Parameters
        ----------
        read_only : bool, optional
            Open for reading only; by default, when this process cannot write to the folder
            (a warning says so). Every edit then raises a ``StoreError``.

        Notes
        -----
        On a writable dataset, opening also cleans up after processes that were killed: a
        training run left ``running`` by a process that no longer exists on this machine is
        marked ``failed`` with the reason, and image copies that no sample names (an
        interrupted ``add_images`` or ``delete_samples``) are removed
        (`sweep_media`). A warning lists what was done.
        """
        folder = Path(path).resolve()
        if read_only is None:
            read_only = folder.is_dir() and not all(
                os.access(p, os.W_OK) for p in (folder, folder / "hardex.sqlite") if p.exists()
            )
            if read_only:
                warnings.warn(
                    f"{folder}: this process cannot write to the folder; the dataset "
                    "is opened read-only.",
                    UserWarning,
                    stacklevel=2,
                )
        ds = cls(Store(folder, read_only=read_only))
        if not read_only:
            runlog.reconcile_runs(ds)
            swept = ds.sweep_media()
            if swept:
                shown = ", ".join(swept[:10]) + (
                    f" and {len(swept) - 10} more" if len(swept) > 10 else ""
                )
                warnings.warn(
                    f"{folder}: cleaned up {len(swept)} image file(s) left by an "
                    f"interrupted add_images or delete_samples: {shown}.",
                    UserWarning,
                    stacklevel=2,
                )
        return ds

    @classmethod
    def from_files(
        cls,
        fmt: str,
        source: str | Path,
        *,
        into: str | Path,
        images: str | Path | None = None,
        task: str | None = None,
        labels: Sequence[str] = (),
        unknown_labels: str = "add",
        outside: str = "clip",
    ) -> Dataset:
        """A new dataset at ``into`` from annotation files and the images they name, in one
        call: all or nothing (on any problem nothing is left at ``into``).

        Parameters
        ----------
        fmt : {"coco", "voc", "yolo", "labelme", "manifest", "dota"}
        source : path
            The annotation file, folder or .zip (a YOLO export's folder with its data.yaml).
        images : path, optional
            Where the images are; by default beside the annotations. Each image is found by
            the path the file gives (a COCO ``file_name`` under ``images``, a labelme
            ``imagePath``, a manifest ``source``, a VOC ``<path>``), else by its name or stem.
        task : {"classification", "detection"}, optional
            By default detection when the files hold objects, classification when they hold
            image labels only.
        labels : sequence of str
            Labels to create first (keeps their order); the files' others are appended.

        Notes
        -----
        The import's details are kept as ``ds.import_result`` (an AnnotationImport). The
        dataset is built in a staging folder beside ``into`` and renamed into place at the
        end, so a process killed part-way leaves nothing at ``into``; the next call sweeps
        what such a process left. Images are read only from inside ``images`` (or the
        annotations' folder or archive): a path out of it is refused.
        """
        into = Path(into).resolve()
        if into.exists() and any(into.iterdir()):
            raise StoreError(f"{into} exists and is not empty; pick a new folder for the dataset.")
        staging.sweep(into.parent)
        problems: list[str] = []
        skipped: list[str] = []
        with opened_source(source) as folder:
            records = formats.read_records(
                fmt, folder, problems, skipped, archived=Path(source).suffix.lower() == ".zip"
            )
            if problems:
                raise FormatError(f"{fmt} files refused; no dataset was created", problems)
            if not records:
                raise FormatError(f"{Path(source).name}: no {fmt} files found there.")
            beside = folder if folder.is_dir() else folder.parent
            for part in ("labels", "labelTxt"):  # YOLO, DOTA: images/ beside the labels
                if part in beside.parts:
                    beside = Path(
                        *beside.parts[: len(beside.parts) - beside.parts[::-1].index(part) - 1]
                    )
            roots = [Path(images).resolve()] if images is not None else [beside]
            located, missing = formats.locate_images(records, roots)
            if missing:
                raise FormatError(
                    f"{fmt}: images not found; no dataset was created (pass "
                    "images= the folder that holds them)",
                    missing,
                )
            if task is None:
                task = (
                    "detection"
                    if any(r.shapes for r in records) or not any(r.label for r in records)
                    else "classification"
                )
            paths = [p for p in located if p is not None]  # every one found
            building = staging.folder_for(into)
            ds = cls.create(building, task=task, labels=labels)
            try:
                unique = list(dict.fromkeys(p.resolve() for p in paths))
                report = ImportReport()
                checked = ingest.check_files(unique, report)
                if report.rejected:
                    raise FormatError(
                        f"{fmt}: images refused; no dataset was created",
                        [f"{name}: {reason}" for name, reason in report.rejected],
                    )
                ids = ingest.insert_images(ds, checked, copy=True, origin="upload")
                sid_of = {info.path: sid for info, sid in zip(checked, ids)}
                ds.import_result = ingest.apply_import(
                    ds,
                    records,
                    fmt=fmt,
                    unknown_labels=unknown_labels,
                    outside=outside,
                    skipped=skipped,
                    bound=[sid_of.get(p.resolve()) for p in paths],
                )
                result = ds.import_result
            except BaseException:
                ds.close()
                shutil.rmtree(building, ignore_errors=True)
                raise
        ds.close()
        if into.exists():
            into.rmdir()  # empty, checked above
        building.rename(into)
        ds = cls.open(into)
        ds.import_result = result
        return ds

    @classmethod
    def from_coco(
        cls,
        source: str | Path,
        *,
        into: str | Path,
        images: str | Path | None = None,
        **options: Any,
    ) -> Dataset:
        """A dataset from a COCO JSON and its images (see `from_files`)."""
        return cls.from_files("coco", source, into=into, images=images, **options)

    @classmethod
    def from_voc(
        cls,
        source: str | Path,
        *,
        into: str | Path,
        images: str | Path | None = None,
        **options: Any,
    ) -> Dataset:
        """A dataset from PASCAL VOC XML files and their images (see `from_files`)."""
        return cls.from_files("voc", source, into=into, images=images, **options)

    @classmethod
    def from_yolo(
        cls,
        source: str | Path,
        *,
        into: str | Path,
        images: str | Path | None = None,
        **options: Any,
    ) -> Dataset:
        """A dataset from a YOLO export (data.yaml or classes.txt; splits kept)."""
        return cls.from_files("yolo", source, into=into, images=images, **options)

    @classmethod
    def from_labelme(
        cls,
        source: str | Path,
        *,
        into: str | Path,
        images: str | Path | None = None,
        **options: Any,
    ) -> Dataset:
        """A dataset from labelme JSON files and their images (see `from_files`)."""
        return cls.from_files("labelme", source, into=into, images=images, **options)

    @classmethod
    def from_dota(
        cls,
        source: str | Path,
        *,
        into: str | Path,
        images: str | Path | None = None,
        **options: Any,
    ) -> Dataset:
        """A dataset from DOTA txt files (rotated boxes) and their images."""
        return cls.from_files("dota", source, into=into, images=images, **options)

    @classmethod
    def from_manifest(
        cls,
        source: str | Path,
        *,
        into: str | Path,
        images: str | Path | None = None,
        **options: Any,
    ) -> Dataset:
        """A dataset from a ModelArts manifest and the images its ``source`` fields name."""
        return cls.from_files("manifest", source, into=into, images=images, **options)

    @property
    def read_only(self) -> bool:
        """Whether the dataset was opened read-only (see `open`)."""
        return self._store.read_only

    def close(self) -> None:
        """Close the dataset's database connection (widgets and jobs on it stop working)."""
        self._store.close()

    def __enter__(self) -> Dataset:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        self.refresh()
        counts = self._samples.merged()["status"].value_counts()
        parts = ", ".join(f"{counts.get(s, 0)} {s}" for s in STATUSES)
        return (
            f"<hardex_nb.Dataset {self.task} at {self.path}: {len(self._samples)} images "
            f"({parts}), {len(self._annotations)} annotations, {len(self._labels)} labels>"
        )

    # -- loading and syncing ------------------------------------------------------------
    def _reload(self) -> None:
        self._generation += 1
        self._reloads += 1
        st = self._store
        self._samples = TableRows(
            st.read_table("samples", SAMPLE_COLUMNS, "sample_id"), "sample_id"
        )
        ann = st.read_table("annotations", ANNOTATION_COLUMNS, "ann_id")
        self._annotations = TableRows(ann, "ann_id")
        labels = st.read_table("labels", ["name", "position"], "position")
        self._labels = list(labels["name"])
        self._runs = st.read_table("runs", RUN_COLUMNS, "number")

    def refresh(self) -> None:
        """Reload the frames if another process (or another Dataset object on the same
        folder) committed since the last read; widgets and jobs call it before they read.
        """
        if self._store.changed_elsewhere():
            self._reload()

    @property
    def generation(self) -> int:
        """A number that grows with every change this object has seen: its own writes and
        what `refresh` found another writer did. Widgets compare it to redraw only
        when something changed.
        """
        return self._generation

    @property
    def reloads(self) -> int:
        """How many times the frames were read again from disk (opening, or what another
        writer committed): a widget whose action saw it grow has something to redraw.
        """
        return self._reloads

    @contextlib.contextmanager
    def _write(self):
        """One write transaction; frames are reloaded first if another process wrote.

        A write the store refuses (a row naming a label or sample that another process
        deleted meanwhile) rolls back and raises a ValidationError; the frames then match
        the disk again.
        """
        with self._lock:
            try:
                with self._store.transaction() as cur:
                    if self._store.changed_elsewhere():
                        self._reload()
                    yield cur
                self._generation += 1
            except sqlite3.IntegrityError as exc:
                self._reload()
                raise ValidationError(_conflict_message(exc)) from None

    # -- public frames ------------------------------------------------------------------
    def sample_rows(self) -> pd.DataFrame:
        """The stored sample rows, indexed by ``sample_id``, as kept in memory: no copy and
        no conversion (codes, not categories). For jobs and widgets that read many rows;
        read it, never change it (use `samples` for a frame of your own).
        """
        return self._samples.merged()

    def annotation_rows(self) -> pd.DataFrame:
        """The stored annotation rows, indexed by ``ann_id`` (see `sample_rows`)."""
        return self._annotations.merged()

    @property
    def samples(self) -> pd.DataFrame:
        """One row per image (a copy); columns as in DESIGN.md."""
        self.refresh()
        return self._public_samples(self._samples.merged())

    @property
    def annotations(self) -> pd.DataFrame:
        """One row per object (a copy): box, polygon, ignore region or text."""
        self.refresh()
        return self._public_annotations(self._annotations.merged())

    @property
    def labels(self) -> pd.DataFrame:
        """The ordered label set: columns ``name``, ``position``."""
        self.refresh()
        return pd.DataFrame(
            {
                "name": pd.Series(self._labels, dtype="object"),
                "position": np.arange(len(self._labels), dtype="int64"),
            }
        )

    @property
    def label_names(self) -> list[str]:
        """The ordered label names."""
        self.refresh()
        return list(self._labels)

    @property
    def runs(self) -> pd.DataFrame:
        """Training runs V1, V2, ... (a copy); ``params`` decoded from JSON (``ds.log``)."""
        return self.log.runs

    @property
    def results(self) -> pd.DataFrame:
        """The results jobs recorded (``auto_label``, ``find_mislabels``, ``evaluate``,
        ``collect``): key, method, run version, params, the fields written, created. Load
        one with ``hx.load_result(ds, key)``, forget one with `delete_result`.
        """
        return self.log.results

    def delete_result(self, key: str) -> None:
        """Forget the recorded result ``key`` (the values the job wrote stay)."""
        self.log.delete_result(key)

    def _public_samples(self, frame: pd.DataFrame) -> pd.DataFrame:
        out = frame.reset_index(drop=True).copy()
        out["sample_id"] = out["sample_id"].astype("int64")
        out["path"] = out["path"].astype(str)
        out["name"] = out["name"].astype(str)
        out["width"] = out["width"].astype("int64")
        out["height"] = out["height"].astype("int64")
        out["status"] = pd.Categorical(out["status"], categories=STATUSES)
        out["label"] = pd.Categorical(out["label"], categories=self._labels)
        out["hard"] = out["hard"].astype(bool)
        out["hard_score"] = out["hard_score"].astype("float64")
        out["hard_reasons"] = out["hard_reasons"].fillna("").astype(str)
        out["added_at"] = pd.to_datetime(out["added_at"].astype("float64"), unit="s", utc=True)
        out["source"] = out["source"].astype("category")
        out["split"] = pd.Categorical(out["split"], categories=SPLITS)
        for col in ("parent_id", "tile_row", "tile_col"):
            out[col] = pd.array(out[col].astype("float64"), dtype="Int64")
        if self.task == "multilabel":  # each image's tags, in label-set order
            ann = self._annotations.merged()
            tags = ann[ann["kind"] == "tag"]
            order = {name: i for i, name in enumerate(self._labels)}
            held: dict[int, list[str]] = {}
            for sid, name in zip(tags["sample_id"].astype(int), tags["label"]):
                held.setdefault(sid, []).append(name)
            out.insert(
                out.columns.get_loc("label") + 1,
                "labels",
                [sorted(held.get(int(s), []), key=lambda n: order[n]) for s in out["sample_id"]],
            )
        return out

    def _public_annotations(self, frame: pd.DataFrame) -> pd.DataFrame:
        out = frame.reset_index(drop=True).copy()
        for col in ("ann_id", "sample_id"):
            out[col] = out[col].astype("int64")
        out["kind"] = pd.Categorical(out["kind"], categories=KINDS)
        out["label"] = pd.Categorical(out["label"], categories=self._labels)
        for col in ("x0", "y0", "x1", "y1", "angle", "score"):
            out[col] = out[col].astype("float64")
        out["points"] = [json.loads(p) if isinstance(p, str) else None for p in out["points"]]
        out["origin"] = out["origin"].astype("category")
        out["hard_type"] = pd.Categorical(out["hard_type"], categories=HARD_TYPES)
        for col in FLAG_COLUMNS:
            out[col] = out[col].fillna(0).astype(bool)
        return out

    # -- lookups ------------------------------------------------------------------------
    def image_path(self, sample_id: int) -> Path:
        """Absolute path of a sample's image file."""
        self.refresh()
        (sid,) = self.require_samples(sample_id)
        return self._resolve(self._samples.get(sid)["path"])

    def _resolve(self, stored: str) -> Path:
        p = Path(stored)
        return p if p.is_absolute() else self.path / p

    def annotations_of(self, sample_id: int) -> pd.DataFrame:
        """Annotations of one sample (a copy)."""
        self.refresh()
        (sid,) = self.require_samples(sample_id)
        ann = self._annotations.merged()
        return self._public_annotations(ann[ann["sample_id"].to_numpy() == sid])

    def sample(self, sample_id: int) -> dict:
        """One sample row as a dict."""
        self.refresh()
        (sid,) = self.require_samples(sample_id)
        return self._public_samples(pd.DataFrame([self._samples.get(sid)])).iloc[0].to_dict()

    # -- validation ---------------------------------------------------------------------
    @staticmethod
    def _new_label_names(names: Iterable[str], existing: Iterable[str] = ()) -> None:
        """Refuse bad new label ``names`` (and any name given twice, ``existing`` included;
        the rules apply to the new names only, so an older name never blocks an edit).
        """
        seen: set[str] = set(existing)
        for name in names:
            rules.check_label_name(name)
            if name in seen:
                raise ValidationError(f"label {name!r} is given twice.")
            seen.add(name)

    def require_samples(self, ids: int | Iterable[int]) -> list[int]:
        """The sample ids as a list, each checked to exist (a ValidationError names the
        missing ones).
        """
        try:
            out = _as_ids(ids)
        except (TypeError, ValueError):
            raise ValidationError(f"sample ids {ids!r}: give an int or a list of ints.") from None
        missing = [i for i in out if i not in self._samples]
        if missing:
            raise ValidationError(f"unknown sample id(s) {missing[:10]}; see ds.samples.sample_id.")
        return out

    def require_label(self, label: str) -> str:
        """``label`` if it is in the label set; else a ValidationError that says so."""
        if label not in self._labels:
            raise ValidationError(
                f"label {label!r} is not in the label set {self._labels}; "
                "add it with ds.add_label(name) first."
            )
        return label

    def _require_detection(self, what: str) -> None:
        if self.task != "detection":
            raise ValidationError(f"{what} needs a detection dataset; this one is {self.task}.")

    def _where(self, sid: int) -> str:
        return f"sample {sid} '{self._samples.get(sid)['name']}'"

    def _box_on(self, sid: int, x0, y0, x1, y1, angle=None) -> tuple[float, float, float, float]:
        """A box inside its image (see `annotation_rules.check_box`)."""
        row = self._samples.get(sid)
        box, _ = rules.check_box(
            (x0, y0, x1, y1),
            float(row["width"]),
            float(row["height"]),
            angle=angle,
            where=self._where(sid),
        )
        return box

    def _polygon_on(self, sid: int, points) -> list:
        """A polygon inside its image (see `annotation_rules.check_polygon`)."""
        row = self._samples.get(sid)
        rings, _ = rules.check_polygon(
            points, float(row["width"]), float(row["height"]), where=self._where(sid)
        )
        return rings

    # -- images -------------------------------------------------------------------------
    def add_images(
        self,
        source: str | Path | Sequence[str | Path],
        *,
        copy: bool = True,
        for_tiling: bool = False,
        origin: str = "upload",
        duplicates: str = "skip",
    ) -> ImportReport:
        """Add images from a folder (recursively), a list of paths or a .zip file.

        Each image is checked (format, size, aspect, every pixel decoded); bad ones are
        listed in ``report.rejected`` with their reason and the rest are added in one
        transaction. With ``copy=True`` the files are copied into ``media/``.

        Parameters
        ----------
        for_tiling : bool
            Accept images up to 10000×30000 pixels (to be cut with ``hardex_nb.tile``).
        origin : str
            Written to the ``source`` column (``upload``, ``collect``, ...).
        duplicates : {"skip", "add"}
            ``"skip"`` (default: running the cell twice adds nothing the second time): a
            file whose bytes the dataset already holds, or that the same call met before,
            is listed in ``report.duplicates`` with the sample it repeats and not added.
            ``"add"`` adds it again as a new sample.
        """
        if duplicates not in ("skip", "add"):
            raise ValidationError(f"duplicates={duplicates!r}: use 'skip' or 'add'.")
        report = ImportReport()
        with contextlib.ExitStack() as stack:
            too_large: list[tuple[str, int]] = []
            files = ingest.gather_files(source, stack, copy, too_large)
            report.rejected += [
                (
                    name,
                    f"{size / 2**20:.1f} MB (as the archive declares it) is "
                    "over the 100 MB limit; not extracted",
                )
                for name, size in too_large
            ]
            checked = ingest.check_files(files, report, for_tiling=for_tiling)
            report.added = ingest.insert_images(
                self,
                checked,
                copy=copy,
                origin=origin,
                duplicates=report.duplicates if duplicates == "skip" else None,
            )
        total = len(self._samples)
        if total < MIN_IMAGES_ADVISED:
            report.advice = (
                f"the dataset holds {total} images; add at least "
                f"{MIN_IMAGES_ADVISED} (and 5 or more per label) before training "
                "for a model that generalizes"
            )
        return report

    def sweep_media(self) -> list[str]:
        """Remove what killed processes left in ``media/``; returns the names handled.

        - copies staged by an ``add_images`` whose process on this machine is gone: moved
          into place when their sample was committed, deleted otherwise;
        - ``media/<id>_<name>`` files that no sample names (a ``delete_samples`` killed
          between its commit and the file deletions).

        Called by `open`. Staging folders of live processes and of other machines
        are left alone.
        """
        media_dir = self.path / "media"
        if not media_dir.is_dir():
            return []
        listed = [p for p in media_dir.iterdir() if p.is_file() and MEDIA_NAME.match(p.name)]
        staged: list[Path] = []
        for folder in sorted((media_dir / ingest.INCOMING).glob("*")):
            host, _, pid = folder.name.rpartition(".")
            if (
                folder.is_dir()
                and host == socket.gethostname()
                and pid.isdigit()
                and not pid_alive(int(pid))
            ):
                staged.append(folder)
        with self._lock:  # the rows are read after the listing: a copy renamed meanwhile
            self.refresh()  # was committed first, so its row is seen here
            stored = {
                Path(p).name
                for p in self._samples.merged()["path"].astype(str)
                if not Path(p).is_absolute()
            }
        swept = []
        for folder in staged:
            for f in sorted(folder.iterdir()):
                if f.name in stored and not (media_dir / f.name).exists():
                    f.replace(media_dir / f.name)
                else:
                    f.unlink()
                swept.append(f.name)
            ingest.remove_empty(folder)
        for f in listed:
            if f.name not in stored:
                f.unlink(missing_ok=True)
                swept.append(f.name)
        ingest.remove_empty(media_dir / ingest.INCOMING)
        return swept

    def delete_samples(self, sample_ids: int | Iterable[int]) -> None:
        """Delete samples, their annotations, and their copies under ``media/``."""
        self.refresh()
        self.require_samples(sample_ids)
        with self._write() as cur:  # planned on the frames as they are inside the lock
            ids = [i for i in _as_ids(sample_ids) if i in self._samples]
            ann = self._annotations.merged()
            ann_ids = ann.loc[ann["sample_id"].isin(ids), "ann_id"].astype(int).tolist()
            paths = [self._samples.get(i)["path"] for i in ids]
            db.delete(cur, "samples", "sample_id", ids)
        self._annotations.delete(ann_ids)
        self._samples.delete(ids)
        for p in paths:  # after the commit; a kill here leaves files sweep_media removes
            if not Path(p).is_absolute():
                (self.path / p).unlink(missing_ok=True)

    # -- labels -------------------------------------------------------------------------
    def add_label(self, name: str) -> None:
        """Append a label to the label set."""
        self.refresh()
        self._new_label_names([name], self._labels)
        with self._write() as cur:
            cur.execute("INSERT INTO labels VALUES (?, ?)", (name, len(self._labels)))
        self._labels.append(name)

    def rename_label(self, old: str, new: str) -> None:
        """Rename a label everywhere (label set, samples, annotations)."""
        self.refresh()
        self.require_label(old)
        self._new_label_names([new], [n for n in self._labels if n != old])
        with self._write() as cur:
            cur.execute("UPDATE labels SET name=? WHERE name=?", (new, old))
            cur.execute("UPDATE samples SET label=? WHERE label=?", (new, old))
            cur.execute("UPDATE annotations SET label=? WHERE label=?", (new, old))
        self._labels[self._labels.index(old)] = new
        for rows in (self._samples, self._annotations):
            frame = rows.merged()
            frame.loc[frame["label"] == old, "label"] = new

    def delete_label(self, name: str) -> None:
        """Delete a label **and every annotation that carries it**.

        Warning: this cannot be undone. Samples classified with it, and detection samples
        left with no annotation, go back to ``unlabeled``.
        """
        self.refresh()
        self.require_label(name)
        with self._write() as cur:  # planned on the frames as they are inside the lock
            self.require_label(name)
            ann = self._annotations.merged()
            doomed = ann.loc[ann["label"] == name]
            doomed_ids = doomed["ann_id"].astype(int).tolist()
            left = ann.loc[ann["label"] != name, "sample_id"]
            emptied = sorted(set(doomed["sample_id"].astype(int)) - set(left.astype(int)))
            samples = self._samples.merged()
            classified = samples.loc[samples["label"] == name, "sample_id"].astype(int).tolist()
            cur.execute("DELETE FROM annotations WHERE label=?", (name,))
            cur.execute("UPDATE samples SET label=NULL, status='unlabeled' WHERE label=?", (name,))
            cur.executemany(
                "UPDATE samples SET status='unlabeled' WHERE sample_id=?", [(i,) for i in emptied]
            )
            cur.execute("DELETE FROM labels WHERE name=?", (name,))
            cur.executemany(
                "UPDATE labels SET position=? WHERE name=?",
                [(i, n) for i, n in enumerate(x for x in self._labels if x != name)],
            )
        self._annotations.delete(doomed_ids)
        self._samples.update_many(classified, {"label": None, "status": "unlabeled"})
        self._samples.update_many(emptied, {"status": "unlabeled"})
        self._labels.remove(name)

    # -- sample edits -------------------------------------------------------------------
    def _update_samples(self, ids: list[int], fields: dict) -> None:
        with self._write() as cur:
            changed = db.update(
                cur, "samples", fields, "sample_id", [(*fields.values(), i) for i in ids]
            )
            if changed != len(ids):
                gone = [i for i in ids if i not in self._samples]
                raise ValidationError(
                    f"sample(s) {gone[:10]} were deleted by another process; nothing was written."
                )
        self._samples.update_many(ids, fields)

    def set_label(self, sample_ids: int | Iterable[int], label: str | None) -> None:
        """Classify samples as ``label`` (status ``labeled``); ``None`` clears it."""
        self.refresh()
        if self.task == "multilabel":
            raise ValidationError(
                "set_label gives one label; this dataset is multilabel: give an image its "
                "labels with ds.set_labels(sample_ids, ['cat', 'dog'])."
            )
        if self.task != "classification":
            raise ValidationError(
                "set_label is for classification datasets; add boxes with "
                "ds.add_box(...) on a detection dataset."
            )
        ids = self.require_samples(sample_ids)
        if label is not None:
            self.require_label(label)
        self._update_samples(
            ids, {"label": label, "status": "labeled" if label is not None else "unlabeled"}
        )

    def set_labels(self, sample_ids: int | Iterable[int], labels: Iterable[str] | None) -> None:
        """Multi-label: give samples exactly ``labels`` (status ``labeled``), in one
        transaction. What the samples held before, a model's proposed labels included, is
        replaced: this is also how a reviewer confirms or fixes an auto-label. ``[]``: a
        labeled image that shows none of the labels; ``None`` clears them (``unlabeled``).
        Running it twice gives the same dataset.
        """
        self.refresh()
        self._require_multilabel("set_labels")
        ids = self.require_samples(sample_ids)
        if isinstance(labels, str):
            raise ValidationError(
                f"labels={labels!r}: give a list of label names, e.g. [{labels!r}]."
            )
        names = None if labels is None else list(dict.fromkeys(labels))
        for name in names or []:
            self.require_label(name)
        self._write_tags(dict.fromkeys(ids, names))

    def change_labels(
        self,
        sample_ids: int | Iterable[int],
        *,
        add: Iterable[str] = (),
        remove: Iterable[str] = (),
    ) -> None:
        """Multi-label: give samples the labels ``add`` and take ``remove`` away, each image
        keeping its other labels (status ``labeled``; a model's proposed labels become a
        person's), in one transaction: the Gallery's batch edit. Running it twice gives the
        same dataset.
        """
        self.refresh()
        self._require_multilabel("change_labels")
        ids = self.require_samples(sample_ids)
        add, remove = [list(v) if not isinstance(v, str) else [v] for v in (add, remove)]
        both = set(add) & set(remove)
        if both:
            raise ValidationError(f"labels {sorted(both)} are both added and removed; pick one.")
        for name in add + remove:
            self.require_label(name)
        ann = self._annotations.merged()
        tags = ann[ann["sample_id"].isin(ids) & (ann["kind"] == "tag")]
        held: dict[int, set[str]] = {sid: set(add) for sid in ids}
        for sid, name in zip(tags["sample_id"].astype(int), tags["label"]):
            held[sid].add(name)
        self._write_tags(
            {sid: [n for n in self._labels if n in held[sid] and n not in remove] for sid in ids}
        )

    def _require_multilabel(self, what: str) -> None:
        if self.task != "multilabel":
            raise ValidationError(
                f"{what} is for multilabel datasets; this one is {self.task} "
                "(use ds.set_label on a classification dataset)."
            )

    def _write_tags(self, labels: dict[int, list[str] | None]) -> None:
        """Each sample's tags become its list (None: none, and ``unlabeled``), in one
        transaction.
        """
        rows = [
            rules.annotation_row(sid, "tag", name, None)
            for sid, names in labels.items()
            for name in names or []
        ]
        ids = list(labels)
        with self._write() as cur:
            ann = self._annotations.merged()
            old = ann.loc[ann["sample_id"].isin(ids) & (ann["kind"] == "tag"), "ann_id"]
            old = old.astype(int).tolist()
            db.delete(cur, "annotations", "ann_id", old)
            self._write_annotation_rows(cur, rows)
            changed = db.update(
                cur,
                "samples",
                ["status"],
                "sample_id",
                [("unlabeled" if v is None else "labeled", i) for i, v in labels.items()],
            )
            if changed != len(ids):
                gone = [i for i in ids if i not in self._samples]
                raise ValidationError(
                    f"sample(s) {gone[:10]} were deleted by another process; nothing was written."
                )
        self._annotations.delete(old)
        self._annotations.add(rows)
        for status in ("labeled", "unlabeled"):
            self._samples.update_many(
                [i for i, v in labels.items() if (v is None) == (status == "unlabeled")],
                {"status": status},
            )

    def labels_of(self, sample_id: int) -> list[str]:
        """The labels a sample holds (multi-label: its tags, in label-set order;
        classification: its one label, or none).
        """
        self.refresh()
        (sid,) = self.require_samples(sample_id)
        if self.task == "classification":
            label = self._samples.get(sid)["label"]
            return [label] if isinstance(label, str) else []
        ann = self._annotations.merged()
        held = set(ann.loc[(ann["sample_id"] == sid) & (ann["kind"] == "tag"), "label"])
        return [name for name in self._labels if name in held]

    def rename_sample(self, sample_id: int, name: str) -> None:
        """Give a sample another file name (what exports and name matching use); the
        image's suffix stays, so the file type does not change.
        """
        self.refresh()
        (sid,) = self.require_samples(sample_id)
        if (
            not isinstance(name, str)
            or not name.strip()
            or "/" in name
            or "\\" in name
            or not storable(name)
            or len(name.encode()) > ingest.MAX_NAME_BYTES
        ):
            raise ValidationError(
                f"name={name!r}: give a file name (no folder, at most "
                f"{ingest.MAX_NAME_BYTES} bytes of UTF-8)."
            )
        old = self._samples.get(sid)["name"]
        if Path(name).suffix.lower() != Path(old).suffix.lower():
            raise ValidationError(f"name={name!r}: keep the image's suffix {Path(old).suffix!r}.")
        self._update_samples([sid], {"name": name})

    def set_status(self, sample_ids: int | Iterable[int], status: str) -> None:
        """Set ``unlabeled``, ``to_confirm`` or ``labeled``."""
        self.refresh()
        if status not in STATUSES:
            raise ValidationError(f"status={status!r}: use one of {list(STATUSES)}.")
        self._update_samples(self.require_samples(sample_ids), {"status": status})

    def set_split(self, sample_ids: int | Iterable[int], split: str) -> None:
        """Put samples in the ``train``, ``val`` or ``test`` split."""
        self.refresh()
        if split not in SPLITS:
            raise ValidationError(f"split={split!r}: use one of {list(SPLITS)}.")
        self._update_samples(self.require_samples(sample_ids), {"split": split})

    def mark_hard(
        self,
        sample_ids: int | Iterable[int],
        hard: bool = True,
        *,
        reasons: str | Sequence[int] = "",
        score: float | None = None,
        replace: bool = False,
    ) -> None:
        """Flag samples as hard examples (or clear the flag with ``hard=False``).

        ``reasons`` are hard-reason codes (see DESIGN.md), as ints or a ``-``-joined string.
        By default what a model recorded stays: ``reasons`` join the stored ones (reason
        100, marked by hand, when none is given: the flag never stands without a reason)
        and the stored hard score is kept unless ``score`` is given. ``hard=False`` clears
        the flag and reason 100; the model's reasons and score stay. ``replace=True`` sets
        the flag, reasons and score exactly as given (undo uses it).
        """
        self.refresh()
        ids = self.require_samples(sample_ids)
        try:
            given = parse_reasons(reasons) if isinstance(reasons, str) else list(reasons)
            text = encode_reasons(given)
        except (TypeError, ValueError):
            raise ValidationError(f"reasons={reasons!r}: give integer reason codes.") from None
        score = rules.check_score(score, "a hard score")
        if replace:
            self._update_samples(
                ids, {"hard": int(bool(hard)), "hard_reasons": text, "hard_score": score}
            )
            return
        by_hand = int(Reason.MARKED_BY_HAND)
        updates = []
        with self._write() as cur:  # read inside the write: a job's reasons of a moment ago
            for sid in ids:
                now = cur.execute(
                    "SELECT hard_reasons, hard_score FROM samples WHERE sample_id=?", (sid,)
                ).fetchone()
                if now is None:
                    raise ValidationError(
                        f"sample {sid} was deleted by another process; nothing was written."
                    )
                codes = parse_reasons(now[0])
                if hard:
                    codes = [*codes, *(given or [by_hand])]
                else:
                    codes = [c for c in codes if c != by_hand]
                kept = score if score is not None else now[1]
                updates.append((int(bool(hard)), encode_reasons(codes), kept, sid))
            cur.executemany(
                "UPDATE samples SET hard=?, hard_reasons=?, hard_score=? WHERE sample_id=?",
                updates,
            )
        for flag, codes_text, kept, sid in updates:
            self._samples.update(
                sid, {"hard": flag, "hard_reasons": codes_text, "hard_score": kept}
            )

    def flag_for_review(
        self,
        expected_labels: pd.Series,
        *,
        reason: int,
        scores: pd.Series,
        then: Any = None,
    ) -> list[int]:
        """Mark samples hard with ``reason`` and ``scores`` and put them in ``to_confirm``
        (the Review queue), in one transaction; returns the ids skipped.

        ``expected_labels`` (indexed by sample id) are the labels a job read: a sample whose
        label or status a person changed since (or that was deleted) is skipped, so a job
        never flags what a person already fixed. Existing reason codes are kept.
        ``then(cur, skipped)`` runs inside the transaction (the job's result record).
        """
        ids = [int(i) for i in expected_labels.index]
        skipped: list[int] = []
        rows = []
        with self._write() as cur:
            for sid in ids:
                now = cur.execute(
                    "SELECT label, status, hard_reasons FROM samples WHERE sample_id=?", (sid,)
                ).fetchone()
                if now is None or now[0] != expected_labels[sid] or now[1] != "labeled":
                    skipped.append(sid)
                    continue
                codes = encode_reasons([*parse_reasons(now[2]), int(reason)])
                score = rules.check_score(float(scores[sid]), "a hard score")
                rows.append((1, codes, score, "to_confirm", sid))
            cur.executemany(
                "UPDATE samples SET hard=?, hard_reasons=?, hard_score=?, status=? "
                "WHERE sample_id=?",
                rows,
            )
            if then is not None:
                then(cur, skipped)
        for hard, reasons, score, status, sid in rows:
            self._samples.update(
                sid, {"hard": hard, "hard_reasons": reasons, "hard_score": score, "status": status}
            )
        return skipped

    def confirm(self, sample_ids: int | Iterable[int]) -> None:
        """Accept samples' annotations as they are: status becomes ``labeled``."""
        self.set_status(sample_ids, "labeled")

    # -- annotation edits ---------------------------------------------------------------
    def _write_annotation_rows(self, cur, rows: list[dict]) -> None:
        """Give ``rows`` fresh ann_ids and insert them (inside an open transaction)."""
        if not rows:
            return
        first = self._store.next_id(cur, "next_ann_id", len(rows))
        for i, row in enumerate(rows):
            row["ann_id"] = first + i
            for col in FLAG_COLUMNS:
                row[col] = int(row.get(col) or 0)
        db.insert(
            cur,
            "annotations",
            ANNOTATION_COLUMNS,
            [tuple(r.get(c) for c in ANNOTATION_COLUMNS) for r in rows],
        )

    def _insert_annotations(self, rows: list[dict], *, human_labels: bool = True) -> list[int]:
        with self._write() as cur:
            self._write_annotation_rows(cur, rows)
            labeled = sorted(
                {
                    r["sample_id"]
                    for r in rows
                    if r.get("origin") == "human"
                    and self._samples.get(r["sample_id"])["status"] == "unlabeled"
                }
            )
            if human_labels:
                cur.executemany(
                    "UPDATE samples SET status='labeled' WHERE sample_id=?", [(i,) for i in labeled]
                )
        self._annotations.add(rows)
        if human_labels:
            self._samples.update_many(labeled, {"status": "labeled"})
        return [r["ann_id"] for r in rows]

    _annotation_row = staticmethod(rules.annotation_row)

    def _score_and_origin(self, score, origin, hard_type) -> float | None:
        score = rules.check_score(score, "a confidence")
        rules.check_origin(origin, hard_type)
        return score

    def add_box(
        self,
        sample_id: int,
        label: str,
        x0: float,
        y0: float,
        x1: float,
        y1: float,
        *,
        score: float | None = None,
        origin: str = "human",
        text: str | None = None,
        angle: float | None = None,
        hard_type: str = "none",
        difficult: bool = False,
        truncated: bool = False,
        occluded: bool = False,
    ) -> int:
        """Add a box in pixels (``x1 > x0``, ``y1 > y0``, inside the image); returns its ann_id.

        A human box on an ``unlabeled`` sample makes it ``labeled``. ``text`` carries OCR text.
        ``angle``: a rotated box, the rectangle ``x0..y1`` turned by ``angle`` degrees about its
        centre, clockwise on screen; its centre must be inside the image (see
        `hardex_nb.geometry`: it trains as its enclosing box).
        ``difficult`` (VOC's flag): evaluation neither misses it nor counts a detection on it;
        ``truncated`` and ``occluded`` (VOC's too) are kept and exported.
        """
        self.refresh()
        self._require_detection("add_box")
        (sid,) = self.require_samples(sample_id)
        self.require_label(label)
        if angle is not None:
            angle = rules.finite("angle", angle)
        box = self._box_on(sid, x0, y0, x1, y1, angle)
        score = self._score_and_origin(score, origin, hard_type)
        row = self._annotation_row(
            sid,
            "text" if text is not None else "box",
            label,
            box,
            angle=angle,
            text=text,
            score=score,
            origin=origin,
            hard_type=hard_type,
            difficult=_flag("difficult", difficult),
            truncated=_flag("truncated", truncated),
            occluded=_flag("occluded", occluded),
        )
        return self._insert_annotations([row])[0]

    def add_polygon(
        self,
        sample_id: int,
        label: str,
        points,
        *,
        score: float | None = None,
        origin: str = "human",
        hard_type: str = "none",
        difficult: bool = False,
        truncated: bool = False,
        occluded: bool = False,
    ) -> int:
        """Add a polygon ``points`` of shape ``(N, 2)`` in pixels; its bounding box is stored
        too. The flags are `add_box`'s.
        """
        self.refresh()
        self._require_detection("add_polygon")
        (sid,) = self.require_samples(sample_id)
        self.require_label(label)
        pts = self._polygon_on(sid, points)
        score = self._score_and_origin(score, origin, hard_type)
        row = self._annotation_row(
            sid,
            "polygon",
            label,
            rules.bounds(pts),
            points=pts,
            score=score,
            origin=origin,
            hard_type=hard_type,
            difficult=_flag("difficult", difficult),
            truncated=_flag("truncated", truncated),
            occluded=_flag("occluded", occluded),
        )
        return self._insert_annotations([row])[0]

    def add_ignore_region(self, sample_id: int, x0: float, y0: float, x1: float, y1: float) -> int:
        """Mask a region: training takes neither positives nor negatives inside it."""
        self.refresh()
        self._require_detection("add_ignore_region")
        (sid,) = self.require_samples(sample_id)
        box = self._box_on(sid, x0, y0, x1, y1)
        return self._insert_annotations(
            [self._annotation_row(sid, "ignore", None, box)], human_labels=False
        )[0]

    def add_ignore_polygon(self, sample_id: int, points) -> int:
        """Mask a polygon ``(N, 2)`` (or several rings): the region its bounding box covers is
        left out of training, as for `add_ignore_region`; the outline is kept for
        display and export.
        """
        self.refresh()
        self._require_detection("add_ignore_polygon")
        (sid,) = self.require_samples(sample_id)
        pts = self._polygon_on(sid, points)
        row = self._annotation_row(sid, "ignore", None, rules.bounds(pts), points=pts)
        return self._insert_annotations([row], human_labels=False)[0]

    def update_annotation(self, ann_id: int, **fields: Any) -> None:
        """Change fields of one annotation (label, x0..y1, points, angle, text, score, origin,
        hard_type); the result is validated as a whole. Giving a box a text makes it kind
        ``text`` (as ``add_box(text=...)`` and the imports do); clearing it, ``box`` again.
        """
        self.refresh()
        unknown = set(fields) - EDITABLE_ANNOTATION_FIELDS
        if unknown:
            raise ValidationError(
                f"update_annotation: unknown field(s) {sorted(unknown)}; "
                f"editable: {sorted(EDITABLE_ANNOTATION_FIELDS)}."
            )
        ann_id = int(ann_id)
        if ann_id not in self._annotations:
            raise ValidationError(f"unknown annotation id {ann_id}; see ds.annotations.ann_id.")
        row = self._annotations.get(ann_id)
        new = {**row, **fields}
        sid = int(row["sample_id"])
        if "label" in fields and new["kind"] != "ignore":
            self.require_label(new["label"])
        if "points" in fields:
            pts = self._polygon_on(sid, fields["points"])
            new["points"] = json.dumps(pts)
            new["x0"], new["y0"], new["x1"], new["y1"] = rules.bounds(pts)
        if new.get("angle") is not None and new["angle"] == new["angle"]:
            if new["kind"] not in ("box", "text"):
                raise ValidationError(
                    f"angle: annotation {ann_id} is a {new['kind']}; only a box turns."
                )
            new["angle"] = rules.finite("angle", new["angle"])
        else:
            new["angle"] = None
        new["x0"], new["y0"], new["x1"], new["y1"] = self._box_on(
            sid, new["x0"], new["y0"], new["x1"], new["y1"], new["angle"]
        )
        new["score"] = self._score_and_origin(new["score"], new["origin"], new["hard_type"])
        for col in FLAG_COLUMNS:
            new[col] = int(_flag(col, new.get(col) or False))
        changed = {c: new[c] for c in EDITABLE_ANNOTATION_FIELDS}
        if "text" in fields and row["kind"] in ("box", "text"):
            # one kind for a box that reads something, as add_box and the imports store it
            changed["kind"] = "text" if new["text"] else "box"
        with self._write() as cur:
            if not db.update(cur, "annotations", changed, "ann_id", [(*changed.values(), ann_id)]):
                raise ValidationError(
                    f"annotation {ann_id} was deleted by another process; nothing was written."
                )
        self._annotations.update(ann_id, changed)

    def delete_annotations(self, ann_ids: int | Iterable[int]) -> None:
        """Delete annotations by id.

        A labeled detection image left without any object goes back to ``unlabeled``: an
        image is a negative (labeled, no objects) only when a person says so, with
        `confirm` on the empty image (or `clear_annotations`'s ``negative``).
        """
        self.refresh()
        ids = _as_ids(ann_ids)
        missing = [i for i in ids if i not in self._annotations]
        if missing:
            raise ValidationError(f"unknown annotation id(s) {missing[:10]}.")
        with self._write() as cur:
            ids = [i for i in ids if i in self._annotations]  # another process may have
            ann = self._annotations.merged()  # deleted some meanwhile
            touched = set(ann.loc[ann["ann_id"].isin(ids), "sample_id"].astype(int))
            db.delete(cur, "annotations", "ann_id", ids)
            emptied = []
            if self.task == "detection":
                for sid in sorted(touched):
                    left = cur.execute(
                        "SELECT COUNT(*) FROM annotations WHERE sample_id=? AND kind != 'ignore'",
                        (sid,),
                    ).fetchone()[0]
                    if not left and self._samples.get(sid)["status"] == "labeled":
                        emptied.append(sid)
                cur.executemany(
                    "UPDATE samples SET status='unlabeled' WHERE sample_id=?",
                    [(i,) for i in emptied],
                )
        self._annotations.delete(ids)
        self._samples.update_many(emptied, {"status": "unlabeled"})

    def clear_annotations(self, sample_id: int, *, negative: bool = False) -> list[int]:
        """Delete every annotation of one image (boxes, polygons, ignore regions); returns
        their ids. ``negative=True`` keeps it labeled as an image with no object in it;
        otherwise it goes back to ``unlabeled``.
        """
        self.refresh()
        (sid,) = self.require_samples(sample_id)
        ann = self._annotations.merged()
        ids = ann.loc[ann["sample_id"] == sid, "ann_id"].astype(int).tolist()
        if ids:
            self.delete_annotations(ids)
        self.set_status(sid, "labeled" if _flag("negative", negative) else "unlabeled")
        return ids

    # -- queries ------------------------------------------------------------------------
    def query(
        self,
        *,
        name: str | None = None,
        label: str | None = None,
        status: str | Sequence[str] | None = None,
        added_after: Any = None,
        added_before: Any = None,
        min_width: int | None = None,
        min_height: int | None = None,
        max_width: int | None = None,
        max_height: int | None = None,
        hard: bool | None = None,
        split: str | None = None,
        sort_by: str | None = None,
        ascending: bool = True,
    ) -> pd.DataFrame:
        """Samples matching every given filter (the gallery's filters).

        ``name`` matches a substring, case-insensitive; ``label`` matches a classification
        label or any annotation label; ``status`` one status or a list; sizes and times are
        inclusive ranges (a time without a zone is UTC). A range that no value can fall in
        (min above max, after later than before, a negative size) is refused.
        """
        self.refresh()
        frame = self._query_frame(
            name=name,
            label=label,
            status=status,
            added_after=added_after,
            added_before=added_before,
            min_width=min_width,
            min_height=min_height,
            max_width=max_width,
            max_height=max_height,
            hard=hard,
            split=split,
        )
        return self._public_samples(_sorted(frame, sort_by, ascending))

    def query_ids(
        self, *, sort_by: str | None = None, ascending: bool = True, **filters: Any
    ) -> pd.Index:
        """The sample ids `query` would return (same filters and order, validated the
        same way), without building the frame: for widgets that show a page of them
        (`samples_at`).
        """
        self.refresh()
        full = dict.fromkeys(QUERY_FILTERS) | filters
        unknown = set(full) - set(QUERY_FILTERS)
        if unknown:
            raise ValidationError(f"unknown filter(s) {sorted(unknown)}: use {QUERY_FILTERS}.")
        return _sorted(self._query_frame(**full), sort_by, ascending).index

    def samples_at(self, sample_ids: Iterable[int]) -> pd.DataFrame:
        """The rows of ``sample_ids`` in that order, as `samples` gives them (a copy)."""
        ids = self.require_samples(sample_ids)
        return self._public_samples(self._samples.merged().loc[ids])

    def _query_frame(self, **filters) -> pd.DataFrame:
        frame = self._samples.merged()
        mask = np.ones(len(frame), dtype=bool)
        name, label, status = filters["name"], filters["label"], filters["status"]
        if name is not None and not isinstance(name, str):
            raise ValidationError(f"name={name!r}: give text to look for in file names.")
        if name:
            mask &= frame["name"].str.contains(name, case=False, regex=False).to_numpy()
        if label is not None:
            self.require_label(label)
            ann = self._annotations.merged()
            with_label = ann.loc[ann["label"] == label, "sample_id"].unique()
            mask &= ((frame["label"] == label) | frame["sample_id"].isin(with_label)).to_numpy()
        if status is not None:
            wanted = [status] if isinstance(status, str) else list(status)
            bad = [s for s in wanted if s not in STATUSES]
            if bad:
                raise ValidationError(f"status {bad}: use one of {list(STATUSES)}.")
            mask &= frame["status"].isin(wanted).to_numpy()
        added = frame["added_at"].to_numpy(dtype="float64")
        after, before = (
            None if filters[k] is None else _timestamp(filters[k], k)
            for k in ("added_after", "added_before")
        )
        if after is not None and before is not None and after > before:
            raise ValidationError(
                f"added_after={filters['added_after']!r} is later than "
                f"added_before={filters['added_before']!r}: no image can match; swap them."
            )
        if after is not None:
            mask &= added >= after
        if before is not None:
            mask &= added <= before
        for col in ("width", "height"):
            low, high = (
                None if filters[k] is None else _whole(k, filters[k])
                for k in (f"min_{col}", f"max_{col}")
            )
            for key, value in ((f"min_{col}", low), (f"max_{col}", high)):
                if value is not None and value < 0:
                    raise ValidationError(f"{key}={value}: a size is 0 or more pixels.")
            if low is not None and high is not None and low > high:
                raise ValidationError(
                    f"min_{col}={low} is more than max_{col}={high}: no image can match; swap them."
                )
            sizes = frame[col].to_numpy(dtype="int64")
            if low is not None:
                mask &= sizes >= low
            if high is not None:
                mask &= sizes <= high
        if filters["hard"] is not None:
            mask &= frame["hard"].to_numpy().astype(bool) == _flag("hard", filters["hard"])
        if filters["split"] is not None:
            mask &= (frame["split"] == filters["split"]).to_numpy()
        return frame[mask]

    # -- runs and predictions (written by jobs) -----------------------------------------

    def annotate_from_predictions(self, version: str, *, threshold: float = 0.5) -> dict:
        """Turn a run's stored test predictions (``hx.train(..., test=True)``) into
        annotations to review: predictions scoring at least ``threshold`` become boxes with
        ``origin`` = the run (detection) or the sample's label (classification), and the
        images go to ``to_confirm``. Only ``unlabeled`` images are written (checked inside
        the write): labeled ones, and ones already awaiting review, are skipped. Returns
        ``{"written": [...], "skipped": [...], "annotations": [...]}``.
        """
        threshold = rules.check_score(threshold, "a threshold") or 0.0
        pred = self.predictions(version)
        if pred.empty:
            raise ValidationError(
                f"run {version} stored no test predictions; train with "
                "hx.train(ds, test=True) and put images in the test split."
            )
        pred = pred[pred["sample_id"].isin(list(self._samples.merged().index))]
        ids = sorted(set(pred["sample_id"].astype(int)))
        kept = pred[pred["score"].astype(float) >= threshold]
        updates = pd.DataFrame({"status": "to_confirm"}, index=pd.Index(ids))
        annotations = None
        if self.task == "classification":
            best = kept.sort_values("score", ascending=False).drop_duplicates("sample_id")
            updates["label"] = best.set_index("sample_id")["label"].reindex(ids).to_numpy()
            updates = updates[updates["label"].notna()]
        else:
            annotations = kept.assign(kind="box", origin=version, hard_type="none")[
                [
                    "sample_id",
                    "kind",
                    "label",
                    "x0",
                    "y0",
                    "x1",
                    "y1",
                    "score",
                    "origin",
                    "hard_type",
                ]
            ]
        skipped: list[int] = []
        _, ann_ids = ingest.insert_rows(
            self,
            annotations=annotations,
            sample_updates=updates,
            only_unlabeled=True,
            skipped=skipped,
            replace="model",
        )
        return {
            "written": [i for i in updates.index.tolist() if i not in set(skipped)],
            "skipped": skipped,
            "annotations": ann_ids,
        }

    def predictions(self, version: str) -> pd.DataFrame:
        """Stored test predictions of a run (``hx.train(..., test=True)``); see ``ds.log``."""
        return self.log.predictions(version)

    # -- job claims ---------------------------------------------------------------------

    def jobs(self) -> pd.DataFrame:
        """The job claims on this dataset (e.g. a running ``auto_label``): columns ``job``,
        ``host``, ``pid``, ``since``, ``alive`` (False: its process is gone on this
        machine; None: on another machine, unknown).
        """
        return self.log.jobs()

    def release_jobs(self, name: str | None = None) -> list[str]:
        """Release job claims left by a process that cannot release them (killed on another
        machine, or a machine that crashed); returns the jobs released.

        Only do this when the job is not running: a claim stops two auto-label jobs from
        writing the same images. Claims of dead processes on this machine are taken over
        without it.
        """
        return self.log.release_jobs(name)

    # -- embeddings (written by jobs) and similarity ----------------------------------------

    def embeddings(self, version: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The image embeddings a run stored while auto-labeling: ``(sample_ids (N,),
        vectors (N, D))``; by default of the latest run that stored any.
        """
        return self.log.embeddings(version)

    def similar_to(
        self,
        sample_id: int,
        k: int = 10,
        *,
        version: str | None = None,
        status: str | Sequence[str] | None = ("unlabeled", "to_confirm"),
    ) -> pd.DataFrame:
        """The ``k`` samples most like ``sample_id`` (cosine distance between the image
        embeddings a run stored during auto-labeling), by default among images not yet
        labeled: to supplement the dataset with images like a hard one.

        Adds a ``distance`` column (0 = same direction).
        """
        self.refresh()
        (sid,) = self.require_samples(sample_id)
        ids, vectors = self.embeddings(version)
        vectors = vectors.astype(np.float64)
        where = np.flatnonzero(ids == sid)
        if not len(where):
            raise ValidationError(f"sample {sid} has no stored embedding; auto-label it first.")
        norm = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        dist = 1.0 - norm @ norm[where[0]]
        frame = self._samples.merged()
        candidates = pd.Series(dist, index=ids).drop(index=sid, errors="ignore")
        candidates = candidates[candidates.index.isin(frame.index)]
        if status is not None:
            wanted = [status] if isinstance(status, str) else list(status)
            ok = frame.loc[candidates.index, "status"].isin(wanted).to_numpy()
            candidates = candidates[ok]
        top = candidates.nsmallest(k)
        out = self._public_samples(frame.loc[top.index])
        out["distance"] = top.to_numpy()
        return out

    # -- interchange: one pair of entry points, thin per-format methods ---------------------
    def import_annotations(
        self,
        fmt: str,
        source: str | Path,
        *,
        unknown_labels: str = "add",
        outside: str = "clip",
        mode: str = "merge",
    ) -> AnnotationImport:
        """Import annotation files of ``fmt`` (a name in ``formats.FORMATS``: labelme, voc,
        yolo, coco, manifest) from a folder, a file or a .zip, matching images by file name
        or stem (add the images first, or build the dataset with `from_files`).

        All or nothing: a FormatError lists every bad file with line/field and reason, and
        the dataset is unchanged. ``unknown_labels``: 'add' (default) or 'error';
        ``outside``: 'clip' (default; listed in ``result.clipped``) or 'error' for boxes
        reaching outside their image. ``mode``: ``"merge"`` (default; safe to run twice:
        objects an image already holds are counted in ``result.already``, not added again),
        ``"replace"`` (each matched image's annotations become the file's) or ``"add"``
        (every object added, duplicates too). Returns an AnnotationImport.
        """
        self.refresh()
        records, problems, skipped = formats.read_annotations(fmt, source)
        return ingest.apply_import(
            self,
            records,
            fmt=fmt,
            unknown_labels=unknown_labels,
            outside=outside,
            problems=problems,
            skipped=skipped,
            mode=mode,
        )

    def export_annotations(
        self,
        fmt: str,
        out: str | Path,
        *,
        images: bool = True,
        status: Sequence[str] | None = ("labeled", "to_confirm"),
        overwrite: bool = False,
        **options: Any,
    ) -> list[Path]:
        """Write the samples with ``status`` as ``fmt`` files under the folder ``out`` (with
        copies of the images unless ``images=False``); returns the annotation files written.
        ``out`` must be new or empty; ``overwrite=True`` replaces it whole. Samples sharing
        a file stem are written as ``<stem>_<sample_id><suffix>``.
        """
        return formats.export_annotations(
            self, fmt, out, images=images, status=status, overwrite=overwrite, **options
        )

    def import_labelme(self, source: str | Path, **options: Any) -> AnnotationImport:
        """labelme / X-AnyLabeling JSON (see `import_annotations`)."""
        return self.import_annotations("labelme", source, **options)

    def import_voc(self, source: str | Path, **options: Any) -> AnnotationImport:
        """PASCAL VOC XML as LabelImg and ModelArts write it (see `import_annotations`)."""
        return self.import_annotations("voc", source, **options)

    def import_yolo(self, source: str | Path, **options: Any) -> AnnotationImport:
        """YOLO txt with data.yaml or classes.txt (see `import_annotations`)."""
        return self.import_annotations("yolo", source, **options)

    def import_coco(self, source: str | Path, **options: Any) -> AnnotationImport:
        """COCO JSON (see `import_annotations`)."""
        return self.import_annotations("coco", source, **options)

    def import_manifest(self, source: str | Path, **options: Any) -> AnnotationImport:
        """A ModelArts manifest (see `import_annotations`)."""
        return self.import_annotations("manifest", source, **options)

    def import_dota(self, source: str | Path, **options: Any) -> AnnotationImport:
        """DOTA txt, four corners per object: rotated boxes (see `import_annotations`)."""
        return self.import_annotations("dota", source, **options)

    def export_dota(self, out: str | Path, **options: Any) -> list[Path]:
        """DOTA: labelTxt/ with each box's corners, images/ (see `export_annotations`)."""
        return self.export_annotations("dota", out, **options)

    def export_labelme(self, out: str | Path, **options: Any) -> list[Path]:
        """labelme JSON beside the images (see `export_annotations`)."""
        return self.export_annotations("labelme", out, **options)

    def export_voc(self, out: str | Path, **options: Any) -> list[Path]:
        """PASCAL VOC XML (see `export_annotations`)."""
        return self.export_annotations("voc", out, **options)

    def export_yolo(self, out: str | Path, **options: Any) -> list[Path]:
        """YOLO: classes.txt, labels/, images/ (see `export_annotations`)."""
        return self.export_annotations("yolo", out, **options)

    def export_coco(self, out: str | Path, **options: Any) -> list[Path]:
        """COCO: annotations.json and images/ (see `export_annotations`)."""
        return self.export_annotations("coco", out, **options)

    def export_manifest(self, out: str | Path, **options: Any) -> list[Path]:
        """A ModelArts manifest with VOC XML for detection (see `export_annotations`)."""
        return self.export_annotations("manifest", out, **options)

    # -- bulk writes (imports, tiling, benchmarks) --------------------------------------


def _conflict_message(exc: sqlite3.IntegrityError) -> str:
    text = str(exc)
    if LABEL_MISSING in text:
        return (
            "a label this edit names is not in the label set (another process deleted it "
            "meanwhile); nothing was written. See ds.label_names, add it back with "
            "ds.add_label, and try again."
        )
    if LABEL_IN_USE in text:
        return (
            "the label is still used by samples or annotations another process wrote "
            "meanwhile; nothing was written. Try again."
        )
    if "FOREIGN KEY" in text:
        return (
            "a sample this edit names was deleted by another process meanwhile; nothing was "
            "written."
        )
    return f"the store refused the edit ({text}); nothing was written."
