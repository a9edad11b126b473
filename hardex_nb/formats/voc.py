"""PASCAL VOC XML, as LabelImg and labelme's converter write it.

Parsed with defusedxml: entity expansion, DTDs and external entities are refused.
``<difficult>``, ``<truncated>`` and ``<occluded>`` are kept on the annotation (evaluation
honours difficult) and written back. Beyond
VOC's fields, hardex_nb writes ``<hard>``, ``<hard_reasons>``, ``<hard_coefficient>`` on the
image and ``<score>``, ``<origin>``, ``<hard_type>``, ``<text>`` and ``<polygon>`` on objects;
other tools ignore them.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import defusedxml.ElementTree as DET
from defusedxml import DefusedXmlException

from ..annotation_rules import IGNORE_LABEL
from ..geometry import polygon_parts
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
    point_pairs,
)

# ModelArts' VOC extension: shapes hardex_nb does not carry, skipped and listed
SKIPPED_SHAPES = ("point", "line", "dashed", "circle", "polyline")


def parse_file(
    path: Path, problems: list[str], where: str | None = None, skipped: list[str] | None = None
) -> ImageLabels | None:
    where = where or path.name
    skipped = skipped if skipped is not None else []
    try:
        root = DET.parse(str(path)).getroot()
    except ET.ParseError as exc:
        line, col = exc.position
        problems.append(f"{where}: line {line} column {col}: invalid XML ({exc})")
        return None
    except DefusedXmlException as exc:
        problems.append(
            f"{where}: refused unsafe XML ({type(exc).__name__}: entities and DTDs are not allowed)"
        )
        return None
    except OSError as exc:
        problems.append(f"{where}: cannot read ({exc})")
        return None
    if root.tag != "annotation":
        problems.append(f"{where}: root element is <{root.tag}>, expected <annotation>")
        return None
    filename = (root.findtext("filename") or "").strip() or path.stem
    # the VOC devkit, LabelImg, mmdetection and torchvision pair an XML with its image by
    # the XML's own name; <filename> is often stale (files renamed, copied from a template)
    img = ImageLabels(
        key=filename, where=where, fallback_keys=[path.stem, (root.findtext("path") or "").strip()]
    )
    img.negative = not root.findall("object")
    img.image_hint = (root.findtext("path") or "").strip() or None
    size = root.find("size")
    if size is not None and size.findtext("width") and size.findtext("height"):
        w = number(size.findtext("width"), f"{where}: size/width", problems)
        h = number(size.findtext("height"), f"{where}: size/height", problems)
        if w == w and h == h and w > 0 and h > 0:  # not NaN: a bad size was noted
            img.width, img.height = int(w), int(h)
    if root.find("hard") is not None:
        img.hard = (root.findtext("hard") or "").strip().lower() in ("1", "true")
        img.hard_reasons = (root.findtext("hard_reasons") or "").strip()
        img.hard_score = optional_number(
            root.findtext("hard_coefficient"), f"{where}: hard_coefficient", problems
        )
    for i, obj in enumerate(root.findall("object")):
        ow = f"{where}: object[{i}]"
        label = (obj.findtext("name") or "").strip()
        extra: dict[str, Any] = dict(
            label=label,
            where=ow,
            score=optional_number(obj.findtext("score"), f"{ow}/score", problems),
            origin=(obj.findtext("origin") or "human").strip(),
            hard_type=hard_type_of(obj.findtext("hard_type"), ow, problems),
            text=obj.findtext("text"),
            **{
                flag: (obj.findtext(flag) or "0").strip().lower() in ("1", "true")
                for flag in ("difficult", "truncated", "occluded")
            },
        )
        if obj.findall("part"):
            skipped.append(
                f"{ow}: {len(obj.findall('part'))} <part> element(s) dropped (parts of "
                "an object are not carried; the object itself is kept)"
            )
        polys = obj.findall("polygon")
        if polys:
            rings = [
                point_pairs([number(c.text, f"{ow}/polygon/{c.tag}", problems) for c in poly])
                for poly in polys
            ]
            img.shapes.append(
                Shape(
                    kind="ignore" if label == IGNORE_LABEL else "polygon",
                    points=rings[0] if len(rings) == 1 else rings,
                    **extra,
                )
            )
            continue
        bnd = obj.find("bndbox")
        if bnd is None:
            other = next((tag for tag in SKIPPED_SHAPES if obj.find(tag) is not None), None)
            if other is not None:
                skipped.append(f"{ow}: <{other}> shape {label!r} (not carried)")
            else:
                problems.append(f"{ow}: no <bndbox> or <polygon>")
            continue
        x0, y0, x1, y1 = (
            number(bnd.findtext(k), f"{ow}/bndbox/{k}", problems)
            for k in ("xmin", "ymin", "xmax", "ymax")
        )
        box = (x0, y0, x1, y1)
        kind = "ignore" if label == IGNORE_LABEL else ("text" if extra["text"] else "box")
        img.shapes.append(Shape(kind=kind, box=box, **extra))
    return img


def read(src: Path, problems: list[str], skipped: list[str]) -> list[ImageLabels]:
    out = []
    for path in files_in(src, (".xml",)):
        img = parse_file(path, problems, skipped=skipped)
        if img is not None:
            out.append(img)
    return out


def to_xml(sample, anns, *, folder: str = "images") -> ET.Element:
    root = ET.Element("annotation")
    ET.SubElement(root, "folder").text = folder
    ET.SubElement(root, "filename").text = str(sample["name"])
    size = ET.SubElement(root, "size")
    ET.SubElement(size, "width").text = str(int(sample["width"]))
    ET.SubElement(size, "height").text = str(int(sample["height"]))
    ET.SubElement(size, "depth").text = "3"
    ET.SubElement(root, "segmented").text = "0"
    ET.SubElement(root, "hard").text = "1" if sample["hard"] else "0"
    ET.SubElement(root, "hard_reasons").text = str(sample["hard_reasons"])
    if none_if_nan(sample["hard_score"]) is not None:
        ET.SubElement(root, "hard_coefficient").text = repr(float(sample["hard_score"]))
    for _, a in anns.iterrows():
        obj = ET.SubElement(root, "object")
        ET.SubElement(obj, "name").text = label_of(a)
        ET.SubElement(obj, "pose").text = "Unspecified"
        for flag in ("truncated", "occluded", "difficult"):
            ET.SubElement(obj, flag).text = "1" if bool(a.get(flag, False)) else "0"
        if isinstance(a["points"], list):  # polygons and polygon ignore regions
            for ring in polygon_parts(a["points"]):  # one <polygon> per piece
                poly = ET.SubElement(obj, "polygon")
                for n, (x, y) in enumerate(ring.tolist(), start=1):
                    ET.SubElement(poly, f"x{n}").text = repr(float(x))
                    ET.SubElement(poly, f"y{n}").text = repr(float(y))
        bnd = ET.SubElement(obj, "bndbox")
        for k in ("x0", "y0", "x1", "y1"):
            tag = {"x0": "xmin", "y0": "ymin", "x1": "xmax", "y1": "ymax"}[k]
            ET.SubElement(bnd, tag).text = repr(float(a[k]))
        if none_if_nan(a["score"]) is not None:
            ET.SubElement(obj, "score").text = repr(float(a["score"]))
        ET.SubElement(obj, "origin").text = str(a["origin"])
        ET.SubElement(obj, "hard_type").text = str(a["hard_type"])
        if none_if_nan(a["text"]):
            ET.SubElement(obj, "text").text = str(a["text"])
    ET.indent(root)
    return root


def write(ds, frames: ExportFrames, out: Path, *, images: bool = True) -> list[Path]:
    """LabelImg layout: ``Annotations/<stem>.xml`` and ``JPEGImages/<name>``."""
    (out / "Annotations").mkdir(parents=True, exist_ok=True)
    if images:
        copy_images(ds, frames.samples, out / "JPEGImages")
    written = []
    for s, anns in frames.each_sample():
        path = out / "Annotations" / f"{Path(s['name']).stem}.xml"
        ET.ElementTree(to_xml(s, anns, folder="JPEGImages")).write(path, encoding="utf-8")
        written.append(path)
    return written
