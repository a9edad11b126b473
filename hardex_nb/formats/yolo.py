"""YOLO txt: ``classes.txt`` plus one ``<stem>.txt`` per image (LabelImg), or a ``data.yaml``
with ``images/`` and ``labels/`` folders per split (Ultralytics, Roboflow and CVAT exports).

A ``data.yaml`` gives the class names (``names`` as a list or an index → name mapping) and
the image folders of ``train`` / ``val`` / ``test``, resolved as Ultralytics does (under
``path`` when given, else beside the yaml; a leading ``../`` that leads nowhere is dropped).
Each image's labels are the ``.txt`` of the same stem in the ``labels`` folder beside its
``images`` folder; its split is kept. Each line is ``class cx cy w h`` in 0..1 image
fractions, or ``class x1 y1 x2 y2 ...`` for a polygon (YOLO segmentation). YOLO has no
place for ignore regions, scores or hard flags: export leaves them out.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from ..geometry import polygon_area, polygon_parts
from ..media import EXTENSIONS
from .common import (
    ExportFrames,
    ImageLabels,
    Shape,
    copy_images,
    files_in,
    number,
    point_pairs,
)

IMAGE_SUFFIXES = tuple(sorted(EXTENSIONS))
SPLITS = {"train": "train", "val": "val", "valid": "val", "test": "test"}


def _data_yaml(folder: Path, problems: list[str]) -> tuple[list[str], dict[Path, str]] | None:
    """Class names and ``{labels folder: split}`` from a data.yaml under ``folder``."""
    found = sorted(p for p in folder.rglob("*.y*ml") if p.suffix in (".yaml", ".yml"))
    for path in found:
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError, OSError) as exc:
            problems.append(f"{path.name}: cannot read ({exc})")
            return None
        if not isinstance(doc, dict) or "names" not in doc:
            continue
        names = doc["names"]
        if isinstance(names, dict):
            try:
                names = [str(names[k]) for k in sorted(names, key=int)]
            except (TypeError, ValueError):
                problems.append(f"{path.name}: field names: the keys must be class indices")
                return None
        if not isinstance(names, list):
            problems.append(f"{path.name}: field names: a list, or a mapping index → name")
            return None
        root = path.parent / str(doc["path"]) if doc.get("path") else path.parent
        if not root.exists():
            root = path.parent
        splits: dict[Path, str] = {}
        for key, split in SPLITS.items():
            values = doc.get(key)
            for value in values if isinstance(values, list) else [values]:
                if not isinstance(value, str) or not value:
                    continue
                images = root / value
                if not images.exists() and value.startswith("../"):
                    images = root / value[3:]
                parts = list(images.parts)
                if "images" in parts:  # Ultralytics: .../images/... -> .../labels/...
                    i = len(parts) - 1 - parts[::-1].index("images")
                    parts[i] = "labels"
                splits[Path(*parts).resolve()] = split
        return [str(n) for n in names], splits
    return None


def _split_of(path: Path, splits: dict[Path, str]) -> str | None:
    resolved = path.resolve()
    for labels, split in splits.items():
        if resolved.is_relative_to(labels):
            return split
    return None


def _image_beside(label_file: Path) -> str | None:
    """The image a YOLO label file belongs to: same stem, ``images`` for ``labels``."""
    parts = list(label_file.parent.parts)
    if "labels" not in parts:
        return None
    i = len(parts) - 1 - parts[::-1].index("labels")
    folder = Path(*parts[:i], "images", *parts[i + 1 :])
    for suffix in IMAGE_SUFFIXES + tuple(s.upper() for s in IMAGE_SUFFIXES):
        if (folder / (label_file.stem + suffix)).is_file():
            return str(folder / (label_file.stem + suffix))
    return None


def read(src: Path, problems: list[str], skipped: list[str]) -> list[ImageLabels]:
    folder = src if src.is_dir() else src.parent
    described = _data_yaml(folder, problems)
    splits: dict[Path, str] = {}
    if described is not None:
        classes, splits = described
    else:
        classes_file = next(iter(sorted(folder.rglob("classes.txt"))), None)
        if classes_file is None:
            problems.append(
                f"{folder.name}: no data.yaml or classes.txt; YOLO files need one to "
                "name the classes"
            )
            return []
        classes = [
            c.strip() for c in classes_file.read_text(encoding="utf-8").splitlines() if c.strip()
        ]
    out = []
    for path in files_in(src, (".txt",)):
        if path.name == "classes.txt" or (splits and _split_of(path, splits) is None):
            continue
        img = ImageLabels(
            key=path.stem,
            where=path.name,
            normalized=True,
            split=_split_of(path, splits),
            image_hint=_image_beside(path),
        )
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (UnicodeDecodeError, OSError) as exc:
            problems.append(f"{path.name}: cannot read ({exc})")
            continue
        img.negative = not any(line.strip() for line in lines)  # an empty file: no objects
        for n, line in enumerate(lines, start=1):
            where = f"{path.name}: line {n}"
            parts = line.split()
            if not parts:
                continue
            if len(parts) < 5 or (len(parts) > 5 and len(parts) % 2 == 0):
                problems.append(
                    f"{where}: expected 'class cx cy w h' or 'class x1 y1 x2 y2 ...', "
                    f"got {len(parts)} fields"
                )
                continue
            try:
                cls = int(parts[0])
            except ValueError:
                problems.append(f"{where}: class {parts[0]!r} is not an integer")
                continue
            if not 0 <= cls < len(classes):
                problems.append(
                    f"{where}: class {cls} is not in classes.txt ({len(classes)} classes)"
                )
                continue
            vals = [number(v, where, problems) for v in parts[1:]]
            if len(vals) == 4:
                cx, cy, w, h = vals
                img.shapes.append(
                    Shape(
                        kind="box",
                        label=classes[cls],
                        where=where,
                        box=(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2),
                    )
                )
            else:
                img.shapes.append(
                    Shape(kind="polygon", label=classes[cls], where=where, points=point_pairs(vals))
                )
        out.append(img)
    return out


def write(ds, frames: ExportFrames, out: Path, *, images: bool = True) -> list[Path]:
    """``classes.txt``, ``labels/<stem>.txt`` and ``images/<name>``. A dataset with val or
    test images is written as Ultralytics lays it out, so the splits come back:
    ``images/<split>/``, ``labels/<split>/`` and a ``data.yaml`` naming them."""
    splits = sorted(set(frames.samples["split"].astype(str)), key=list(SPLITS).index)
    nested = splits != ["train"] and len(frames.samples) > 0
    (out / "labels").mkdir(parents=True, exist_ok=True)
    for split in splits if nested else []:
        (out / "labels" / split).mkdir(exist_ok=True)
    if images:
        if nested:
            for split in splits:
                chosen = frames.samples[frames.samples["split"].astype(str) == split]
                copy_images(ds, chosen, out / "images" / split)
        else:
            copy_images(ds, frames.samples, out / "images")
    (out / "classes.txt").write_text("".join(f"{c}\n" for c in frames.labels))
    if nested:
        doc = {"path": ".", **{s: f"images/{s}" for s in splits}, "names": list(frames.labels)}
        (out / "data.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False))
    index = {name: i for i, name in enumerate(frames.labels)}
    written = []
    for s, anns in frames.each_sample():
        w, h = float(s["width"]), float(s["height"])
        lines = []
        for _, a in anns[anns["kind"] != "ignore"].iterrows():
            if a["kind"] == "polygon":
                # one ring per line: an object in pieces keeps its largest piece
                ring = max(polygon_parts(a["points"]), key=polygon_area).tolist()
                coords = " ".join(f"{x / w:.10g} {y / h:.10g}" for x, y in ring)
                lines.append(f"{index[a['label']]} {coords}")
            else:
                cx, cy = (a["x0"] + a["x1"]) / 2 / w, (a["y0"] + a["y1"]) / 2 / h
                bw, bh = (a["x1"] - a["x0"]) / w, (a["y1"] - a["y0"]) / h
                lines.append(f"{index[a['label']]} {cx:.12g} {cy:.12g} {bw:.12g} {bh:.12g}")
        folder = out / "labels" / (str(s["split"]) if nested else "")
        path = folder / f"{Path(s['name']).stem}.txt"
        path.write_text("".join(f"{line}\n" for line in lines))
        written.append(path)
    return written
