"""Ingest: how files and parsed records land in a Dataset (gather, check, copy, insert).

Shared by ``Dataset.add_images``, the annotation imports (``apply_import``: the records
``formats`` parsed, validated against the dataset and written in one transaction), batch
collection (``hx.collect``) and tiling (``tile``). One of the dataset's own modules, beside
``dataset.py`` and ``runlog.py``: it may use the Dataset's internals, nothing outside them
may.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import socket
import sqlite3
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from . import annotation_rules as rules
from . import media, runlog, tiling
from . import store as db
from .annotation_rules import storable
from .errors import FormatError, ImageError, StoreError, ValidationError
from .formats.archive import safe_extract
from .formats.common import (
    AnnotationImport,
    ImageLabels,
    Shape,
    short,
)
from .geometry import polygon_parts
from .media import ImageInfo, load_rgb
from .store import ANNOTATION_COLUMNS, FLAG_COLUMNS, SAMPLE_COLUMNS

if TYPE_CHECKING:
    from .dataset import Dataset, ImportReport

SIDECAR_EXTENSIONS = {".json", ".xml", ".txt", ".yaml", ".yml", ".manifest", ".csv", ".md"}
INCOMING = ".incoming"  # media/.incoming/<host>.<pid>/: copies not yet committed
MAX_NAME_BYTES = 255


def fit_name(name: str, room: int = MAX_NAME_BYTES) -> str:
    """``name`` shortened (stem first, suffix kept) to ``room`` bytes of UTF-8."""
    suffix = Path(name).suffix if len(Path(name).suffix.encode()) < 32 else ""
    stem = name[: len(name) - len(suffix)] if suffix else name
    room -= len(suffix.encode())
    while len(stem.encode()) > room:
        stem = stem[:-1]
    return stem + suffix


def media_name(sample_id: int, name: str) -> str:
    """``<id>_<name>`` shortened (stem first, suffix kept) to the file system's 255 bytes."""
    head = f"{sample_id:07d}_"
    return head + fit_name(name, MAX_NAME_BYTES - len(head.encode()))


def remove_empty(folder: Path) -> None:
    with contextlib.suppress(OSError):
        folder.rmdir()


def changed_since_read(
    cur, updates: pd.DataFrame, annotations: pd.DataFrame, new_labels: Sequence[str]
) -> list[int]:
    """Ids of ``updates`` whose sample is gone or no longer ``unlabeled``, or whose results
    name a label that no longer exists (read inside the caller's write transaction).
    """
    ids = [int(i) for i in updates.index]
    still: set[int] = set()
    for start in range(0, len(ids), 900):
        part = ids[start : start + 900]
        rows = cur.execute(
            f"SELECT sample_id FROM samples WHERE status='unlabeled' AND sample_id "
            f"IN ({', '.join('?' * len(part))})",
            part,
        ).fetchall()
        still.update(r[0] for r in rows)
    names = stored_labels(cur, new_labels)
    gone = {int(i) for i in updates.index[missing_labels(updates, names).to_numpy()]}
    gone.update(int(i) for i in annotations.loc[missing_labels(annotations, names), "sample_id"])
    return [i for i in ids if i not in still or i in gone]


def require_stored_labels(
    cur,
    samples: pd.DataFrame,
    annotations: pd.DataFrame,
    updates: pd.DataFrame | None,
    new_labels: Sequence[str],
) -> None:
    """Refuse (rolling the transaction back) rows naming a label that is not stored: another
    process deleted it after this call read the label set.
    """
    names = stored_labels(cur, new_labels)
    gone = sorted(
        {
            str(v)
            for frame in (samples, annotations, updates)
            if frame is not None and "label" in frame.columns
            for v in frame["label"][missing_labels(frame, names)]
        }
    )
    if gone:
        raise ValidationError(
            f"label(s) {gone} were deleted by another process while this "
            "ran; nothing was written. Add them back with ds.add_label or "
            "run it again."
        )


def stored_labels(cur, new_labels: Sequence[str]) -> set[str]:
    """The label names in the store (read inside the caller's transaction) and ``new_labels``."""
    return {r[0] for r in cur.execute("SELECT name FROM labels")} | set(new_labels)


def missing_labels(frame: pd.DataFrame | None, names: set[str]) -> pd.Series:
    """Per row of ``frame``: whether it names a label outside ``names`` (empty: none)."""
    if frame is None or not len(frame) or "label" not in frame.columns:
        return pd.Series(False, index=frame.index if frame is not None else None, dtype=bool)
    labels = frame["label"]
    return labels.notna() & ~labels.isin(names)


def printable(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode("ascii", "backslashreplace")


def check_files(
    files: list[Path], report: ImportReport, *, for_tiling: bool = False
) -> list[media.ImageInfo]:
    """The files that pass the image checks; side files go to ``report.skipped`` and
    bad images to ``report.rejected`` with their reason.
    """
    checked: list[media.ImageInfo] = []
    for f in files:
        if not storable(f.name):
            report.rejected.append(
                (printable(f.name), "the file name is not valid UTF-8; rename the file")
            )
            continue
        if f.suffix.lower() in SIDECAR_EXTENSIONS:
            report.skipped.append(f.name)
            continue
        try:
            checked.append(media.check_image(f, for_tiling=for_tiling))
        except ImageError as exc:
            report.rejected.append((f.name, str(exc).split(": ", 1)[-1]))
    return checked


def gather_files(
    source,
    stack: contextlib.ExitStack,
    copy: bool,
    too_large: list[tuple[str, int]] | None = None,
) -> list[Path]:
    if isinstance(source, (str, Path)):
        src = Path(source)
        if not src.exists():
            raise ValidationError(f"{src}: no such file or folder.")
        if src.is_dir():
            return sorted(p for p in src.rglob("*") if p.is_file() and not p.name.startswith("."))
        if src.suffix.lower() == ".zip":
            if not copy:
                raise ValidationError(
                    f"{src.name}: images in a .zip must be copied; use copy=True."
                )
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="hardex-zip-"))
            return sorted(
                safe_extract(src, tmp, max_member_bytes=media.MAX_BYTES, too_large=too_large)
            )
        return [src]
    return [Path(p) for p in source]


def insert_images(
    ds: Dataset,
    infos: list[media.ImageInfo],
    *,
    copy: bool,
    origin: str,
    extra: list[dict] | None = None,
    annotations: list[list[dict]] | None = None,
    duplicates: list[tuple[str, int]] | None = None,
    then: Callable[[sqlite3.Cursor, list[int]], None] | None = None,
) -> list[int]:
    """Add checked images (and, per image, sample fields in ``extra`` and annotation
    rows in ``annotations``) in one transaction.

    Copies go to ``media/.incoming/<host>.<pid>/`` first (outside the write lock) and
    are renamed to their ``media/<id>_<name>`` after the commit: a process killed before
    the commit leaves no file that a sample could be mistaken for, one killed after it
    leaves its copies where `sweep_media` finishes the rename.

    ``duplicates``: when given, an image whose bytes the dataset holds already (or that
    came earlier in ``infos``) is not added but listed there as (name, sample id it
    repeats), with its ``extra`` and ``annotations``.
    """
    infos = [
        i if i.sha256 is not None else dataclasses.replace(i, sha256=media.file_hash(i.path))
        for i in infos
    ]
    repeats: list[tuple[str, int]] = []  # (name, position in infos of its first copy)
    if duplicates is not None and infos:
        held = stored_hashes(ds)
        seen: dict[str, int] = {}
        keep: list[int] = []
        for k, info in enumerate(infos):
            digest = str(info.sha256)
            if digest in held:
                duplicates.append((info.path.name, held[digest]))
            elif digest in seen:
                repeats.append((info.path.name, seen[digest]))
            else:
                seen[digest] = len(keep)
                keep.append(k)
        infos = [infos[k] for k in keep]
        extra = [extra[k] for k in keep] if extra else extra
        annotations = [annotations[k] for k in keep] if annotations else annotations
    if not infos:
        return []
    now = time.time()
    with ds.room.write() as cur:  # ids reserved (committed) first; gaps are harmless
        first = ds.room.store.next_id(cur, "next_sample_id", len(infos))
    ids = list(range(first, first + len(infos)))
    names = [media_name(sid, info.path.name) for sid, info in zip(ids, infos)]
    staging = ds.path / "media" / INCOMING / f"{socket.gethostname()}.{os.getpid()}"
    try:
        if copy:
            staging.mkdir(parents=True, exist_ok=True)
            for info, name in zip(infos, names):
                try:
                    shutil.copyfile(info.path, staging / name)
                except OSError as exc:
                    raise StoreError(
                        f"{info.path}: cannot copy it into {ds.path / 'media'} "
                        f"({exc.strerror or exc}); nothing was added. Free "
                        "some disk space or check permissions."
                    ) from exc
        rows = []
        for i, (sid, info) in enumerate(zip(ids, infos)):
            stored = (Path("media") / names[i]).as_posix() if copy else str(info.path.resolve())
            row = dict(
                sample_id=sid,
                path=stored,
                name=info.path.name,
                width=info.width,
                height=info.height,
                status="unlabeled",
                label=None,
                hard=0,
                hard_score=None,
                hard_reasons="",
                added_at=now,
                source=origin,
                split="train",
                parent_id=None,
                tile_row=None,
                tile_col=None,
                sha256=info.sha256,
            )
            if extra:
                row.update(extra[i])
            rows.append(row)
        ann_rows = []
        for row, objs in zip(rows, annotations or []):
            for obj in objs:  # rows made by rules.annotation_row, for the new sample
                ann_rows.append(
                    {c: obj.get(c) for c in ANNOTATION_COLUMNS} | {"sample_id": row["sample_id"]}
                )
        with ds.room.write() as cur:
            db.insert(
                cur,
                "samples",
                SAMPLE_COLUMNS,
                [tuple(r[c] for c in SAMPLE_COLUMNS) for r in rows],
            )
            ds.room.write_annotation_rows(cur, ann_rows)
            if then is not None:  # a job's record, in the same transaction
                then(cur, ids)
    except BaseException:
        for name in names if copy else ():
            (staging / name).unlink(missing_ok=True)
        remove_empty(staging)
        remove_empty(staging.parent)
        raise
    if copy:
        for name in names:
            (staging / name).replace(ds.path / "media" / name)
        remove_empty(staging)
        remove_empty(staging.parent)
    ds.room.samples.add(rows)
    ds.room.annotations.add(ann_rows)
    if duplicates is not None:
        duplicates += [(name, ids[pos]) for name, pos in repeats]
    return ids


def stored_hashes(ds: Dataset) -> dict[str, int]:
    """``{sha256: sample id}`` of the dataset's images; samples from before content
    hashes (schema 5 and older) get theirs now, once.
    """
    rows = ds.sample_rows()
    missing = rows.index[rows["sha256"].isna()].tolist()
    if missing:
        found = []
        for sid in missing:
            with contextlib.suppress(OSError):
                found.append((media.file_hash(ds.image_path(int(sid))), int(sid)))
        with ds.room.write() as cur:
            cur.executemany("UPDATE samples SET sha256=? WHERE sample_id=?", found)
        for digest, sid in found:
            ds.room.samples.update(sid, {"sha256": digest})
        rows = ds.sample_rows()
    known = rows["sha256"].dropna()
    return {str(h): int(i) for i, h in zip(known.index, known)}


def insert_rows(
    ds: Dataset,
    samples: pd.DataFrame | None = None,
    annotations: pd.DataFrame | None = None,
    sample_updates: pd.DataFrame | None = None,
    new_labels: Sequence[str] = (),
    *,
    only_unlabeled: bool = False,
    skipped: list[int] | None = None,
    embeddings: tuple[str, Sequence[int], np.ndarray] | None = None,
    replace: str | None = None,
    then: Callable[[sqlite3.Cursor, list[int]], None] | None = None,
) -> tuple[list[int], list[int]]:
    """Write many rows in one transaction: all of it lands or none of it does.

    ``samples`` rows get fresh ``sample_id`` s; annotation rows whose ``sample_id`` is
    negative refer to the new sample at position ``-sample_id - 1`` of ``samples``.
    ``sample_updates`` (indexed by sample_id) sets columns of existing samples.
    ``only_unlabeled`` (a job's results): inside the transaction, updates and annotations
    of samples that are no longer ``unlabeled`` (a person labeled, confirmed or deleted
    them while the job ran) or that name a label deleted meanwhile are dropped, and their
    ids appended to ``skipped``: human edits win. ``embeddings`` (run version, sample ids,
    ``(N, D)`` vectors) are stored in the same transaction. ``replace``: before the new
    annotations land, the existing ones of every updated or annotated sample are deleted:
    ``"model"`` those a model made (origin other than ``human``: a job's second run
    replaces its first, a person's boxes stay), ``"all"`` every one (an import's
    ``mode="replace"``).
    ``then(cur, ann_ids)`` runs inside the transaction after the writes (a job records
    its result there: the record and its fields land together).
    Returns the new sample ids and annotation ids.
    """
    samples = samples if samples is not None else pd.DataFrame(columns=SAMPLE_COLUMNS)
    annotations = (
        annotations if annotations is not None else pd.DataFrame(columns=ANNOTATION_COLUMNS)
    )
    with ds.room.write() as cur:
        if only_unlabeled and sample_updates is not None and len(sample_updates):
            lost = changed_since_read(cur, sample_updates, annotations, new_labels)
            if lost:
                sample_updates = sample_updates.drop(index=lost)
                annotations = annotations[~annotations["sample_id"].isin(lost)]
                if skipped is not None:
                    skipped.extend(lost)
        require_stored_labels(cur, samples, annotations, sample_updates, new_labels)
        dropped = _drop_annotations(cur, annotations, sample_updates, replace) if replace else []
        cur.executemany(
            "INSERT INTO labels VALUES (?, ?)",
            [(n, len(ds.room.labels) + i) for i, n in enumerate(new_labels)],
        )
        first_s = ds.room.store.next_id(cur, "next_sample_id", len(samples))
        samples = samples.reindex(columns=SAMPLE_COLUMNS).copy()
        samples["sample_id"] = np.arange(first_s, first_s + len(samples), dtype="int64")
        first_a = ds.room.store.next_id(cur, "next_ann_id", len(annotations))
        annotations = annotations.reindex(columns=ANNOTATION_COLUMNS).copy()
        for col in FLAG_COLUMNS:
            annotations[col] = annotations[col].fillna(0).astype("int64")
        annotations["ann_id"] = np.arange(first_a, first_a + len(annotations), dtype="int64")
        sid = annotations["sample_id"].to_numpy(dtype="int64", copy=True)
        new_ref = sid < 0
        sid[new_ref] = samples["sample_id"].to_numpy()[-sid[new_ref] - 1]
        annotations["sample_id"] = sid
        for table, frame, cols in (
            ("samples", samples, SAMPLE_COLUMNS),
            ("annotations", annotations, ANNOTATION_COLUMNS),
        ):
            db.insert(cur, table, cols, db.sql_rows(frame[cols]))
        if sample_updates is not None and len(sample_updates):
            cols = list(sample_updates.columns)
            db.update(
                cur,
                "samples",
                cols,
                "sample_id",
                db.sql_rows(sample_updates.assign(_id=sample_updates.index)[cols + ["_id"]]),
            )
        if embeddings is not None:
            runlog.write_embeddings(cur, *embeddings)
        if then is not None:  # a job's record of what it wrote, in the same transaction
            then(cur, annotations["ann_id"].tolist())
    ds.room.labels.extend(new_labels)
    ds.room.annotations.delete(dropped)
    ds.room.samples.add_frame(samples)
    ds.room.annotations.add_frame(annotations)
    if sample_updates is not None:
        for col in sample_updates.columns:
            frame = ds.sample_rows()
            frame.loc[sample_updates.index, col] = sample_updates[col].to_numpy()
    return samples["sample_id"].tolist(), annotations["ann_id"].tolist()


def _drop_annotations(
    cur, annotations: pd.DataFrame, updates: pd.DataFrame | None, replace: str
) -> list[int]:
    """Delete (inside the caller's transaction) the annotations that new rows replace: of
    every existing sample that ``annotations`` or ``updates`` name, a model's (``"model"``)
    or all (``"all"``). Returns the ann_ids deleted.
    """
    if replace not in ("model", "all"):
        raise ValueError(f"replace={replace!r}: use 'model' or 'all'.")
    sids = {int(i) for i in annotations["sample_id"] if int(i) >= 0}
    if updates is not None:
        sids.update(int(i) for i in updates.index)
    which = "" if replace == "all" else " AND COALESCE(origin, 'human') != 'human'"
    ids = sorted(sids)
    gone: list[int] = []
    for start in range(0, len(ids), 900):
        part = ids[start : start + 900]
        marks = ", ".join("?" * len(part))
        gone += [
            r[0]
            for r in cur.execute(
                f"SELECT ann_id FROM annotations WHERE sample_id IN ({marks}){which}", part
            )
        ]
        cur.execute(f"DELETE FROM annotations WHERE sample_id IN ({marks}){which}", part)
    return gone


# -- annotation imports: parsed records into the dataset ---------------------------------
def apply_import(
    ds,
    images: list[ImageLabels],
    *,
    fmt: str,
    unknown_labels: str = "add",
    outside: str = "clip",
    problems: list[str] | None = None,
    skipped: list[str] | None = None,
    bound: list[int | None] | None = None,
    mode: str = "merge",
) -> AnnotationImport:
    """Validate parsed records against ``ds`` and write them in one transaction.

    Parameters
    ----------
    unknown_labels : {"add", "error"}
        Labels not in the dataset's label set are appended to it, or refused.
    outside : {"clip", "error"}
        A box reaching outside its image is clipped to the image (and listed in
        ``result.clipped``), or refused. A box with no area left inside is always refused.
    bound : list, optional
        The sample id of each record (instead of matching by file name).
    mode : {"merge", "replace", "add"}
        What a file's objects do to a matched image's annotations. ``"merge"`` (default:
        safe to run twice) adds those the image does not hold yet: an object equal to a
        stored one (kind, label, coordinates, angle, points, text) is counted in
        ``result.already`` and not added again. ``"replace"``: the image's annotations
        become the file's. ``"add"``: every object is added, duplicates included.
    """
    if mode not in IMPORT_MODES:
        raise ValueError(f"mode={mode!r}: use one of {list(IMPORT_MODES)}.")
    if unknown_labels not in ("add", "error"):
        raise ValueError(f"unknown_labels={unknown_labels!r}: use 'add' or 'error'.")
    if outside not in ("clip", "error"):
        raise ValueError(f"outside={outside!r}: use 'clip' or 'error'.")
    problems = list(problems or [])
    result = AnnotationImport(skipped=list(skipped or []))
    samples = ds.sample_rows()
    by_name: dict[str, list[int]] = {}
    by_stem: dict[str, list[int]] = {}
    for sid, name in zip(samples["sample_id"].astype(int), samples["name"]):
        by_name.setdefault(name, []).append(sid)
        by_stem.setdefault(Path(name).stem, []).append(sid)
    known = list(ds.room.labels)
    stored: dict[int, set[tuple]] = {}
    if mode == "merge":
        for row in ds.annotation_rows().to_dict("records"):
            stored.setdefault(int(row["sample_id"]), set()).add(_identity(row))
    new_labels: list[str] = []
    rows: list[dict] = []
    updates: dict[int, dict] = {}

    def accept_label(label, where) -> bool:
        if label in known or label in new_labels:
            return True
        try:
            rules.check_label_name(label)
        except ValidationError as exc:
            problems.append(f"{where}: {exc} Fix it in the file.")
            return False
        if unknown_labels == "error":
            problems.append(
                f"{where}: label {label!r} is not in the label set {known}; "
                "add it with ds.add_label or pass unknown_labels='add'"
            )
            return False
        new_labels.append(label)
        return True

    for n, img in enumerate(images):
        base = Path(img.key.replace("\\", "/")).name
        sids: list[int]
        if bound is not None:  # the caller added each record's image itself
            given = bound[n]
            sids = [given] if given is not None else []
        else:
            sids = by_name.get(base) or by_stem.get(Path(base).stem, [])
        for fallback in img.fallback_keys if not sids else ():
            alt = Path(fallback.replace("\\", "/")).name
            sids = by_name.get(alt) or by_stem.get(Path(alt).stem, [])
            if sids:
                result.paired.append(
                    f"{img.where}: names {base!r}, which is not in the dataset; "
                    f"paired with {samples.loc[sids[0], 'name']!r} by {alt!r}"
                )
                break
        if not sids:
            result.unmatched.append(base)
            continue
        if len(sids) > 1:
            problems.append(
                f"{img.where}: image {base!r} matches {len(sids)} samples "
                f"{sids[:5]}; rename the duplicates first"
            )
            continue
        sid = sids[0]
        srow = samples.loc[sid]
        width, height = float(srow["width"]), float(srow["height"])
        if (
            img.width
            and img.height
            and (int(img.width), int(img.height)) != (int(width), int(height))
        ):
            problems.append(
                f"{img.where}: says the image is {img.width}×{img.height} px but "
                f"{base} is {int(width)}×{int(height)} px"
            )
            continue
        update: dict = {}
        tags = img.tags or ([Shape("tag", img.label)] if img.label is not None else [])
        if ds.task == "classification" and len(tags) > 1:
            problems.append(
                f"{img.where}: {len(tags)} labels {[t.label for t in tags]} on one image "
                "(multi-label); this dataset takes one label per image: create it with "
                "task='multilabel' to keep them all, or keep one in the file"
            )
        elif ds.task == "detection" and tags:
            problems.append(
                f"{img.where}: an image-level label needs a classification or multilabel dataset"
            )
        elif ds.task == "classification" and tags and accept_label(tags[0].label, img.where):
            update["label"] = tags[0].label
        origins = []
        held = stored.get(sid, set()) if mode == "merge" else set()
        objects = tags if ds.task == "multilabel" else []
        for shape in [*objects, *img.shapes]:
            row = (
                _tag_row(sid, shape, img.where, problems, accept_label)
                if shape.kind == "tag"
                else _shape_row(
                    ds, sid, shape, img, width, height, outside, problems, result, accept_label
                )
            )
            if row is None:
                continue
            origins.append(row["origin"])
            if mode == "merge":
                if _identity(row) in held:
                    result.already += 1
                    continue
                held.add(_identity(row))  # the same object twice in one file is one object
            rows.append(row)
        if update.get("label") is not None or origins:
            update["status"] = "labeled" if ("human" in origins or not origins) else "to_confirm"
        elif img.negative and ds.task == "detection":
            update["status"] = "labeled"  # listed with no objects: a labeled negative
        if img.hard is not None:
            update.update(
                hard=int(bool(img.hard)),
                hard_reasons=img.hard_reasons or "",
                hard_score=img.hard_score,
            )
        if img.split is not None:
            update["split"] = img.split
        if update:
            updates[sid] = update
        result.matched.append(sid)
    if problems:
        raise FormatError(f"{fmt} import refused; the dataset is unchanged", problems)
    ann = pd.DataFrame.from_records(rows) if rows else None
    upd = None
    if updates:
        upd = pd.DataFrame.from_dict(updates, orient="index")
        upd = upd.astype(object).where(upd.notna(), None)
        for col in upd.columns:  # rows missing a column keep their stored value
            missing = [sid for sid, u in updates.items() if col not in u]
            if missing:
                upd.loc[missing, col] = samples.loc[missing, col].to_numpy()
    _, result.annotations = insert_rows(
        ds,
        annotations=ann,
        sample_updates=upd,
        new_labels=new_labels,
        replace="all" if mode == "replace" else None,
    )
    result.added_labels = new_labels
    return result


IMPORT_MODES = ("merge", "replace", "add")


def _identity(row: dict) -> tuple:
    """What makes two annotations the same object: kind, label, coordinates (to 1e-6 px),
    angle, points and text (a score, origin or flag may differ: the object does not).
    """

    def num(v):
        return None if v is None or v != v else round(float(v), 6)

    points = row.get("points")
    if isinstance(points, str):
        points = json.loads(points) if points else None
    if isinstance(points, (list, tuple)):
        points = repr([np.round(part, 6).tolist() for part in polygon_parts(points)])
    elif points is not None:
        points = None  # NaN from a frame: no points
    text = row.get("text")
    return (
        row.get("kind"),
        row.get("label") if isinstance(row.get("label"), str) else None,
        *(num(row.get(c)) for c in ("x0", "y0", "x1", "y1")),
        num(row.get("angle")) or None,
        points,
        text if isinstance(text, str) else None,
    )


def _tag_row(sid, tag: Shape, where: str, problems, accept_label) -> dict | None:
    """The stored row of one of a multi-label image's labels (kind ``tag``, no geometry)."""
    where = tag.where or where
    if not accept_label(tag.label, where):
        return None
    try:
        rules.check_text("origin", tag.origin)
        score = rules.check_score(tag.score, "a confidence")
    except ValidationError as exc:
        problems.append(f"{where}: {exc}")
        return None
    return rules.annotation_row(sid, "tag", tag.label, None, score=score, origin=tag.origin)


def _shape_row(
    ds, sid, shape: Shape, img: ImageLabels, width, height, outside, problems, result, accept_label
) -> dict | None:
    """The stored row of one object a file gives, checked by the annotation rules (a
    problem is listed with its file and line, and the object left out).
    """
    where = shape.where or img.where
    if ds.task != "detection":
        problems.append(f"{where}: objects need a detection dataset; this one is {ds.task}")
        return None
    if shape.kind != "ignore" and not accept_label(shape.label, where):
        return None
    image = Path(img.key.replace("\\", "/")).name
    rings = None
    try:
        rules.check_text("text", shape.text)
        rules.check_text("origin", shape.origin)
        if shape.points is not None:
            points = shape.points
            if img.normalized:  # 0..1 fractions of the image
                try:
                    points = [(p * [width, height]).tolist() for p in polygon_parts(points)]
                except (TypeError, ValueError, OverflowError):
                    pass  # check_polygon names what is wrong with them
            rings, clipped = rules.check_polygon(
                points, width, height, where=image, outside=outside
            )
            box = rules.bounds(rings)
        else:
            coords: Sequence = shape.box if shape.box is not None else ()
            if img.normalized:
                coords = [float(v) * k for v, k in zip(coords, (width, height, width, height))]
            box, clipped = rules.check_box(
                coords,
                width,
                height,
                angle=shape.angle,
                where=image,
                outside=outside,
                ordered=False,
            )
        score = rules.check_score(shape.score, "a confidence")
    except ValidationError as exc:
        problems.append(f"{where}: {exc}")
        return None
    except (TypeError, ValueError, OverflowError):
        problems.append(f"{where}: coordinates {short(shape.points or shape.box)} are not numbers")
        return None
    if clipped:
        result.clipped.append(where)
    return rules.annotation_row(
        sid,
        shape.kind,
        shape.label,
        box,
        points=rings,
        angle=shape.angle,
        text=shape.text,
        score=score,
        origin=shape.origin,
        hard_type=shape.hard_type,
        difficult=shape.difficult,
        truncated=shape.truncated,
        occluded=shape.occluded,
    )


# -- tiling: tiles of large images as new samples ----------------------------------------
def tile(
    ds: Dataset,
    rows: int,
    cols: int,
    *,
    into: Dataset,
    sample_ids=None,
    min_side: float = 4.0,
    min_share: float = 0.2,
):
    """Cut images of ``ds`` into a rows×cols grid (larger count along the long side) and add
    the tiles to the dataset ``into`` with their boxes; each tile remembers ``parent_id``
    (the source sample id), ``tile_row`` and ``tile_col``. Returns the new sample ids.
    """
    if ds.task != "detection":
        raise ValidationError(
            f"tiling is for detection datasets (small objects in large "
            f"images); this one is {ds.task}."
        )
    if into.task != ds.task:
        raise ValidationError(f"into is {into.task}, the source is {ds.task}.")
    for name in ds.label_names:
        if name not in into.label_names:
            into.add_label(name)
    samples = ds.samples.set_index("sample_id")
    ids = samples.index.tolist() if sample_ids is None else list(sample_ids)
    small = [
        f"{samples.loc[i, 'name']} ({samples.loc[i, 'width']}×{samples.loc[i, 'height']})"
        for i in ids
        if min(samples.loc[i, ["width", "height"]]) < tiling.MIN_SOURCE[0]
        or max(samples.loc[i, ["width", "height"]]) < tiling.MIN_SOURCE[1]
    ]
    if small:
        raise ValidationError(
            f"tiling sources must be at least {tiling.MIN_SOURCE[0]}×{tiling.MIN_SOURCE[1]} "
            f"px; too small: {small[:5]}"
        )
    ann = ds.annotations
    new_ids = []
    with tempfile.TemporaryDirectory(prefix="hardex-tiles-") as tmp:
        infos, extra, anns = [], [], []
        for sid in ids:
            row = samples.loc[sid]
            image = load_rgb(ds.image_path(sid))
            boxes = ann[ann["sample_id"] == sid]
            for r, c, x0, y0, x1, y1 in tiling.tile_windows(
                int(row["width"]), int(row["height"]), rows, cols
            ):
                path = Path(tmp) / f"{Path(row['name']).stem}_r{r}_c{c}.png"
                image.crop((x0, y0, x1, y1)).save(path)
                infos.append(ImageInfo(path=path, width=x1 - x0, height=y1 - y0, format="PNG"))
                inside = tiling.boxes_in_tile(
                    boxes, (r, c, x0, y0, x1, y1), min_side=min_side, min_share=min_share
                )
                extra.append(
                    {
                        "parent_id": int(sid),
                        "tile_row": r,
                        "tile_col": c,
                        "source": "tile",
                        "split": row["split"],
                        "status": "labeled" if len(inside) else row["status"],
                    }
                )
                # a polygon becomes its clipped bounding box in a tile
                anns.append(
                    [
                        rules.annotation_row(
                            int(sid),
                            "box" if a.kind == "polygon" else a.kind,
                            a.label,
                            (a.x0, a.y0, a.x1, a.y1),
                            score=None if pd.isna(a.score) else a.score,
                            origin=a.origin,
                            hard_type=a.hard_type,
                            text=a.text,
                        )
                        for a in inside.itertuples(index=False)
                    ]
                )
        new_ids = insert_images(  # a tile cut before is not added again
            into, infos, copy=True, origin="tile", extra=extra, annotations=anns, duplicates=[]
        )
    return new_ids
