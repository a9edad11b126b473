"""ModelArts manifest: JSON Lines, one image a line.

Fields read and written: ``source``, ``usage``, ``id``, ``inference-loc``, ``hard``,
``hard-coefficient``, and ``annotation`` entries with ``type``
(``modelarts/image_classification`` or ``modelarts/object_detection``), ``name``,
``property``, ``hard``, ``hard-coefficient``, ``hard-reasons`` (reason ids joined by ``-``),
``confidence``, ``annotated-by``, ``creation-time``, ``annotation-loc`` (a PASCAL VOC XML file
for detection) and ``annotation-format``. Underscore spellings (``annotation_loc``, ...) are
accepted. ``annotated-by`` is ``human`` or ``model/<run version>``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from ..errors import ValidationError
from ..reasons import encode_reasons, parse_reasons
from . import voc
from .common import (
    ExportFrames,
    ImageLabels,
    Shape,
    copy_images,
    files_in,
    none_if_nan,
    optional_number,
)

CLASSIFICATION = "modelarts/image_classification"
DETECTION = "modelarts/object_detection"


def _get(entry: dict, name: str, default=None):
    """A field by its ModelArts (dash) or underscore spelling."""
    if name in entry:
        return entry[name]
    return entry.get(name.replace("-", "_"), default)


def _flag(value) -> bool:
    return str(value).strip().lower() in ("true", "1", "yes") if value is not None else False


def _origin(annotated_by) -> str:
    text = str(annotated_by or "human")
    return (
        text.split("/", 1)[1] if text.startswith("model/") else "human" if text == "human" else text
    )


def _local(loc: str, base: Path) -> Path:
    for prefix in ("file://",):
        if loc.startswith(prefix):
            loc = loc[len(prefix) :]
    path = Path(loc)
    return path if path.is_absolute() else base / path


def read(
    src: Path, problems: list[str], skipped: list[str], *, confined_to: Path | None = None
) -> list[ImageLabels]:
    """Parse every manifest under ``src``. With ``confined_to`` (an extracted archive), an
    ``annotation-loc`` must name a file inside that folder."""
    out = []
    for path in files_in(src, (".manifest", ".jsonl")):
        out += _read_file(path, problems, confined_to, skipped)
    return out


USAGE_SPLITS = {"TRAIN": "train", "EVAL": "val", "VALIDATION": "val", "TEST": "test"}
SPLIT_USAGE = {"train": "TRAIN", "val": "EVAL", "test": "TEST"}


def _read_file(
    path: Path,
    problems: list[str],
    confined_to: Path | None = None,
    skipped: list[str] | None = None,
) -> list[ImageLabels]:
    out: list[ImageLabels] = []
    skipped = skipped if skipped is not None else []
    seen: dict[str, tuple[int, str]] = {}  # source -> (line number, line text)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (UnicodeDecodeError, OSError) as exc:
        problems.append(f"{path.name}: cannot read ({exc})")
        return out
    for n, line in enumerate(lines, start=1):
        where = f"{path.name}: line {n}"
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"{where}: column {exc.colno}: invalid JSON ({exc.msg})")
            continue
        except RecursionError:
            problems.append(f"{where}: JSON nested too deeply to be a manifest line")
            continue
        if not isinstance(entry, dict) or not isinstance(entry.get("source"), str):
            problems.append(f"{where}: field source: every line needs a 'source' string")
            continue
        source = entry["source"]
        if source in seen:
            first, text = seen[source]
            if text.strip() == line.strip():
                skipped.append(f"{where}: repeats line {first} (source {source!r}); read once")
            else:
                problems.append(
                    f"{where}: source {source!r} is also on line {first} with other "
                    "annotations; keep one line per image"
                )
            continue
        seen[source] = (n, line)
        img = ImageLabels(
            key=source.rsplit("/", 1)[-1], where=where, image_hint=str(_local(source, path.parent))
        )
        usage = str(entry.get("usage") or "").upper()
        if usage in USAGE_SPLITS:
            img.split = USAGE_SPLITS[usage]
        if "hard" in entry:
            img.hard = _flag(entry["hard"])
            img.hard_score = optional_number(
                _get(entry, "hard-coefficient"), f"{where}: field hard-coefficient", problems
            )
        annotations = entry.get("annotation") or []
        if not isinstance(annotations, list):
            problems.append(f"{where}: field annotation: expected a list")
            continue
        reasons: list[int] = []
        names: list[str] = []
        hard_flags: list[tuple[bool, float | None]] = []
        for k, ann in enumerate(annotations):
            aw = f"{where}: annotation[{k}]"
            if not isinstance(ann, dict):
                problems.append(f"{aw}: expected an object")
                continue
            try:
                reasons += parse_reasons(_get(ann, "hard-reasons"))
            except ValidationError as exc:
                problems.append(f"{aw}: field hard-reasons: {exc}")
            if "hard" in ann:
                hard_flags.append(
                    (
                        _flag(ann["hard"]),
                        optional_number(
                            _get(ann, "hard-coefficient"), f"{aw}: field hard-coefficient", problems
                        ),
                    )
                )
            kind = ann.get("type")
            if kind == CLASSIFICATION:
                if not isinstance(ann.get("name"), str):
                    problems.append(f"{aw}: field name: a classification label is a string")
                    continue
                if ann["name"] not in names:
                    names.append(ann["name"])
                    img.tags.append(
                        Shape(
                            "tag",
                            ann["name"],
                            score=optional_number(
                                ann.get("confidence"), f"{aw}: field confidence", problems
                            ),
                            origin=_origin(_get(ann, "annotated-by")),
                            where=aw,
                        )
                    )
            elif kind == DETECTION:
                loc = _get(ann, "annotation-loc")
                fmt = str(_get(ann, "annotation-format") or "PASCAL VOC")
                if not isinstance(loc, str):
                    problems.append(f"{aw}: field annotation-loc: needs the path of a VOC XML file")
                    continue
                if fmt.upper().replace("_", " ") != "PASCAL VOC":
                    problems.append(f"{aw}: field annotation-format: {fmt!r} is not 'PASCAL VOC'")
                    continue
                xml_path = _local(loc, path.parent)
                if confined_to is not None and not xml_path.resolve().is_relative_to(
                    confined_to.resolve()
                ):
                    problems.append(
                        f"{aw}: field annotation-loc: {loc} points outside the "
                        "archive; a zipped manifest may only name files inside it"
                    )
                    continue
                if not xml_path.is_file():
                    problems.append(f"{aw}: field annotation-loc: {loc} not found")
                    continue
                parsed = voc.parse_file(
                    xml_path, problems, where=f"{aw}: {xml_path.name}", skipped=skipped
                )
                if (
                    parsed is not None
                    and img.width
                    and parsed.width
                    and ((img.width, img.height) != (parsed.width, parsed.height))
                ):
                    problems.append(
                        f"{aw}: {xml_path.name} says the image is {parsed.width}×"
                        f"{parsed.height} px, another annotation file of this line "
                        f"says {img.width}×{img.height} px"
                    )
                    continue
                if parsed is not None:
                    origin = _origin(_get(ann, "annotated-by"))
                    for shape in parsed.shapes:
                        if shape.origin == "human":
                            shape.origin = origin
                    img.shapes += parsed.shapes
                    img.width = img.width or parsed.width
                    img.height = img.height or parsed.height
                    img.negative = parsed.negative and not img.shapes
            else:
                problems.append(
                    f"{aw}: field type: {kind!r} is not {CLASSIFICATION} or {DETECTION}"
                )
        if len(names) == 1:
            img.label = names[0]
        if img.hard is None and hard_flags:  # hard marked on the annotations only
            img.hard = any(flag for flag, _ in hard_flags)
            scores = [score for _, score in hard_flags if score is not None]
            img.hard_score = max(scores) if scores else None
        if reasons:
            img.hard_reasons = encode_reasons(reasons)
        out.append(img)
    return out


def _annotated_by(tag) -> str:
    origin = "human" if tag is None else str(tag[0])
    return "human" if origin == "human" else f"model/{origin}"


def _confidence(tag) -> dict:
    score = None if tag is None else none_if_nan(tag[1])
    return {} if score is None else {"confidence": float(score)}


def write(
    ds,
    frames: ExportFrames,
    out: Path,
    *,
    images: bool = True,
    name: str = "output.manifest",
    usage: str | None = None,
) -> list[Path]:
    """``<name>`` (JSON Lines), ``Annotations/<stem>.xml`` for detection, ``images/``.

    ``usage``: each line's split as the sample's (``TRAIN``, ``EVAL``, ``TEST``; read back
    as train / val / test) by default, or the one given for every line."""
    out.mkdir(parents=True, exist_ok=True)
    if images:
        copy_images(ds, frames.samples, out / "images")
    by_sample = frames.by_sample()
    now = time.strftime("%Y-%m-%d %H:%M:%S")
    anns_of_tags = {  # (sample, label) -> (origin, score) of a multi-label image's tags
        (int(sid), name): (origin, score)
        for sid, name, origin, score in ds.annotations.query("kind == 'tag'")[
            ["sample_id", "label", "origin", "score"]
        ].itertuples(index=False)
    }
    lines = []
    for _, s in frames.samples.iterrows():
        sid = int(s["sample_id"])
        entry: dict[str, Any] = {
            "source": f"images/{s['name']}",
            "usage": usage or SPLIT_USAGE.get(str(s["split"]), "TRAIN"),
            "id": str(sid),
            "hard": "true" if s["hard"] else "false",
        }
        if none_if_nan(s["hard_score"]) is not None:
            entry["hard-coefficient"] = float(s["hard_score"])
        common = {"hard": entry["hard"], "hard-reasons": s["hard_reasons"], "creation-time": now}
        anns = by_sample.get(sid, frames.annotations.iloc[:0])
        if frames.task == "multilabel":
            entry["annotation"] = [
                {
                    "type": CLASSIFICATION,
                    "name": str(name),
                    "property": {},
                    "annotated-by": _annotated_by(anns_of_tags.get((sid, name))),
                    **_confidence(anns_of_tags.get((sid, name))),
                    **common,
                }
                for name in s["labels"]
            ]
        elif frames.task == "classification":
            entry["annotation"] = (
                [
                    {
                        "type": CLASSIFICATION,
                        "name": str(s["label"]),
                        "property": {},
                        "annotated-by": "human",
                        **common,
                    }
                ]
                if none_if_nan(s["label"]) is not None
                else []
            )
        else:
            (out / "Annotations").mkdir(exist_ok=True)
            xml_path = out / "Annotations" / f"{Path(s['name']).stem}.xml"
            voc.ET.ElementTree(voc.to_xml(s, anns)).write(xml_path, encoding="utf-8")
            origins = set(anns["origin"].astype(str))
            by = "human" if not origins or "human" in origins else f"model/{sorted(origins)[0]}"
            entry["annotation"] = [
                {
                    "type": DETECTION,
                    "annotation-loc": f"Annotations/{xml_path.name}",
                    "annotation-format": "PASCAL VOC",
                    "annotated-by": by,
                    **common,
                }
            ]
        lines.append(json.dumps(entry))
    path = out / name
    path.write_text("".join(f"{line}\n" for line in lines))
    return [path]
