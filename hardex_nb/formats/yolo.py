"""YOLO txt (as LabelImg writes it): ``classes.txt`` plus one ``<stem>.txt`` per image.

Each line is ``class cx cy w h`` in 0..1 image fractions, or ``class x1 y1 x2 y2 ...`` for a
polygon (YOLO segmentation). YOLO has no place for ignore regions, scores or hard flags:
export leaves them out.
"""

from __future__ import annotations

from pathlib import Path

from .common import (copy_images, ExportFrames, files_in, ImageLabels, number, point_pairs,
                     polygon_area, polygon_parts, Shape)


def read(src: Path, problems: list[str], skipped: list[str]) -> list[ImageLabels]:
    folder = src if src.is_dir() else src.parent
    classes_file = next(iter(sorted(folder.rglob("classes.txt"))), None)
    if classes_file is None:
        problems.append(f"{folder.name}: no classes.txt; YOLO files need it to name the classes")
        return []
    classes = [c.strip() for c in classes_file.read_text(encoding="utf-8").splitlines() if c.strip()]
    out = []
    for path in files_in(src, (".txt",)):
        if path.name == "classes.txt":
            continue
        img = ImageLabels(key=path.stem, where=path.name, normalized=True)
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (UnicodeDecodeError, OSError) as exc:
            problems.append(f"{path.name}: cannot read ({exc})")
            continue
        img.negative = not any(line.strip() for line in lines)   # an empty file: no objects
        for n, line in enumerate(lines, start=1):
            where = f"{path.name}: line {n}"
            parts = line.split()
            if not parts:
                continue
            if len(parts) < 5 or (len(parts) > 5 and len(parts) % 2 == 0):
                problems.append(f"{where}: expected 'class cx cy w h' or 'class x1 y1 x2 y2 ...', "
                                f"got {len(parts)} fields")
                continue
            try:
                cls = int(parts[0])
            except ValueError:
                problems.append(f"{where}: class {parts[0]!r} is not an integer")
                continue
            if not 0 <= cls < len(classes):
                problems.append(f"{where}: class {cls} is not in classes.txt ({len(classes)} classes)")
                continue
            vals = [number(v, where, problems) for v in parts[1:]]
            if len(vals) == 4:
                cx, cy, w, h = vals
                img.shapes.append(Shape(kind="box", label=classes[cls], where=where,
                                        box=(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)))
            else:
                img.shapes.append(Shape(kind="polygon", label=classes[cls], where=where,
                                        points=point_pairs(vals)))
        out.append(img)
    return out


def write(ds, frames: ExportFrames, out: Path, *, images: bool = True) -> list[Path]:
    """``classes.txt``, ``labels/<stem>.txt`` and ``images/<name>``."""
    (out / "labels").mkdir(parents=True, exist_ok=True)
    if images:
        copy_images(ds, frames.samples, out / "images")
    (out / "classes.txt").write_text("".join(f"{c}\n" for c in frames.labels))
    index = {name: i for i, name in enumerate(frames.labels)}
    by_sample = frames.by_sample()
    written = []
    for _, s in frames.samples.iterrows():
        w, h = float(s["width"]), float(s["height"])
        lines = []
        anns = by_sample.get(int(s["sample_id"]), frames.annotations.iloc[:0])
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
        path = out / "labels" / f"{Path(s['name']).stem}.txt"
        path.write_text("".join(f"{line}\n" for line in lines))
        written.append(path)
    return written
