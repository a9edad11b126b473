"""What every annotation format reads into, and how it lands in a Dataset.

A reader turns files into :class:`ImageLabels` records (one per image) without touching the
dataset; :func:`apply_import` then matches them to samples by file name (then stem),
validates every label and coordinate, and writes everything in one transaction, or raises a
:class:`~hardex_nb.errors.FormatError` listing every problem and writes nothing.

Conventions shared by the formats: an ignore (masked) region is written as an object labeled
``__ignore__``; annotations made by a model carry their run version as ``origin``.
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import tempfile
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ..errors import FormatError
from ..geometry import axis_aligned, centre_inside, corners, is_turned, turned
from ..reasons import HARD_TYPES
from .archive import safe_extract

IGNORE_LABEL = "__ignore__"


def label_problem(name: str) -> str | None:
    """Why a label name cannot travel through every format, or None. Control characters
    (a newline splits classes.txt, XML refuses most of them), leading or trailing spaces
    (YOLO and VOC files lose them) and the reserved ``__ignore__`` (ignore regions) are
    refused."""
    if any(unicodedata.category(c) in ("Cc", "Cs") or c in "\u2028\u2029" for c in name):
        return "holds a control character (a newline, a tab, ...), which label files cannot hold"
    if name != name.strip():
        return "has leading or trailing spaces, which YOLO and VOC files cannot keep"
    if name == IGNORE_LABEL:
        return f"is reserved: {IGNORE_LABEL} marks ignore regions in every format"
    return None


def storable(text: str) -> bool:
    """Whether ``text`` encodes as UTF-8 (JSON's ``\\ud800`` escapes decode to lone
    surrogates that no database or file can hold)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def polygon_parts(points) -> list[np.ndarray]:
    """The rings of a polygon as ``(N_i, 2)`` arrays.

    ``points`` is one ring ``[[x, y], ...]`` or, for an object in several pieces (a COCO
    segmentation with several polygons, labelme shapes sharing a ``group_id``), a list of
    rings ``[[[x, y], ...], [[x, y], ...]]``."""
    if points is None or len(points) == 0:
        return []
    first = points[0]
    if len(first) and isinstance(first[0], (list, tuple, np.ndarray)):
        return [np.asarray(part, dtype="float64") for part in points]
    return [np.asarray(points, dtype="float64")]


def polygon_area(points) -> float:
    """Shoelace area of a ring ``(N, 2)``, or the summed area of several rings (0 for
    collinear or repeated points)."""
    total = 0.0
    for p in polygon_parts(points):
        x, y = p[:, 0], p[:, 1]
        total += float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2)
    return total


@dataclass
class Shape:
    """One object as a file describes it. ``box`` is (x0, y0, x1, y1) in pixels, or in
    0..1 image fractions when the image record is ``normalized``."""

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
    label: str | None = None
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
    carry (points, lines, circles); ``annotations``: new ann_ids.
    """

    matched: list[int] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)
    clipped: list[str] = field(default_factory=list)
    added_labels: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    annotations: list[int] = field(default_factory=list)
    paired: list[str] = field(default_factory=list)

    def __repr__(self) -> str:
        out = (
            f"AnnotationImport: {len(self.matched)} images labeled, {len(self.annotations)} "
            f"annotations, {len(self.unmatched)} unmatched, {len(self.clipped)} clipped, "
            f"labels added {self.added_labels}"
        )
        if self.unmatched:
            out += f"\n  not in the dataset (add these images first): {self.unmatched[:20]}"
        return out


@contextlib.contextmanager
def opened_source(source: str | Path) -> Iterator[Path]:
    """A folder to read: ``source`` itself, its parent for a single file, or a checked,
    extracted copy of a .zip."""
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
    dropped; callers check the count)."""
    return [values[k : k + 2] for k in range(0, len(values) - 1, 2)]


def optional_number(value, where: str, problems: list[str]) -> float | None:
    return None if value is None or value == "" else number(value, where, problems)


def hard_type_of(value, where: str, problems: list[str]) -> str:
    value = "none" if value in (None, "") else str(value)
    if value not in HARD_TYPES:
        problems.append(f"{where}: hard_type {value!r} is not one of {list(HARD_TYPES)}")
        return "none"
    return value


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
    """
    if unknown_labels not in ("add", "error"):
        raise ValueError(f"unknown_labels={unknown_labels!r}: use 'add' or 'error'.")
    if outside not in ("clip", "error"):
        raise ValueError(f"outside={outside!r}: use 'clip' or 'error'.")
    problems = list(problems or [])
    result = AnnotationImport(skipped=list(skipped or []))
    samples = ds._samples.merged()
    by_name: dict[str, list[int]] = {}
    by_stem: dict[str, list[int]] = {}
    for sid, name in zip(samples["sample_id"].astype(int), samples["name"]):
        by_name.setdefault(name, []).append(sid)
        by_stem.setdefault(Path(name).stem, []).append(sid)
    known = list(ds._labels)
    new_labels: list[str] = []
    rows: list[dict] = []
    updates: dict[int, dict] = {}

    def check_label(label, where) -> bool:
        if not isinstance(label, str) or not label.strip():
            problems.append(f"{where}: missing or empty label")
            return False
        if not storable(label):
            problems.append(
                f"{where}: label {label!r} is not valid Unicode (a lone "
                "surrogate); fix it in the file"
            )
            return False
        if label not in known and label_problem(label):
            problems.append(f"{where}: label {label!r} {label_problem(label)}; fix it in the file")
            return False
        if label not in known and label not in new_labels:
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
        if bound is not None:  # the caller added each record's image itself
            sids = [bound[n]] if bound[n] is not None else []
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
        if img.label is not None:
            if ds.task != "classification":
                problems.append(f"{img.where}: an image-level label needs a classification dataset")
            elif check_label(img.label, img.where):
                update["label"] = img.label
        origins = []
        for shape in img.shapes:
            row = _shape_row(
                ds, sid, shape, img, width, height, outside, problems, result, check_label
            )
            if row is not None:
                rows.append(row)
                origins.append(row["origin"])
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
    _, result.annotations = ds._insert_rows(
        annotations=ann, sample_updates=upd, new_labels=new_labels
    )
    result.added_labels = new_labels
    return result


def _shape_row(
    ds, sid, shape: Shape, img: ImageLabels, width, height, outside, problems, result, check_label
) -> dict | None:
    where = shape.where or img.where
    if ds.task != "detection":
        problems.append(f"{where}: objects need a detection dataset; this one is {ds.task}")
        return None
    if shape.kind != "ignore" and not check_label(shape.label, where):
        return None
    for name in ("text", "origin"):
        value = getattr(shape, name)
        if isinstance(value, str) and not storable(value):
            problems.append(f"{where}: {name} {value!r} is not valid Unicode (a lone surrogate)")
            return None
    scale = np.array([width, height, width, height]) if img.normalized else np.ones(4)
    points = None
    try:
        if shape.points is not None:
            parts = polygon_parts(shape.points)
        else:
            coords = np.asarray(shape.box, dtype="float64")
    except OverflowError:
        problems.append(f"{where}: a coordinate is too large (over 1e308); fix it in the file")
        return None
    except (TypeError, ValueError):
        problems.append(f"{where}: coordinates {short(shape.points or shape.box)} are not numbers")
        return None
    if shape.points is not None:
        for pts in parts:
            if pts.ndim != 2 or pts.shape[1] != 2 or len(pts) < 3 or not np.isfinite(pts).all():
                problems.append(f"{where}: a polygon needs 3 or more finite (x, y) points")
                return None
            if polygon_area(pts) <= 0:
                problems.append(
                    f"{where}: the polygon's points enclose no area (collinear or "
                    "repeated); fix or delete it"
                )
                return None
        parts = [pts * scale[:2] for pts in parts]
        every = np.concatenate(parts)
        box = np.concatenate([every.min(axis=0), every.max(axis=0)])
    else:
        box = coords * scale
        if not np.isfinite(box).all():
            problems.append(
                f"{where}: box {tuple(shape.box)} has a missing or non-finite coordinate"
            )
            return None
        box = np.array(
            [min(box[0], box[2]), min(box[1], box[3]), max(box[0], box[2]), max(box[1], box[3])]
        )
    limits = np.array([width, height, width, height])
    if shape.points is None and is_turned(shape.angle):
        # a rotated box keeps its rectangle; only its centre must be inside the image
        if box[2] <= box[0] or box[3] <= box[1] or not centre_inside(*box, width, height):
            problems.append(
                f"{where}: rotated box {tuple(np.round(box, 3))} has no area or its "
                f"centre is outside the {width:g}×{height:g} px image"
            )
            return None
        clipped = box
    else:
        clipped = np.clip(box, 0, limits)
    if clipped[2] <= clipped[0] or clipped[3] <= clipped[1]:
        problems.append(
            f"{where}: box {tuple(np.round(box, 3))} has no area inside the "
            f"{width:g}×{height:g} px image"
        )
        return None
    if not np.array_equal(clipped, box):
        if outside == "error":
            problems.append(
                f"{where}: box {tuple(np.round(box, 3))} reaches outside the "
                f"{width:g}×{height:g} px image; fix it or pass outside='clip'"
            )
            return None
        result.clipped.append(where)
        if shape.points is not None:
            parts = [np.clip(pts, 0, limits[:2]) for pts in parts]
    if shape.points is not None:
        points = parts[0].tolist() if len(parts) == 1 else [pts.tolist() for pts in parts]
    score = shape.score
    if score is not None and not (0.0 <= score <= 1.0):
        problems.append(f"{where}: score {score} is outside [0, 1]")
        return None
    return dict(
        sample_id=sid,
        kind=shape.kind,
        label=None if shape.kind == "ignore" else shape.label,
        x0=float(clipped[0]),
        y0=float(clipped[1]),
        x1=float(clipped[2]),
        y1=float(clipped[3]),
        points=json.dumps(points) if points is not None else None,
        angle=shape.angle,
        text=shape.text,
        score=score,
        origin=shape.origin or "human",
        hard_type=shape.hard_type,
        difficult=int(shape.difficult),
        truncated=int(shape.truncated),
        occluded=int(shape.occluded),
    )


# -- export side --------------------------------------------------------------------------
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
    ann = ann[ann["sample_id"].isin(samples["sample_id"])]
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
