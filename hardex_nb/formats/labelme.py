"""labelme JSON: rectangles → boxes, polygons → polygons, ``flags`` → classification label.

One JSON per image, matched to the dataset's images by file stem. OCR text travels in a
shape's ``description``; hard flags in a ``hardex`` object (labelme keeps unknown keys).
"""

from __future__ import annotations

import json
from pathlib import Path

from .common import (IGNORE_LABEL, ExportFrames, ImageLabels, Shape, copy_images, files_in,
                     hard_type_of, label_of, none_if_nan, number, read_json,
                     optional_number)

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
        for name in ("imageWidth", "imageHeight"):
            if doc.get(name) is not None and not isinstance(doc[name], int):
                problems.append(f"{where}: field {name}: {doc[name]!r} is not an integer")
        img.width, img.height = doc.get("imageWidth"), doc.get("imageHeight")
        flags = doc.get("flags") or {}
        if not isinstance(flags, dict):
            problems.append(f"{where}: field flags: expected an object")
            flags = {}
        chosen = [k for k, v in flags.items() if v is True and k != IGNORE_LABEL]
        if len(chosen) > 1:
            problems.append(f"{where}: field flags: {chosen} are all set; a classification "
                            "image takes one")
        elif chosen:
            img.label = chosen[0]
        extra = doc.get("hardex") or {}
        if isinstance(extra, dict) and "hard" in extra:
            img.hard = bool(extra["hard"])
            img.hard_reasons = str(extra.get("hard_reasons") or "")
            img.hard_score = optional_number(extra.get("hard_score"),
                                             f"{where}: hardex.hard_score", problems)
        for i, shape in enumerate(doc.get("shapes", [])):
            parsed = _shape(shape, f"{where}: shapes[{i}]", problems, skipped)
            if parsed is not None:
                img.shapes.append(parsed)
        out.append(img)
    return out


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
    extra = shape.get("hardex") if isinstance(shape.get("hardex"), dict) else {}
    label = shape.get("label")
    common = dict(label=label, where=where,
                  score=optional_number(extra.get("score"), f"{where}: hardex.score", problems),
                  origin=str(extra.get("origin") or "human"),
                  hard_type=hard_type_of(extra.get("hard_type"), where, problems),
                  text=shape.get("description") or None)
    if kind == "rectangle":
        if len(coords) != 2:
            problems.append(f"{where}: a rectangle needs 2 points, got {len(coords)}")
            return None
        (x0, y0), (x1, y1) = coords
        box_kind = "ignore" if label == IGNORE_LABEL else ("text" if common["text"] else "box")
        return Shape(kind=box_kind, box=(x0, y0, x1, y1), **common)
    if kind == "polygon":
        return Shape(kind="polygon", points=coords, **common)
    problems.append(f"{where}: shape_type {kind!r} is not one of rectangle, polygon")
    return None


def write(ds, frames: ExportFrames, out: Path, *, images: bool = True) -> list[Path]:
    """One JSON per image beside (a copy of) the image."""
    out.mkdir(parents=True, exist_ok=True)
    if images:
        copy_images(ds, frames.samples, out)
    by_sample = frames.by_sample()
    written = []
    for _, s in frames.samples.iterrows():
        shapes = []
        for _, a in by_sample.get(int(s["sample_id"]), frames.annotations.iloc[:0]).iterrows():
            if a["kind"] == "polygon":
                points, shape_type = a["points"], "polygon"
            else:
                points, shape_type = [[a["x0"], a["y0"]], [a["x1"], a["y1"]]], "rectangle"
            shape = {"label": label_of(a), "points": points, "group_id": None,
                     "shape_type": shape_type, "flags": {}}
            if none_if_nan(a["text"]):
                shape["description"] = a["text"]
            shape["hardex"] = {"score": none_if_nan(a["score"]), "origin": str(a["origin"]),
                               "hard_type": str(a["hard_type"])}
            shapes.append(shape)
        flags = {}
        if frames.task == "classification":
            flags = {name: name == s["label"] for name in frames.labels}
        doc = {"version": "5.0.1", "flags": flags, "shapes": shapes, "imagePath": s["name"],
               "imageData": None, "imageHeight": int(s["height"]), "imageWidth": int(s["width"]),
               "hardex": {"hard": bool(s["hard"]), "hard_reasons": s["hard_reasons"],
                          "hard_score": none_if_nan(s["hard_score"])}}
        path = out / f"{Path(s['name']).stem}.json"
        path.write_text(json.dumps(doc, indent=2))
        written.append(path)
    return written
