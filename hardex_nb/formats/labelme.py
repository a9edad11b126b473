"""labelme JSON: rectangles → boxes, polygons → polygons, ``flags`` → the image's label
(classification: one flag set; multilabel: every flag set).

One JSON per image, matched to the dataset's images by file stem. OCR text travels in a
shape's ``description``; hard flags in a ``hardex`` object (labelme keeps unknown keys).
X-AnyLabeling's ``rotation`` shapes (four corners and a ``direction``) are rotated boxes both
ways; labelme itself has no rotated shape.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from ..annotation_rules import IGNORE_LABEL
from ..geometry import from_corners, polygon_parts
from .common import (
    ExportFrames,
    ImageLabels,
    Shape,
    copy_images,
    files_in,
    hard_type_of,
    label_of,
    none_if_nan,
    number,
    optional_number,
    read_json,
)

SKIPPED_SHAPES = {"point", "line", "linestrip", "circle", "mask"}


def read(src: Path, problems: list[str], skipped: list[str]) -> list[ImageLabels]:
    """Parse every ``*.json`` under ``src``."""
    out = []
    for path in files_in(src, (".json",)):
        where = path.name
        doc = read_json(path, problems)
        if doc is None:
            continue
        if not isinstance(doc, dict) or not isinstance(doc.get("shapes", []), list):
            problems.append(f"{where}: not a labelme file (needs an object with a 'shapes' list)")
            continue
        img = ImageLabels(key=path.stem, where=where)
        if isinstance(doc.get("imagePath"), str) and doc["imagePath"]:
            img.image_hint = str(path.parent / doc["imagePath"].replace("\\", "/"))
        for name in ("imageWidth", "imageHeight"):
            if doc.get(name) is not None and not isinstance(doc[name], int):
                problems.append(f"{where}: field {name}: {doc[name]!r} is not an integer")
        img.width, img.height = doc.get("imageWidth"), doc.get("imageHeight")
        flags = doc.get("flags") or {}
        if not isinstance(flags, dict):
            problems.append(f"{where}: field flags: expected an object")
            flags = {}
        chosen = [k for k, v in flags.items() if v is True and k != IGNORE_LABEL]
        img.tags = [Shape("tag", name, where=f"{where}: flags.{name}") for name in chosen]
        if len(chosen) == 1:
            img.label = chosen[0]
        extra = doc.get("hardex") or {}
        if isinstance(extra, dict) and "hard" in extra:
            img.hard = bool(extra["hard"])
            img.hard_reasons = str(extra.get("hard_reasons") or "")
            img.hard_score = optional_number(
                extra.get("hard_score"), f"{where}: hardex.hard_score", problems
            )
        groups: dict[tuple, list[Shape]] = {}
        for i, shape in enumerate(doc.get("shapes", [])):
            parsed = _shape(shape, f"{where}: shapes[{i}]", problems, skipped)
            if parsed is None:
                continue
            group = shape.get("group_id")
            if group is None:
                img.shapes.append(parsed)
            else:  # shapes sharing (label, group_id) are one instance, as labelme2coco reads them
                key = (parsed.label, group)
                if key not in groups:
                    groups[key] = []
                    img.shapes.append(parsed)  # keeps the first piece's place
                groups[key].append(parsed)
        for pieces in groups.values():
            if len(pieces) > 1:
                merged = _merge(pieces)
                img.shapes[img.shapes.index(pieces[0])] = merged
        img.negative = not doc.get("shapes") and img.label is None
        out.append(img)
    return out


def _rings(shape: Shape) -> list:
    if shape.points is not None:
        return [shape.points]
    assert shape.box is not None
    x0, y0, x1, y1 = shape.box
    return [[[x0, y0], [x1, y0], [x1, y1], [x0, y1]]]


def _merge(pieces: list[Shape]) -> Shape:
    """One object from the shapes of one labelme group: their boxes' union when every
    piece is a rectangle, else a polygon with one ring per piece."""
    first = pieces[0]
    where = f"{first.where} (group of {len(pieces)} shapes)"
    if all(p.points is None for p in pieces):
        boxes = [p.box for p in pieces if p.box is not None]
        box = (
            min(min(b[0], b[2]) for b in boxes),
            min(min(b[1], b[3]) for b in boxes),
            max(max(b[0], b[2]) for b in boxes),
            max(max(b[1], b[3]) for b in boxes),
        )
        return Shape(
            kind=first.kind,
            label=first.label,
            box=box,
            score=first.score,
            origin=first.origin,
            hard_type=first.hard_type,
            text=first.text,
            where=where,
        )
    rings = [ring for p in pieces for ring in _rings(p)]
    kind = "ignore" if first.kind == "ignore" else "polygon"
    return Shape(
        kind=kind,
        label=first.label,
        points=rings,
        score=first.score,
        origin=first.origin,
        hard_type=first.hard_type,
        text=first.text,
        where=where,
    )


def _shape(shape, where: str, problems: list[str], skipped: list[str]) -> Shape | None:
    if not isinstance(shape, dict):
        problems.append(f"{where}: expected an object")
        return None
    kind = shape.get("shape_type") or "polygon"
    if kind in SKIPPED_SHAPES:
        skipped.append(f"{where}: shape_type {kind}")
        return None
    pts = shape.get("points")
    if not isinstance(pts, list) or not all(isinstance(p, list) and len(p) == 2 for p in pts):
        problems.append(f"{where}: field points: expected a list of [x, y] pairs")
        return None
    coords = [[number(v, f"{where}: points", problems) for v in p] for p in pts]
    extra: dict[str, Any] = shape["hardex"] if isinstance(shape.get("hardex"), dict) else {}
    label = shape.get("label")
    # X-AnyLabeling writes a model's confidence and VOC's difficult flag on the shape itself
    score = extra["score"] if "score" in extra else shape.get("score")
    common: dict[str, Any] = dict(
        label=label,
        where=where,
        score=optional_number(score, f"{where}: score", problems),
        difficult=shape.get("difficult") is True,
        origin=str(extra.get("origin") or "human"),
        hard_type=hard_type_of(extra.get("hard_type"), where, problems),
        text=shape.get("description") or None,
    )
    ignore = label == IGNORE_LABEL
    if kind == "rectangle" and len(coords) == 4:
        # four corners (X-AnyLabeling writes them): axis-aligned -> the box; turned -> its
        # corners as a polygon, so nothing is lost
        xs, ys = {round(x, 6) for x, _ in coords}, {round(y, 6) for _, y in coords}
        if len(xs) == 2 and len(ys) == 2:
            x_all, y_all = [x for x, _ in coords], [y for _, y in coords]
            coords = [[min(x_all), min(y_all)], [max(x_all), max(y_all)]]
        else:
            return Shape(kind="ignore" if ignore else "polygon", points=coords, **common)
    if kind == "rectangle":
        if len(coords) != 2:
            problems.append(f"{where}: a rectangle needs 2 or 4 points, got {len(coords)}")
            return None
        (x0, y0), (x1, y1) = coords
        box_kind = "ignore" if ignore else ("text" if common["text"] else "box")
        return Shape(kind=box_kind, box=(x0, y0, x1, y1), **common)
    if kind == "polygon":
        return Shape(kind="ignore" if ignore else "polygon", points=coords, **common)
    if kind == "rotation":  # X-AnyLabeling: the 4 corners of a turned rectangle
        if len(coords) != 4:
            problems.append(f"{where}: a rotation shape needs 4 points, got {len(coords)}")
            return None
        if ignore:
            return Shape(kind="ignore", points=coords, **common)
        box, angle = from_corners(coords)
        return Shape(kind="text" if common["text"] else "box", box=box, angle=angle, **common)
    problems.append(f"{where}: shape_type {kind!r} is not one of rectangle, polygon, rotation")
    return None


def write(ds, frames: ExportFrames, out: Path, *, images: bool = True) -> list[Path]:
    """One JSON per image beside (a copy of) the image."""
    out.mkdir(parents=True, exist_ok=True)
    if images:
        copy_images(ds, frames.samples, out)
    written = []
    for s, anns in frames.each_sample():
        shapes = []
        for group, (_, a) in enumerate(anns.iterrows()):
            if isinstance(a["points"], list):
                rings = polygon_parts(a["points"])
                pieces = [(ring.tolist(), "polygon") for ring in rings]
            elif a["corners"] is not None:  # a rotated box: X-AnyLabeling's rotation shape
                rings = []
                pieces = [(a["corners"], "rotation")]
            else:
                rings = []
                pieces = [([[a["x0"], a["y0"]], [a["x1"], a["y1"]]], "rectangle")]
            for points, shape_type in pieces:  # an object in pieces: one group_id
                shape = {
                    "label": label_of(a),
                    "points": points,
                    "group_id": group if len(rings) > 1 else None,
                    "shape_type": shape_type,
                    "flags": {},
                }
                if shape_type == "rotation":  # radians, of the first side, in [0, 2π)
                    shape["direction"] = math.radians(float(a["angle"]) % 360)
                if none_if_nan(a["text"]):
                    shape["description"] = a["text"]
                shape["hardex"] = {
                    "score": none_if_nan(a["score"]),
                    "origin": str(a["origin"]),
                    "hard_type": str(a["hard_type"]),
                }
                shapes.append(shape)
        flags = {}
        if frames.task == "classification":
            flags = {name: name == s["label"] for name in frames.labels}
        elif frames.task == "multilabel":
            flags = {name: name in s["labels"] for name in frames.labels}
        doc = {
            "version": "5.0.1",
            "flags": flags,
            "shapes": shapes,
            "imagePath": s["name"],
            "imageData": None,
            "imageHeight": int(s["height"]),
            "imageWidth": int(s["width"]),
            "hardex": {
                "hard": bool(s["hard"]),
                "hard_reasons": s["hard_reasons"],
                "hard_score": none_if_nan(s["hard_score"]),
            },
        }
        path = out / f"{Path(s['name']).stem}.json"
        path.write_text(json.dumps(doc, indent=2))
        written.append(path)
    return written
