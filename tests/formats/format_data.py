"""What the format tests share: the real fixture files, small datasets, file builders."""

import json
import shutil
import stat
import zipfile
from pathlib import Path

import numpy as np
from hypothesis import strategies as st
from synthetic import FIXTURES, write_image

import hardex_nb as hx

BBOX = FIXTURES / "labelme" / "bbox_detection"


CLS = FIXTURES / "labelme" / "classification"


FORMATS = ["labelme", "voc", "yolo", "coco", "manifest"]


ROTATED = ["dota"]  # boxes only (turned or not): tested on their own below


def boxes(ds):
    a = ds.annotations.merge(ds.samples[["sample_id", "name"]], on="sample_id")
    return a.sort_values(["name", "x0", "y0", "kind"]).reset_index(drop=True)


def fixture_ds(tmp_path, name="ds"):
    ds = hx.Dataset.create(tmp_path / name, task="detection", labels=[])
    ds.add_images(BBOX / "data_annotated")
    return ds


def rich_dataset(tmp_path) -> hx.Dataset:
    ds = hx.Dataset.create(tmp_path / "rich", task="detection", labels=["cat", "dog", "sign"])
    ids = ds.add_images(
        [write_image(tmp_path / "src" / f"im{i}.png", 120, 90, seed=i) for i in range(4)]
    ).added
    rng = np.random.default_rng(0)
    for sid in ids[:3]:
        for _ in range(3):
            x0, y0 = rng.uniform(0, 60), rng.uniform(0, 40)
            ds.add_box(
                sid,
                str(rng.choice(["cat", "dog"])),
                x0,
                y0,
                x0 + rng.uniform(5, 50),
                y0 + rng.uniform(5, 45),
            )
    ds.add_polygon(ids[0], "dog", [[10.25, 10.5], [60.125, 12], [30, 70.75]])
    ds.add_box(ids[1], "sign", 3.3, 4.4, 50.5, 20.2, text="STOP")
    ds.add_ignore_region(ids[2], 80, 50, 119, 89)
    auto = ds.add_box(ids[3], "cat", 1, 2, 3.5, 4.5, score=0.42, origin="V2")
    ds.update_annotation(auto, hard_type="false_positive")
    ds.set_status(ids[3], "to_confirm")
    ds.mark_hard(ids[1], reasons=[1, 101], score=0.75)
    ds.mark_hard(ids[3], reasons="0")
    return ds


# -- hostile input --------------------------------------------------------------------------
def make_zip(path: Path, members: dict[str, bytes], symlink: str | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, "/etc/passwd")
    return path


XML_BOMB = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<annotation><filename>&lol2;</filename></annotation>"""


XML_EXTERNAL = """<?xml version="1.0"?>
<!DOCTYPE a [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<annotation><filename>&xxe;</filename></annotation>"""


# -- fuzzing: only FormatError may come out -------------------------------------------------
SEEDS = {
    "labelme": ("a.json", (BBOX / "data_annotated" / "2011_000003.json").read_bytes()),
    "voc": ("a.xml", (BBOX / "voc_annotations" / "2011_000003.xml").read_bytes()),
    "yolo": ("a.txt", b"0 0.5 0.5 0.2 0.3\n1 0.1 0.1 0.3 0.2 0.2 0.4\n"),
    "coco": (
        "a.json",
        json.dumps(
            {
                "images": [{"id": 1, "file_name": "2011_000003.jpg", "width": 500, "height": 338}],
                "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 30, 40]}],
                "categories": [{"id": 1, "name": "person"}],
            }
        ).encode(),
    ),
    "manifest": (
        "a.manifest",
        json.dumps(
            {
                "source": "2011_000003.jpg",
                "annotation": [{"type": "modelarts/object_detection", "annotation-loc": "a.xml"}],
            }
        ).encode(),
    ),
    "dota": (
        "2011_000003.txt",
        b"imagesource:GoogleEarth\ngsd:0.1\n"
        b"10 10 60 20 55 45 5 35 person 0\n100 100 150 100 150 140 100 140 bus 1\n",
    ),
}


@st.composite
def mutated(draw, seed: bytes):
    data = bytearray(seed)
    for _ in range(draw(st.integers(0, 8))):
        op = draw(st.sampled_from(["flip", "cut", "insert"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[pos] = draw(st.integers(0, 255))
        elif op == "cut":
            del data[pos : pos + draw(st.integers(1, 40))]
        else:
            data[pos:pos] = draw(st.binary(max_size=20))
    return bytes(data)


def one_image_ds(tmp_path):
    ds = hx.Dataset.create(tmp_path / "hostile", task="detection", labels=["a"])
    ds.add_images([write_image(tmp_path / "x.png", 60, 40)])
    return ds


def labelme_file(folder: Path, shapes_json: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "x.json").write_text(
        f'{{"imagePath": "x.png", "imageWidth": 60, "imageHeight": 40, "shapes": {shapes_json}}}'
    )
    return folder


def zip_of(path: Path, members: list[tuple[str, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members:
            zf.writestr(name, data)
    return path


INSTANCES = FIXTURES / "labelme_instances" / "data_annotated"


INSTANCES_COCO = FIXTURES / "labelme_instances" / "data_dataset_coco" / "annotations.json"


def instances_ds(tmp_path, name="inst"):
    ds = hx.Dataset.create(tmp_path / name, task="detection", labels=[])
    ds.add_images(sorted(INSTANCES.glob("*.jpg")))
    return ds


def objects_of(ds):
    """Per image name: sorted (label, rounded box) of every object (ignore regions apart)."""
    a = boxes(ds)
    out = {}
    for name, part in a[a["kind"] != "ignore"].groupby("name"):
        out[name] = sorted((str(r.label), r.x0, r.y0, r.x1, r.y1) for r in part.itertuples())
    return out


def dota_ds(tmp_path):
    """X-AnyLabeling's DOTA demo labels with a generated image of the demo's size."""
    src = tmp_path / "dota"
    shutil.copytree(FIXTURES / "xanylabeling_dota", src)
    (src / "images").mkdir()
    write_image(src / "images" / "demo_obb.png", 1111, 1182)
    return src, hx.Dataset.from_dota(src / "labelTxt", into=tmp_path / "ds")
