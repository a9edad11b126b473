"""COCO JSON: bbox and polygon segmentation, category ids mapped to label names.

Splits: ``export_coco(out, splits=True)`` writes ``annotations_<split>.json`` (train, val,
test), and a file so named is read back with its split; one ``annotations.json`` carries
none.

Crowd annotations (``iscrowd: 1``) become ignore regions. hardex_nb adds ``hard``,
``hard_reasons``, ``hard_coefficient`` to image entries and ``score``, ``origin``,
``hard_type``, ``text`` to annotation entries; COCO readers ignore unknown keys.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ..annotation_rules import IGNORE_LABEL
from ..geometry import polygon_area, polygon_parts
from .common import (
    ExportFrames,
    ImageLabels,
    Shape,
    copy_images,
    files_in,
    hard_type_of,
    none_if_nan,
    number,
    optional_number,
    point_pairs,
    read_json,
)

SPLIT_FILE = re.compile(r"_(train|val|test)\.json$")  # annotations_<split>.json, as written


def read(src: Path, problems: list[str], skipped: list[str]) -> list[ImageLabels]:
    out = []
    for path in files_in(src, (".json",)):
        records = _read_file(path, problems)
        named = SPLIT_FILE.search(path.name)
        if named is not None:
            for img in records:
                img.split = named.group(1)
        out += records
    return out


def _read_file(path: Path, problems: list[str]) -> list[ImageLabels]:
    where = path.name
    doc = read_json(path, problems)
    if doc is None:
        return []
    if not isinstance(doc, dict) or not all(
        isinstance(doc.get(k), list) for k in ("images", "annotations", "categories")
    ):
        problems.append(
            f"{where}: not a COCO file (needs 'images', 'annotations' and 'categories' lists)"
        )
        return []
    categories = {}
    for i, cat in enumerate(doc["categories"]):
        if not isinstance(cat, dict) or "id" not in cat or not isinstance(cat.get("name"), str):
            problems.append(f"{where}: categories[{i}]: needs 'id' and a string 'name'")
            continue
        categories[_key(cat["id"])] = cat["name"]
    images: dict = {}
    for i, entry in enumerate(doc["images"]):
        if (
            not isinstance(entry, dict)
            or "id" not in entry
            or not isinstance(entry.get("file_name"), str)
        ):
            problems.append(f"{where}: images[{i}]: needs 'id' and a string 'file_name'")
            continue
        img = ImageLabels(
            key=entry["file_name"],
            where=f"{where}: images[{i}]",
            image_hint=entry["file_name"],
            width=entry.get("width") if isinstance(entry.get("width"), int) else None,
            height=entry.get("height") if isinstance(entry.get("height"), int) else None,
        )
        if "hard" in entry:
            img.hard = bool(entry["hard"])
            img.hard_reasons = str(entry.get("hard_reasons") or "")
            img.hard_score = optional_number(
                entry.get("hard_coefficient"), f"{img.where}: hard_coefficient", problems
            )
        img.negative = True  # until an annotation names it
        images[_key(entry["id"])] = img
    for i, ann in enumerate(doc["annotations"]):
        aw = f"{where}: annotations[{i}]"
        if not isinstance(ann, dict):
            problems.append(f"{aw}: expected an object")
            continue
        found = images.get(_key(ann.get("image_id")))
        if found is None:
            problems.append(f"{aw}: image_id {ann.get('image_id')!r} is not in 'images'")
            continue
        img = found
        img.negative = False
        crowd = bool(ann.get("iscrowd", 0))
        label = categories.get(_key(ann.get("category_id")))
        if label is None and not crowd:
            problems.append(f"{aw}: category_id {ann.get('category_id')!r} is not in 'categories'")
            continue
        extra: dict[str, Any] = dict(
            label=label,
            where=aw,
            score=optional_number(ann.get("score"), f"{aw}: score", problems),
            origin=str(ann.get("origin") or "human"),
            hard_type=hard_type_of(ann.get("hard_type"), aw, problems),
            text=ann.get("text") or None,
        )
        seg = ann.get("segmentation")
        if isinstance(seg, list) and seg:  # polygons (a crowd's are usually RLE: its box)
            # one annotation is one object, however many polygons its segmentation holds
            rings = []
            for part in seg:
                if not isinstance(part, list) or len(part) < 6 or len(part) % 2:
                    problems.append(
                        f"{aw}: segmentation polygon needs an even count of ≥ 6 numbers"
                    )
                    break
                rings.append(
                    point_pairs([number(v, f"{aw}: segmentation", problems) for v in part])
                )
            else:
                ignore = crowd or label == IGNORE_LABEL
                img.shapes.append(
                    Shape(
                        kind="ignore" if ignore else "polygon",
                        points=rings[0] if len(rings) == 1 else rings,
                        **extra,
                    )
                )
            continue
        bbox = ann.get("bbox")
        if not isinstance(bbox, list) or len(bbox) != 4:
            problems.append(f"{aw}: bbox must be [x, y, width, height]")
            continue
        x, y, w, h = (number(v, f"{aw}: bbox", problems) for v in bbox)
        if w <= 0 or h <= 0:
            problems.append(f"{aw}: bbox width and height must be positive, got {w}, {h}")
            continue
        kind = "ignore" if crowd or label == IGNORE_LABEL else ("text" if extra["text"] else "box")
        img.shapes.append(Shape(kind=kind, box=(x, y, x + w, y + h), **extra))
    return list(images.values())


def _key(value):
    """An id as a dictionary key: ids are numbers or strings; anything else matches nothing."""
    return value if isinstance(value, (int, float, str)) and not isinstance(value, bool) else None


def to_coco(frames: ExportFrames) -> dict:
    cats = [{"id": i + 1, "name": n, "supercategory": ""} for i, n in enumerate(frames.labels)]
    cat_id = {c["name"]: c["id"] for c in cats}
    images, annotations = [], []
    for _, s in frames.samples.iterrows():
        entry = {
            "id": int(s["sample_id"]),
            "file_name": s["name"],
            "width": int(s["width"]),
            "height": int(s["height"]),
            "hard": bool(s["hard"]),
            "hard_reasons": s["hard_reasons"],
        }
        if none_if_nan(s["hard_score"]) is not None:
            entry["hard_coefficient"] = float(s["hard_score"])
        images.append(entry)
    for _, a in frames.annotations.iterrows():
        x0, y0, x1, y1 = (float(a[k]) for k in ("x0", "y0", "x1", "y1"))
        ann = {
            "id": int(a["ann_id"]),
            "image_id": int(a["sample_id"]),
            "bbox": [x0, y0, x1 - x0, y1 - y0],
            "area": (x1 - x0) * (y1 - y0),
            "iscrowd": int(a["kind"] == "ignore"),
            "origin": str(a["origin"]),
            "hard_type": str(a["hard_type"]),
        }
        ann["category_id"] = cat_id.get(a["label"], 0) if a["kind"] != "ignore" else 0
        if isinstance(a["points"], list):  # polygons and polygon ignore regions
            ann["segmentation"] = [
                [float(v) for p in ring.tolist() for v in p] for ring in polygon_parts(a["points"])
            ]
            ann["area"] = polygon_area(a["points"])
        else:
            ann["segmentation"] = []  # a plain box: bbox says it all
        if none_if_nan(a["score"]) is not None:
            ann["score"] = float(a["score"])
        if none_if_nan(a["text"]):
            ann["text"] = a["text"]
        annotations.append(ann)
    return {
        "info": {"description": "exported by hardex_nb"},
        "images": images,
        "annotations": annotations,
        "categories": cats,
    }


def write(
    ds, frames: ExportFrames, out: Path, *, images: bool = True, splits: bool = False
) -> list[Path]:
    """``annotations.json`` and ``images/<name>``; with ``splits=True`` one file per split
    instead, ``annotations_<split>.json`` (read back with their split)."""
    out.mkdir(parents=True, exist_ok=True)
    if images:
        copy_images(ds, frames.samples, out / "images")
    if not splits:
        path = out / "annotations.json"
        path.write_text(json.dumps(to_coco(frames)))
        return [path]
    written = []
    for split, part in frames.samples.groupby(frames.samples["split"].astype(str), sort=True):
        chosen = ExportFrames(
            samples=part,
            annotations=frames.annotations[frames.annotations["sample_id"].isin(part["sample_id"])],
            labels=frames.labels,
            task=frames.task,
        )
        path = out / f"annotations_{split}.json"
        path.write_text(json.dumps(to_coco(chosen)))
        written.append(path)
    return written
