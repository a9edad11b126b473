"""Annotation interchange: labelme, PASCAL VOC (LabelImg), YOLO, COCO, ModelArts manifest,
DOTA (rotated boxes).

Each module has ``read(folder, problems, skipped) -> list[ImageLabels]`` and
``write(ds, frames, out, *, images=True)``: plain records in, files out, and back; the
Dataset applies the records (``hardex_nb.ingest.apply_import``).
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

from .. import staging
from ..annotation_rules import label_problem
from ..errors import FormatError
from ..media import EXTENSIONS
from . import coco, dota, labelme, manifest, voc, yolo
from .common import (
    ExportResult,
    ImageLabels,
    export_frames,
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
CARRIES_SPLITS = ("yolo", "manifest")  # formats whose files keep train / val / test
CARRIES_SEVERAL_LABELS = ("labelme", "manifest")  # formats a multilabel dataset exports to


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
    """The image file of each record, and a problem for each one not found, ambiguous, or
    outside the roots.

    Only files inside ``roots`` are ever used: an annotation file from someone else may
    not pull in a file from elsewhere (an absolute path, ``..``, a link pointing out), and
    nothing is looked up in the working directory. Tried in order: the path the file gives,
    under a root; then a file of the same name under the roots, then of the same stem,
    then the record's fallback names. Several candidates are narrowed to those whose path
    ends like the given one."""
    real = [root.resolve() for root in roots]

    def inside(path: Path) -> bool:
        target = path.resolve()
        return any(target == r or target.is_relative_to(r) for r in real)

    by_name: dict[str, list[Path]] = {}
    by_stem: dict[str, list[Path]] = {}
    outside: set[Path] = set()
    for root in roots:
        for p in sorted(root.rglob("*")) if root.is_dir() else [root]:
            if p.suffix.lower() in EXTENSIONS and p.is_file() and "__MACOSX" not in p.parts:
                if not inside(p):  # a link in the folder that points elsewhere
                    outside.add(p)
                    continue
                by_name.setdefault(p.name, []).append(p)
                by_stem.setdefault(p.stem, []).append(p)
    found: list[Path | None] = []
    problems: list[str] = []
    where = ", ".join(str(r) for r in roots)
    for img in records:
        hint = (img.image_hint or "").replace("\\", "/")
        hit = None
        refused = False
        if hint:
            given = Path(hint)
            for candidate in [given] if given.is_absolute() else [r / given for r in roots]:
                if candidate.is_file():
                    if inside(candidate):
                        hit = candidate
                        break
                    refused = True
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
            refused = refused or any(p.name == base for p in outside)
        if hit is None and not any(p.startswith(f"{img.where}: image") for p in problems):
            if refused or ".." in Path(hint).parts:
                problems.append(
                    f"{img.where}: image {hint or img.key!r} is outside {where}; an "
                    "annotation file may only name images inside the folder (or archive) "
                    "it came with: copy the image there"
                )
            else:
                problems.append(f"{img.where}: image {img.key!r} not found under {where}")
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
    if ds.task == "multilabel" and fmt not in CARRIES_SEVERAL_LABELS:
        raise FormatError(
            f"{fmt} files hold no image-level labels, so this multilabel dataset cannot be "
            f"written as {fmt}; export it as one of {list(CARRIES_SEVERAL_LABELS)}."
        )
    out = Path(out)
    frames = export_frames(ds, status=status)
    bad = [f"label {name!r} {label_problem(name)}" for name in frames.labels if label_problem(name)]
    if bad:
        raise FormatError(f"{fmt} export refused: rename these labels first (ds.rename_label)", bad)
    target = out.resolve()
    staging.sweep(target.parent)  # what a killed export left beside it
    if target.exists() and not (target.is_dir() and not any(target.iterdir())):
        if not overwrite:
            raise FormatError(
                f"{out} is not empty: an export there would mix old and new files. "
                "Pick a new or empty folder, or pass overwrite=True to replace it."
            )
        if (
            not target.is_dir()
            or (target / "hardex.sqlite").exists()
            or Path(ds.path).resolve().is_relative_to(target)
        ):
            raise FormatError(
                f"{out}: refusing to replace it (it is a file, a dataset, or holds "
                "this dataset); export somewhere else."
            )
    notes = []
    others = frames.samples["split"].astype(str).value_counts().drop("train", errors="ignore")
    keeps = fmt in CARRIES_SPLITS or (fmt == "coco" and options.get("splits"))
    if not keeps and len(others):
        counts = ", ".join(f"{n} {split}" for split, n in others.items())
        notes.append(
            f"{fmt} files carry no split: {counts} images are written without theirs "
            "(yolo, manifest and coco with splits=True keep splits)"
        )
        warnings.warn(notes[-1], UserWarning, stacklevel=3)
    # written whole beside the target, then renamed into place: a process killed part-way
    # leaves no half export (the next export sweeps its staging folder)
    building = staging.folder_for(target)
    try:
        written = FORMATS[fmt].write(ds, frames, building, images=images, **options)
        if target.exists():
            shutil.rmtree(target) if any(target.iterdir()) else target.rmdir()
        building.rename(target)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    return ExportResult([target / p.relative_to(building) for p in written], notes=notes)
