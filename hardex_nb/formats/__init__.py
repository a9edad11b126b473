"""Annotation interchange: labelme, PASCAL VOC (LabelImg), YOLO, COCO, ModelArts manifest.

Each module has ``read(folder, problems, skipped) -> list[ImageLabels]`` and
``write(ds, frames, out, *, images=True)``; :mod:`.common` lands parsed records in a Dataset.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from ..errors import FormatError
from . import coco, labelme, manifest, voc, yolo
from .common import (AnnotationImport, apply_import, export_frames, label_problem,
                     opened_source)

READERS = {"labelme": labelme, "voc": voc, "yolo": yolo, "coco": coco, "manifest": manifest}


def import_annotations(ds, fmt: str, source: str | Path, *, unknown_labels: str = "add",
                       outside: str = "clip") -> AnnotationImport:
    """Read every file of ``fmt`` under ``source`` (folder, file or .zip) into ``ds``.

    All or nothing: on any problem a :class:`FormatError` lists each bad file with its line
    or field, and the dataset is left as it was.
    """
    module = READERS[fmt]
    problems: list[str] = []
    skipped: list[str] = []
    with opened_source(source) as folder:
        if fmt == "manifest" and Path(source).suffix.lower() == ".zip":
            parsed = module.read(folder, problems, skipped, confined_to=folder)
        else:
            parsed = module.read(folder, problems, skipped)
        if not parsed and not problems:
            raise FormatError(f"{Path(source).name}: no {fmt} files found there.")
        return apply_import(ds, parsed, fmt=fmt, unknown_labels=unknown_labels, outside=outside,
                            problems=problems, skipped=skipped)


def export_annotations(ds, fmt: str, out: str | Path, *, images: bool = True,
                       status=("labeled", "to_confirm"), overwrite: bool = False,
                       **options) -> list[Path]:
    """Write the samples with ``status`` in ``fmt`` under the folder ``out``.

    ``out`` must be missing or empty: an export into an old export would mix old and new
    files (a stale label file read under new class names). ``overwrite=True`` replaces the
    folder whole, once the new export is complete. Two samples with the same file name are
    written under distinct names (``<stem>_<sample_id><suffix>``)."""
    out = Path(out)
    frames = export_frames(ds, status=status)
    bad = [f"label {name!r} {label_problem(name)}" for name in frames.labels if label_problem(name)]
    if bad:
        raise FormatError(f"{fmt} export refused: rename these labels first "
                          "(ds.rename_label)", bad)
    if not out.exists() or (out.is_dir() and not any(out.iterdir())):
        return READERS[fmt].write(ds, frames, out, images=images, **options)
    if not overwrite:
        raise FormatError(f"{out} is not empty: an export there would mix old and new files. "
                          "Pick a new or empty folder, or pass overwrite=True to replace it.")
    target = out.resolve()
    if not target.is_dir() or (target / "hardex.sqlite").exists() \
            or Path(ds.path).resolve().is_relative_to(target):
        raise FormatError(f"{out}: refusing to replace it (it is a file, a dataset, or holds "
                          "this dataset); export somewhere else.")
    with tempfile.TemporaryDirectory(prefix=f".{target.name}-", dir=target.parent) as tmp:
        staging = Path(tmp) / "export"
        written = READERS[fmt].write(ds, frames, staging, images=images, **options)
        shutil.rmtree(target)
        staging.rename(target)
    return [target / p.relative_to(staging) for p in written]
