"""ingest.py: names of media copies, what makes two objects the same, content hashes."""

import json

from synthetic import write_image

import hardex_nb as hx
from hardex_nb import ingest


def test_media_names_fit_the_file_systems_255_bytes_and_keep_the_suffix():
    assert ingest.media_name(12, "a.png") == "0000012_a.png"
    long = ingest.media_name(3, "猫" * 120 + ".jpeg")
    assert len(long.encode()) <= 255 and long.endswith(".jpeg") and long.startswith("0000003_猫")
    assert ingest.fit_name("x" * 300 + ".png").endswith("x.png")
    assert len(ingest.fit_name("x" * 300 + ".png").encode()) == 255


def test_an_object_is_the_same_whether_parsed_or_stored():
    parsed = {"kind": "polygon", "label": "a", "x0": 1, "y0": 1, "x1": 9, "y1": 8}
    parsed["points"] = json.dumps([[1, 1], [9, 1], [5, 8]])
    stored = dict(parsed, points=[[1.0, 1.0], [9.0, 1.0], [5.0, 8.0]], score=0.3, origin="V2")
    assert ingest._identity(parsed) == ingest._identity(stored)
    moved = dict(stored, x1=9.5)
    assert ingest._identity(moved) != ingest._identity(stored)
    nan_angle = dict(parsed, kind="box", points=None, angle=float("nan"))
    assert ingest._identity(nan_angle) == ingest._identity(dict(nan_angle, angle=None))


def test_stored_hashes_name_each_image_by_its_bytes(tmp_path):
    ds = hx.Dataset.create(tmp_path / "d", task="classification", labels=["a"])
    a = write_image(tmp_path / "a.png", 40, 40, seed=1)
    (sid,) = ds.add_images([a]).added
    from hardex_nb.media import file_hash

    assert ingest.stored_hashes(ds) == {file_hash(a): sid}
