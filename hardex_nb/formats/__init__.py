"""Annotation interchange: labelme, PASCAL VOC (LabelImg), YOLO, COCO, ModelArts manifest,
DOTA (rotated boxes).

Each module has ``read(folder, problems, skipped) -> list[ImageLabels]`` and
``write(ds, frames, out, *, images=True)``: plain records in, files out, and back; the
Dataset applies the records (``hardex_nb.ingest.apply_import``).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from ..errors import FormatError
from ..media import EXTENSIONS
from . import coco, dota, labelme, manifest, voc, yolo
from .common import (
    ImageLabels,
    export_frames,
    label_problem,
    opened_source,
)

# the one list of formats: adding a format is one module here and one entry below
FORMATS = {
    "labelme": labelme,
    "voc": voc,
    "yolo": yolo,
    "coco": coco,
    "manifest": manifest,
    "dota": dota,
}


def read_annotations(
    fmt: str, source: str | Path
) -> tuple[list[ImageLabels], list[str], list[str]]:
    """Parse every file of ``fmt`` under ``source`` (a folder, a file or a .zip): the
    records, the problems found (file, line or field, and what is wrong) and the shapes
    skipped. Nothing is written; ``Dataset.import_annotations`` applies the records."""
    problems: list[str] = []
    skipped: list[str] = []
    with opened_source(source) as folder:
        parsed = read_records(
            fmt, folder, problems, skipped, archived=Path(source).suffix.lower() == ".zip"
        )
    if not parsed and not problems:
        raise FormatError(f"{Path(source).name}: no {fmt} files found there.")
    return parsed, problems, skipped


def read_records(
    fmt: str, folder: Path, problems: list[str], skipped: list[str], *, archived: bool = False
) -> list[ImageLabels]:
    """Parse every ``fmt`` file under ``folder`` (problems and skipped shapes are appended)."""
    if fmt not in FORMATS:
        raise FormatError(f"format {fmt!r}: use one of {sorted(FORMATS)}.")
    if fmt == "manifest" and archived:  # a zipped manifest names files inside the zip only
        return manifest.read(folder, problems, skipped, confined_to=folder)
    return FORMATS[fmt].read(folder, problems, skipped)


def locate_images(
    records: list[ImageLabels], roots: list[Path]
) -> tuple[list[Path | None], list[str]]:
    """The image file of each record, and a problem for each one not found (or ambiguous).

    Tried in order: the path the file gives (absolute, or under a root), then a file of the
    same name under the roots, then of the same stem, then the record's fallback names.
    Several candidates are narrowed to those whose path ends like the given one."""
    by_name: dict[str, list[Path]] = {}
    by_stem: dict[str, list[Path]] = {}
    for root in roots:
        for p in sorted(root.rglob("*")) if root.is_dir() else [root]:
            if p.suffix.lower() in EXTENSIONS and p.is_file() and "__MACOSX" not in p.parts:
                by_name.setdefault(p.name, []).append(p)
                by_stem.setdefault(p.stem, []).append(p)
    found: list[Path | None] = []
    problems: list[str] = []
    for img in records:
        hint = (img.image_hint or "").replace("\\", "/")
        hit = None
        if hint:
            for candidate in [Path(hint)] + [root / hint for root in roots]:
                if candidate.is_file():
                    hit = candidate
                    break
        names = [img.key, *img.fallback_keys]
        for name in names if hit is None else []:
            base = Path(name.replace("\\", "/")).name
            options = by_name.get(base) or by_stem.get(Path(base).stem) or []
            if len(options) > 1 and hint:
                tail = Path(hint).parts
                options = [p for p in options if p.parts[-len(tail) :] == tail] or options
            if len(options) > 1:
                problems.append(
                    f"{img.where}: image {base!r} matches {len(options)} files "
                    f"({', '.join(str(p) for p in options[:3])}); keep one"
                )
                break
            if options:
                hit = options[0]
                break
        if hit is None and not any(p.startswith(f"{img.where}: image") for p in problems):
            problems.append(
                f"{img.where}: image {img.key!r} not found under {', '.join(str(r) for r in roots)}"
            )
        found.append(hit)
    return found, problems


def export_annotations(
    ds,
    fmt: str,
    out: str | Path,
    *,
    images: bool = True,
    status=("labeled", "to_confirm"),
    overwrite: bool = False,
    **options,
) -> list[Path]:
    """Write the samples with ``status`` in ``fmt`` under the folder ``out``.

    ``out`` must be missing or empty: an export into an old export would mix old and new
    files (a stale label file read under new class names). ``overwrite=True`` replaces the
    folder whole, once the new export is complete. Two samples with the same file name are
    written under distinct names (``<stem>_<sample_id><suffix>``)."""
    if fmt not in FORMATS:
        raise FormatError(f"format {fmt!r}: use one of {sorted(FORMATS)}.")
    out = Path(out)
    frames = export_frames(ds, status=status)
    bad = [f"label {name!r} {label_problem(name)}" for name in frames.labels if label_problem(name)]
    if bad:
        raise FormatError(f"{fmt} export refused: rename these labels first (ds.rename_label)", bad)
    if not out.exists() or (out.is_dir() and not any(out.iterdir())):
        return FORMATS[fmt].write(ds, frames, out, images=images, **options)
    if not overwrite:
        raise FormatError(
            f"{out} is not empty: an export there would mix old and new files. "
            "Pick a new or empty folder, or pass overwrite=True to replace it."
        )
    target = out.resolve()
    if (
        not target.is_dir()
        or (target / "hardex.sqlite").exists()
        or Path(ds.path).resolve().is_relative_to(target)
    ):
        raise FormatError(
            f"{out}: refusing to replace it (it is a file, a dataset, or holds "
            "this dataset); export somewhere else."
        )
    with tempfile.TemporaryDirectory(prefix=f".{target.name}-", dir=target.parent) as tmp:
        staging = Path(tmp) / "export"
        written = FORMATS[fmt].write(ds, frames, staging, images=images, **options)
        shutil.rmtree(target)
        staging.rename(target)
    return [target / p.relative_to(staging) for p in written]
