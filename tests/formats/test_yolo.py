"""YOLO txt with data.yaml or classes.txt."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from format_data import BBOX, fixture_ds, objects_of

import hardex_nb as hx
from hardex_nb import FormatError


def test_yolo_and_coco_parsers_name_the_line_or_field(tmp_path):
    ds = fixture_ds(tmp_path)
    y = tmp_path / "yolo"
    y.mkdir()
    (y / "classes.txt").write_text("person\n")
    (y / "2011_000003.txt").write_text("0 0.5 0.5 0.2 0.2\n3 0.5 0.5 0.1 0.1\n0 0.5 zero 1 1\n")
    with pytest.raises(FormatError) as err:
        ds.import_yolo(y)
    assert "2011_000003.txt: line 2: class 3 is not in classes.txt" in str(err.value)
    assert "2011_000003.txt: line 3: 'zero' is not a number" in str(err.value)
    c = tmp_path / "coco.json"
    c.write_text(
        json.dumps(
            {
                "images": [{"id": 1, "file_name": "2011_000003.jpg"}],
                "annotations": [{"id": 1, "image_id": 2, "category_id": 1, "bbox": [0, 0, 1, 1]}],
                "categories": [{"id": 1, "name": "person"}],
            }
        )
    )
    with pytest.raises(FormatError, match=r"annotations\[0\]: image_id 2 is not in 'images'"):
        ds.import_coco(c)
    assert ds.annotations.empty


def test_from_yolo_reads_data_yaml_layouts_and_keeps_splits(tmp_path):
    """Ultralytics (names as a mapping, images/train + labels/train) and Roboflow (names as a
    list, ../train/images paths, valid/) layouts."""
    src = fixture_ds(tmp_path)
    src.import_labelme(BBOX / "data_annotated")
    src.export_yolo(tmp_path / "flat")
    names = (tmp_path / "flat" / "classes.txt").read_text().split()
    stems = sorted(p.stem for p in (tmp_path / "flat" / "labels").glob("*.txt"))
    images = {p.stem: p for p in (tmp_path / "flat").rglob("*.jpg")}
    layouts = {
        "ultra": (
            {
                "path": ".",
                "train": "images/train",
                "val": "images/val",
                "names": dict(enumerate(names)),
            },
            lambda split: (f"images/{split}", f"labels/{split}"),
        ),
        "robo": (
            {
                "train": "../train/images",
                "val": "../valid/images",
                "nc": len(names),
                "names": names,
            },
            lambda split: (
                f"{'valid' if split == 'val' else split}/images",
                f"{'valid' if split == 'val' else split}/labels",
            ),
        ),
    }
    import yaml

    for layout, (data, folders) in layouts.items():
        root = tmp_path / layout
        for k, stem in enumerate(stems):
            split = "val" if k == 0 else "train"
            img_dir, lab_dir = (root / f for f in folders(split))
            img_dir.mkdir(parents=True, exist_ok=True)
            lab_dir.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(images[stem], img_dir / images[stem].name)
            shutil.copyfile(tmp_path / "flat" / "labels" / f"{stem}.txt", lab_dir / f"{stem}.txt")
        (root / "data.yaml").write_text(yaml.safe_dump(data))
        ds = hx.Dataset.from_yolo(root, into=tmp_path / f"ds_{layout}")
        assert ds.label_names == names
        assert dict(zip(ds.samples["name"].map(lambda n: Path(n).stem), ds.samples["split"])) == {
            stem: ("val" if k == 0 else "train") for k, stem in enumerate(stems)
        }
        got, want = objects_of(ds), objects_of(src)
        assert sorted(got) == sorted(want)
        for name in got:
            np.testing.assert_allclose(
                [g[1:] for g in got[name]], [w[1:] for w in want[name]], atol=1e-3
            )
