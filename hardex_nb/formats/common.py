"""What every annotation format reads into and writes from.

A reader turns files into `ImageLabels` records (one per image) without touching the
dataset; ``hardex_nb.ingest.apply_import`` then matches them to samples by file name (then
stem), validates every label and coordinate, and writes everything in one transaction, or
raises a `hardex_nb.errors.FormatError` listing every problem and writes nothing.
Writers get the dataset's public frames grouped by `export_frames`.

Conventions shared by the formats: an ignore (masked) region is written as an object labeled
``__ignore__``; annotations made by a model carry their run version as ``origin``.
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from ..annotation_rules import IGNORE_LABEL
from ..errors import FormatError
from ..geometry import axis_aligned, corners, turned
from ..reasons import HARD_TYPES
from .archive import safe_extract


@dataclass
class Shape:
    """One object as a file describes it. ``box`` is (x0, y0, x1, y1) in pixels, or in
    0..1 image fractions when the image record is ``normalized``.
    """

    kind: str
    label: str | None
    box: tuple[float, float, float, float] | None = None
    points: list | None = None  # one ring [[x, y], ...] or a list of rings
    score: float | None = None
    origin: str = "human"
    hard_type: str = "none"
    text: str | None = None
    angle: float | None = None
    difficult: bool = False
    truncated: bool = False
    occluded: bool = False
    where: str = ""


@dataclass
class ImageLabels:
    """Everything one file says about one image."""

    key: str
    where: str
    width: int | None = None
    height: int | None = None
    label: str | None = None  # the image's one label (classification)
    # every image-level label the file gives, as shapes of kind "tag" (a multi-label image
    # has several; ``label`` is set only when there is exactly one)
    tags: list[Shape] = field(default_factory=list)
    shapes: list[Shape] = field(default_factory=list)
    hard: bool | None = None
    hard_score: float | None = None
    hard_reasons: str = ""
    normalized: bool = False
    negative: bool = False  # the file lists this image with no objects at all
    split: str | None = None  # train / val / test where the file says
    image_hint: str | None = None  # where the file says the image is (a path, maybe relative)
    fallback_keys: list[str] = field(default_factory=list)  # tried when key matches nothing


@dataclass
class AnnotationImport:
    """The result of an annotation import.

    ``matched``: sample ids that received labels; ``unmatched``: image names in the files
    with no such image in the dataset (add the images first); ``clipped``: where a box was
    clipped to its image; ``added_labels``; ``skipped``: shapes of kinds hardex_nb does not
    carry (points, lines, circles); ``annotations``: new ann_ids; ``already``: objects the
    dataset held already (``mode="merge"``, the default: a second import adds nothing).
    """

    matched: list[int] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)
    clipped: list[str] = field(default_factory=list)
    added_labels: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    annotations: list[int] = field(default_factory=list)
    paired: list[str] = field(default_factory=list)
    already: int = 0  # objects the dataset already held (mode="merge"): not added again

    def __repr__(self) -> str:
        out = (
            f"AnnotationImport: {len(self.matched)} images labeled, {len(self.annotations)} "
            f"annotations added, {self.already} already there, {len(self.unmatched)} "
            f"unmatched, {len(self.clipped)} clipped, labels added {self.added_labels}"
        )
        if self.unmatched:
            out += f"\n  not in the dataset (add these images first): {self.unmatched[:20]}"
        return out


@contextlib.contextmanager
def opened_source(source: str | Path) -> Iterator[Path]:
    """A folder to read: ``source`` itself, its parent for a single file, or a checked,
    extracted copy of a .zip.
    """
    src = Path(source)
    if not src.exists():
        raise FormatError(f"{src}: no such file or folder.")
    if src.is_file() and src.suffix.lower() == ".zip":
        with tempfile.TemporaryDirectory(prefix="hardex-import-") as tmp:
            safe_extract(src, tmp)
            yield Path(tmp)
    else:
        yield src


PROGRESS_FROM = 200  # files or images: a progress bar from this many on


def files_in(src: Path, suffixes: tuple[str, ...]):
    """The annotation files under ``src`` (a tqdm bar while reading many of them)."""
    if src.is_file():
        return [src]
    found = sorted(
        p
        for p in src.rglob("*")
        if p.suffix.lower() in suffixes and not p.name.startswith(".") and "__MACOSX" not in p.parts
    )
    return tqdm(
        found, desc=f"reading {src.name or src}", unit="file", disable=len(found) < PROGRESS_FROM
    )


def read_json(path: Path, problems: list[str]):
    """The JSON document in ``path``, or None after noting why it cannot be read."""
    where = path.name
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        problems.append(f"{where}: line {exc.lineno} column {exc.colno}: invalid JSON ({exc.msg})")
    except RecursionError:
        problems.append(f"{where}: JSON nested too deeply to be an annotation file")
    except (UnicodeDecodeError, OSError) as exc:
        problems.append(f"{where}: cannot read ({exc})")
    return None


def short(value, limit: int = 40) -> str:
    """``repr(value)`` cut to ``limit`` characters, for messages about huge values."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def number(value, where: str, problems: list[str]) -> float:
    """A finite float, or NaN after noting the problem."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        problems.append(f"{where}: {short(value)} is not a number")
        return math.nan
    except OverflowError:
        problems.append(f"{where}: {short(value)} is too large for a coordinate")
        return math.nan
    if not math.isfinite(out):
        problems.append(f"{where}: {short(value)} is not finite")
    return out


def point_pairs(values: list[float]) -> list[list[float]]:
    """``[x1, y1, x2, y2, ...]`` as ``[[x1, y1], [x2, y2], ...]`` (an unpaired last value is
    dropped; callers check the count).
    """
    return [values[k : k + 2] for k in range(0, len(values) - 1, 2)]


def optional_number(value, where: str, problems: list[str]) -> float | None:
    return None if value is None or value == "" else number(value, where, problems)


def hard_type_of(value, where: str, problems: list[str]) -> str:
    value = "none" if value in (None, "") else str(value)
    if value not in HARD_TYPES:
        problems.append(f"{where}: hard_type {value!r} is not one of {list(HARD_TYPES)}")
        return "none"
    return value


# -- export side --------------------------------------------------------------------------
class ExportResult(list):
    """The files an export wrote (a list of paths, as before), with ``notes``: what the
    format could not carry (a split, ignore regions, ...), said once each.
    """

    def __init__(self, paths=(), *, notes=()):
        super().__init__(paths)
        self.notes: list[str] = list(dict.fromkeys(notes))

    def __repr__(self) -> str:
        head = f"ExportResult: {len(self)} files"
        return "\n".join([head, *(f"  note: {n}" for n in self.notes)])


@dataclass
class ExportFrames:
    """A dataset's public frames grouped for writers."""

    samples: pd.DataFrame
    annotations: pd.DataFrame
    labels: list[str]
    task: str

    def by_sample(self) -> dict[int, pd.DataFrame]:
        return {int(k): g for k, g in self.annotations.groupby("sample_id", sort=True)}

    def each_sample(self) -> Iterator[tuple[pd.Series, pd.DataFrame]]:
        """``(sample row, its annotations)`` for every sample, in order."""
        groups = self.by_sample()
        none = self.annotations.iloc[:0]
        for _, s in self.samples.iterrows():
            yield s, groups.get(int(s["sample_id"]), none)


def export_frames(ds, *, status=("labeled", "to_confirm")) -> ExportFrames:
    samples = ds.samples
    if status is not None:
        samples = samples[samples["status"].isin(list(status))]
    ann = ds.annotations
    # a multi-label image's tags travel in samples["labels"], not as objects
    ann = ann[ann["sample_id"].isin(samples["sample_id"]) & (ann["kind"] != "tag")]
    # rotated boxes: writers that carry them read ``corners``; the others get the enclosing
    # box, clipped to the image, in x0..y1
    ann = ann.assign(corners=None)
    rows = turned(ann)
    if rows.any():
        ann.loc[rows, "corners"] = pd.Series(
            [corners(r.x0, r.y0, r.x1, r.y1, r.angle).tolist() for r in ann[rows].itertuples()],
            index=ann.index[rows],
            dtype=object,
        )
    ann = axis_aligned(ann, samples.set_index("sample_id"))
    samples = samples.reset_index(drop=True)
    # file stems are unique in an export: samples sharing one (two folders, a zip, x.png and
    # x.jpg) are written as <stem>_<sample_id><suffix>, so no image or label file replaces
    # another
    shared = samples["name"].map(lambda n: Path(n).stem).duplicated(keep=False).to_numpy()
    if shared.any():
        samples = samples.copy()
        samples.loc[shared, "name"] = [
            f"{Path(n).stem}_{sid}{Path(n).suffix}"
            for n, sid in zip(samples.loc[shared, "name"], samples.loc[shared, "sample_id"])
        ]
    return ExportFrames(samples=samples, annotations=ann, labels=ds.label_names, task=ds.task)


def copy_images(ds, samples: pd.DataFrame, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    pairs = zip(samples["sample_id"], samples["name"])
    for sid, name in tqdm(
        pairs,
        total=len(samples),
        desc=f"exporting to {folder}",
        unit="image",
        disable=len(samples) < PROGRESS_FROM,
    ):
        shutil.copyfile(ds.image_path(int(sid)), folder / name)


def label_of(row) -> str:
    return IGNORE_LABEL if row["kind"] == "ignore" else str(row["label"])


def none_if_nan(value):
    if value is None:
        return None
    try:
        return None if pd.isna(value) else value
    except (TypeError, ValueError):
        return value
