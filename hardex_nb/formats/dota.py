"""DOTA txt: rotated (oriented) boxes, as DOTA, X-AnyLabeling and mmrotate write them.

One ``<stem>.txt`` per image (usually in ``labelTxt/`` beside ``images/``); each object is a
line ``x1 y1 x2 y2 x3 y3 x4 y4 category difficult``: the four corners in pixels, in order
around the box. Optional header lines ``imagesource:...`` and ``gsd:...`` are read past.
A quadrilateral lands as a rotated box (`hardex_nb.geometry`); export writes each box's
corners (an axis-aligned box as angle 0, a polygon as its bounding box) and no ignore regions.
Categories cannot hold spaces in this format.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import FormatError
from ..geometry import from_corners
from .common import ExportFrames, ImageLabels, Shape, copy_images, files_in, number

HEADERS = ("imagesource:", "gsd:")


def _image_beside(label_file: Path) -> str | None:
    """``images/<stem>.*`` for ``labelTxt/<stem>.txt`` (DOTA's own layout)."""
    folder = label_file.parent.parent / "images"
    for p in sorted(folder.glob(f"{label_file.stem}.*")) if folder.is_dir() else []:
        return str(p)
    return None


def read(src: Path, problems: list[str], skipped: list[str]) -> list[ImageLabels]:
    out = []
    for path in files_in(src, (".txt",)):
        if path.name == "classes.txt":
            continue
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (UnicodeDecodeError, OSError) as exc:
            problems.append(f"{path.name}: cannot read ({exc})")
            continue
        img = ImageLabels(key=path.stem, where=path.name, image_hint=_image_beside(path))
        objects = 0
        for n, line in enumerate(lines, start=1):
            where = f"{path.name}: line {n}"
            parts = line.split()
            if not parts or line.strip().lower().startswith(HEADERS):
                continue
            if len(parts) not in (9, 10):
                problems.append(
                    f"{where}: expected 'x1 y1 x2 y2 x3 y3 x4 y4 category "
                    f"[difficult]', got {len(parts)} fields"
                )
                continue
            values = [number(v, where, problems) for v in parts[:8]]
            if any(v != v for v in values):
                continue
            difficult = parts[9] if len(parts) == 10 else "0"
            if difficult not in ("0", "1"):
                problems.append(f"{where}: difficult {difficult!r} must be 0 or 1")
                continue
            box, angle = from_corners([values[k : k + 2] for k in range(0, 8, 2)])
            img.shapes.append(
                Shape(
                    kind="box",
                    label=parts[8],
                    box=box,
                    angle=angle,
                    difficult=difficult == "1",
                    where=where,
                )
            )
            objects += 1
        img.negative = objects == 0
        out.append(img)
    return out


def write(ds, frames: ExportFrames, out: Path, *, images: bool = True) -> list[Path]:
    """``labelTxt/<stem>.txt`` and ``images/<name>``."""
    spaced = [name for name in frames.labels if any(c.isspace() for c in name)]
    if spaced:
        raise FormatError(
            "dota export refused: a DOTA category cannot hold spaces; rename "
            "these labels first (ds.rename_label)",
            [repr(n) for n in spaced],
        )
    (out / "labelTxt").mkdir(parents=True, exist_ok=True)
    if images:
        copy_images(ds, frames.samples, out / "images")
    written = []
    for s, anns in frames.each_sample():
        lines = []
        for _, a in anns[anns["kind"] != "ignore"].iterrows():
            if a["corners"] is not None:
                pts = a["corners"]
            else:
                x0, y0, x1, y1 = (float(a[k]) for k in ("x0", "y0", "x1", "y1"))
                pts = [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]
            coords = " ".join(f"{v:.10g}" for p in pts for v in p)
            lines.append(f"{coords} {a['label']} {int(bool(a['difficult']))}")
        path = out / "labelTxt" / f"{Path(s['name']).stem}.txt"
        path.write_text("".join(f"{line}\n" for line in lines))
        written.append(path)
    return written
