"""Every format: round trips, all-or-nothing imports, hostile input, exports."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from format_data import (
    BBOX,
    FORMATS,
    INSTANCES,
    INSTANCES_COCO,
    ROTATED,
    SEEDS,
    boxes,
    fixture_ds,
    instances_ds,
    labelme_file,
    mutated,
    objects_of,
    one_image_ds,
    rich_dataset,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from synthetic import write_image

import hardex_nb as hx
from hardex_nb import FormatError


@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip(tmp_path, fmt):
    ds = rich_dataset(tmp_path)
    out = tmp_path / "out"
    getattr(ds, f"export_{fmt}")(out)
    back = hx.Dataset.create(tmp_path / "back", task="detection", labels=[])
    img_dir = {"labelme": out, "voc": out / "JPEGImages"}.get(fmt, out / "images")
    assert len(back.add_images(img_dir).added) == 4
    getattr(back, f"import_{fmt}")(out)
    a, b = boxes(ds), boxes(back)
    if fmt == "yolo":  # YOLO carries boxes and polygons only
        a = a[a.kind != "ignore"].reset_index(drop=True)
        a["kind"] = a["kind"].astype(str).replace("text", "box")
    assert a["name"].tolist() == b["name"].tolist()
    assert a["kind"].astype(str).tolist() == b["kind"].astype(str).tolist()
    assert a["label"].astype(str).tolist() == b["label"].astype(str).tolist()
    np.testing.assert_allclose(a[["x0", "y0", "x1", "y1"]], b[["x0", "y0", "x1", "y1"]], atol=1e-6)
    for pa, pb in zip(a["points"], b["points"]):
        if pa is not None:
            np.testing.assert_allclose(pa, pb, atol=1e-6)
    if fmt != "yolo":
        assert a["text"].tolist() == b["text"].tolist()
        assert a["hard_type"].astype(str).tolist() == b["hard_type"].astype(str).tolist()
        assert a["origin"].astype(str).tolist() == b["origin"].astype(str).tolist()
        np.testing.assert_allclose(a["score"].astype(float), b["score"].astype(float))
        cols = ["name", "hard", "hard_reasons", "status"]
        sa = ds.samples[cols].sort_values("name").reset_index(drop=True)
        sb = back.samples[cols].sort_values("name").reset_index(drop=True)
        pd.testing.assert_frame_equal(sa, sb)


def test_failed_import_lists_every_bad_file_and_changes_nothing(tmp_path):
    ds = fixture_ds(tmp_path)
    src = tmp_path / "labels"
    shutil.copytree(BBOX / "data_annotated", src)
    (src / "2011_000006.json").write_text('{"shapes": [\n  {"label": "x", "points": [1, 2]\n')
    doc = json.loads((src / "2011_000025.json").read_text())
    doc["shapes"][0]["points"] = [[float("nan"), 1], [3, 4]]
    (src / "2011_000025.json").write_text(json.dumps(doc))
    before = (ds.samples, ds.annotations, ds.label_names)
    with pytest.raises(FormatError) as err:
        ds.import_labelme(src)
    message = str(err.value)
    assert "dataset is unchanged" in message
    assert "2011_000006.json: line 3" in message
    assert "2011_000025.json: shapes[0]" in message and "not finite" in message
    pd.testing.assert_frame_equal(ds.samples, before[0])
    assert ds.annotations.empty and ds.label_names == before[2] == []
    assert hx.Dataset.open(ds.path).annotations.empty


def test_unknown_labels_and_outside_boxes_follow_the_options(tmp_path):
    ds = hx.Dataset.create(tmp_path / "d", task="detection", labels=["person"])
    ds.add_images(BBOX / "data_annotated")
    with pytest.raises(FormatError, match="label 'bus' is not in the label set"):
        ds.import_voc(BBOX / "voc_annotations", unknown_labels="error")
    assert ds.annotations.empty
    src = tmp_path / "voc"
    shutil.copytree(BBOX / "voc_annotations", src)
    xml = (src / "2011_000003.xml").read_text().replace("<xmax>500.0</xmax>", "<xmax>520.5</xmax>")
    (src / "2011_000003.xml").write_text(xml)
    with pytest.raises(FormatError, match=r"2011_000003.xml: object\[1\]: box .* reaches outside"):
        ds.import_voc(src, outside="error")
    result = ds.import_voc(src)
    assert result.clipped == ["2011_000003.xml: object[1]"]
    assert ds.annotations.x1.max() == 500.0


@pytest.mark.parametrize("fmt", FORMATS + ROTATED)
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_parsers_raise_only_format_error(fmt, data, fuzz_ds, tmp_path_factory):
    name, seed = SEEDS[fmt]
    payload = data.draw(st.one_of(st.binary(max_size=300), mutated(seed)))
    folder = tmp_path_factory.mktemp("f")
    (folder / name).write_bytes(payload)
    if fmt == "yolo":
        (folder / "classes.txt").write_text("person\nbus\n")
    if fmt == "manifest":
        (folder / "a.xml").write_bytes(SEEDS["voc"][1])
    before = len(fuzz_ds.annotations)
    try:
        result = getattr(fuzz_ds, f"import_{fmt}")(folder)
    except FormatError:
        assert len(fuzz_ds.annotations) == before
    else:
        fuzz_ds.delete_annotations(result.annotations)


@pytest.mark.parametrize(
    "fmt, write, expected",
    [
        (
            "labelme",
            lambda d: labelme_file(
                d,
                '[{"label": "a", "shape_type": "rectangle", "points": '
                f"[[1, 1], [{10**400}, 5]]}}]",
            ),
            r"x\.json: shapes\[0\]: points: 1000.*too large",
        ),
        (
            "coco",
            lambda d: (
                d.mkdir(),
                (d / "c.json").write_text(
                    '{"images": [{"id": 1, "file_name": "x.png", "width": 60, "height": 40}], '
                    f'"annotations": [{{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, {10**400}, 5]}}], '
                    '"categories": [{"id": 1, "name": "a"}]}'
                ),
                d,
            )[-1],
            r"c\.json: annotations\[0\]: bbox: 1000.*too large",
        ),
        (
            "labelme",
            lambda d: (d.mkdir(), (d / "x.json").write_text("[" * 10000 + "]" * 10000), d)[-1],
            r"x\.json: JSON nested too deeply",
        ),
        (
            "coco",
            lambda d: (
                d.mkdir(),
                (d / "c.json").write_text('{"images": ' + "[" * 10000 + "]" * 10000 + "}"),
                d,
            )[-1],
            r"c\.json: JSON nested too deeply",
        ),
        (
            "manifest",
            lambda d: (
                d.mkdir(),
                (d / "m.manifest").write_text(
                    '{"source": "x.png", "annotation": ' + "[" * 10000 + "]" * 10000 + "}\n"
                ),
                d,
            )[-1],
            r"m\.manifest: line 1: JSON nested too deeply",
        ),
        (
            "labelme",
            lambda d: labelme_file(
                d, '[{"label": "\\ud800", "shape_type": "rectangle", "points": [[1, 1], [9, 5]]}]'
            ),
            r"x\.json: shapes\[0\]: label '\\ud800' is not valid Unicode",
        ),
    ],
)
def test_hostile_values_are_format_errors_naming_file_and_field(tmp_path, fmt, write, expected):
    ds = one_image_ds(tmp_path)
    before = boxes(ds)
    with pytest.raises(FormatError, match=expected):
        ds.import_annotations(fmt, write(tmp_path / "src")) if hasattr(
            ds, "import_annotations"
        ) else getattr(ds, f"import_{fmt}")(write(tmp_path / "src"))
    pd.testing.assert_frame_equal(boxes(ds), before)
    with pytest.raises(hx.ValidationError, match="not valid Unicode"):
        ds.add_label("\ud800")


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_object_in_pieces_round_trips(tmp_path, fmt):
    ds = instances_ds(tmp_path)
    ds.import_labelme(INSTANCES)
    ds.export_annotations(fmt, tmp_path / "out") if hasattr(ds, "export_annotations") else getattr(
        ds, f"export_{fmt}"
    )(tmp_path / "out")
    back = instances_ds(tmp_path, "back")
    getattr(back, f"import_{fmt}")(tmp_path / "out")
    sofa = back.annotations[back.annotations["label"] == "sofa"]
    assert len(sofa) == 1
    ignore = back.annotations[back.annotations["kind"] == "ignore"]
    assert len(ignore) == (0 if fmt == "yolo" else 2)  # YOLO has no ignore regions
    if fmt != "yolo":  # kept as polygons
        assert sorted(len(p) for p in ignore["points"]) == sorted(
            len(p) for p in ds.annotations.loc[ds.annotations["kind"] == "ignore", "points"]
        )
    if fmt == "yolo":  # one ring per line: the largest piece is kept (README)
        assert len(sofa["points"].iloc[0]) > 4 and not isinstance(
            sofa["points"].iloc[0][0][0], list
        )
    else:
        assert len(sofa["points"].iloc[0]) == 4
        assert objects_of(back) == objects_of(ds)


def test_images_listed_with_no_objects_are_labeled_negatives_in_every_format(tmp_path):
    ds = instances_ds(tmp_path)
    doc = json.loads((INSTANCES_COCO).read_text())
    negative_id = doc["images"][0]["id"]  # 2011_000003 loses its objects
    doc["annotations"] = [a for a in doc["annotations"] if a["image_id"] != negative_id]
    (tmp_path / "neg.json").write_text(json.dumps(doc))
    ds.import_coco(tmp_path / "neg.json")
    s = ds.samples.set_index("name")
    assert s.loc["2011_000003.jpg", "status"] == "labeled"
    assert (
        ds.annotations.merge(ds.samples, on="sample_id")["name"] == "2011_000003.jpg"
    ).sum() == 0
    for fmt in FORMATS + ROTATED:
        getattr(ds, f"export_{fmt}")(tmp_path / f"out_{fmt}")
        back = instances_ds(tmp_path, f"back_{fmt}")
        getattr(back, f"import_{fmt}")(tmp_path / f"out_{fmt}")
        status = back.samples.set_index("name")["status"]
        assert status.loc["2011_000003.jpg"] == "labeled", fmt
        assert (status == "labeled").all(), fmt


def test_export_refuses_a_used_folder_unless_overwrite_and_keeps_shared_names_apart(tmp_path):
    ds = hx.Dataset.create(tmp_path / "d", task="detection", labels=["a", "b"])
    one = write_image(tmp_path / "one" / "x.png", 60, 40, seed=1)
    two = write_image(tmp_path / "two" / "x.png", 60, 40, seed=2)
    first, second = ds.add_images([one, two]).added
    ds.add_box(first, "a", 1, 1, 20, 20)
    ds.add_box(second, "b", 5, 5, 30, 30)
    ds.export_yolo(tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").rglob("x_*")) == [
        f"x_{first}.png",
        f"x_{first}.txt",
        f"x_{second}.png",
        f"x_{second}.txt",
    ]
    with pytest.raises(FormatError, match="is not empty.*overwrite=True"):
        ds.export_yolo(tmp_path / "out")
    (tmp_path / "out" / "stale.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    ds.delete_label("b")
    ds.export_yolo(tmp_path / "out", overwrite=True)
    assert not (tmp_path / "out" / "stale.txt").exists()
    assert (tmp_path / "out" / "classes.txt").read_text().split() == ["a"]
    with pytest.raises(FormatError, match="refusing to replace"):
        ds.export_yolo(ds.path, overwrite=True)


def test_from_files_is_all_or_nothing(tmp_path):
    with pytest.raises(FormatError, match=r"images not found; no dataset was created"):
        hx.Dataset.from_coco(INSTANCES_COCO, into=tmp_path / "c", images=tmp_path)
    assert not (tmp_path / "c").exists()
    bad = tmp_path / "bad"
    shutil.copytree(INSTANCES, bad)
    (bad / "2011_000006.jpg").write_bytes(b"not an image")
    with pytest.raises(FormatError, match="images refused"):
        hx.Dataset.from_labelme(bad, into=tmp_path / "j")
    assert not (tmp_path / "j").exists()


def test_exif_rotated_jpeg_is_stored_upright_and_boxes_land_where_drawn(tmp_path):
    from PIL import Image

    pixels = np.zeros((40, 80, 3), np.uint8)
    pixels[:, :40] = 255  # stored 80×40, left half white
    img = Image.fromarray(pixels)
    exif = img.getexif()
    exif[0x0112] = 6  # shown turned 90° clockwise: 40×80, top half white
    img.save(tmp_path / "phone.jpg", exif=exif.tobytes(), quality=95)
    ds = hx.Dataset.create(tmp_path / "d", task="detection", labels=["white"])
    sid = ds.add_images([tmp_path / "phone.jpg"]).added[0]
    assert (ds.sample(sid)["width"], ds.sample(sid)["height"]) == (40, 80)
    src = labelme_file(
        tmp_path / "lm",
        '[{"label": "white", "shape_type": "rectangle", "points": [[0, 0], [40, 40]]}]',
    )
    doc = json.loads((src / "x.json").read_text())
    doc.update(imagePath="phone.jpg", imageWidth=40, imageHeight=80)
    (src / "x.json").unlink()
    (src / "phone.json").write_text(json.dumps(doc))
    ds.import_labelme(src)  # an EXIF-aware tool's sizes are accepted
    upright = hx.media.load_array(ds.image_path(sid))
    assert upright.shape == (80, 40, 3)
    assert upright[:40].mean() > 200 and upright[40:].mean() < 50  # the box covers the white


@pytest.mark.parametrize(
    "name, reason",
    [
        ("cat\n", "control character"),
        ("dog ", "spaces"),
        ("a\tb", "control character"),
        ("__ignore__", "reserved"),
    ],
)
def test_label_names_no_format_can_carry_are_refused(tmp_path, name, reason):
    with pytest.raises(hx.ValidationError, match=reason):
        hx.Dataset.create(tmp_path / "d", task="detection", labels=[name])
    ds = hx.Dataset.create(tmp_path / "d2", task="detection", labels=["ok"])
    with pytest.raises(hx.ValidationError, match=reason):
        ds.add_label(name)
    ds.add_images([write_image(tmp_path / "x.png", 60, 40)])
    src = labelme_file(
        tmp_path / "lm",
        json.dumps([{"label": name, "shape_type": "rectangle", "points": [[1, 1], [9, 5]]}]),
    )
    if name == "__ignore__":  # in a file, the reserved name marks an ignore region
        ds.import_labelme(src)
        assert ds.annotations["kind"].tolist() == ["ignore"] and ds.label_names == ["ok"]
        return
    with pytest.raises(FormatError, match=reason):
        ds.import_labelme(src)


def test_a_sample_can_be_renamed_for_export(tmp_path):
    ds = one_image_ds(tmp_path)
    sid = int(ds.samples.sample_id[0])
    ds.rename_sample(sid, "renamed.png")
    ds.confirm([sid])
    assert hx.Dataset.open(ds.path).sample(sid)["name"] == "renamed.png"
    ds.export_yolo(tmp_path / "out")
    assert (tmp_path / "out" / "images" / "renamed.png").exists()
    for bad in ("a/b.png", "x.jpg", "", "l" * 300 + ".png"):
        with pytest.raises(hx.ValidationError):
            ds.rename_sample(sid, bad)


def test_imports_and_exports_of_many_files_show_progress(tmp_path, capsys):
    ds = hx.Dataset.create(tmp_path / "d", task="detection", labels=["a"])
    folder = tmp_path / "many"
    for i in range(200):
        write_image(folder / f"x{i:03d}.png", 40, 40, seed=i)
    ds.add_images(folder)
    (tmp_path / "yolo").mkdir()
    (tmp_path / "yolo" / "classes.txt").write_text("a\n")
    for i in range(200):
        (tmp_path / "yolo" / f"x{i:03d}.txt").write_text("0 0.5 0.5 0.5 0.5\n")
    capsys.readouterr()
    ds.import_yolo(tmp_path / "yolo")
    assert "reading yolo" in capsys.readouterr().err
    ds.export_voc(tmp_path / "out")
    assert "exporting to" in capsys.readouterr().err
    assert len(ds.annotations) == 200


def test_one_registry_drives_every_format_entry_point(tmp_path):
    from hardex_nb import formats

    assert sorted(formats.FORMATS) == sorted(FORMATS + ROTATED)
    ds = fixture_ds(tmp_path)
    for fmt in formats.FORMATS:  # the explicit methods are the generic ones, per format
        assert getattr(hx.Dataset, f"import_{fmt}").__doc__ and getattr(hx.Dataset, f"export_{fmt}")
    ds.import_annotations("labelme", BBOX / "data_annotated")
    with pytest.raises(FormatError, match="format 'tiff': use one of"):
        ds.import_annotations("tiff", BBOX / "data_annotated")
    with pytest.raises(FormatError, match="format 'tiff': use one of"):
        ds.export_annotations("tiff", tmp_path / "out")
    written = ds.export_annotations("voc", tmp_path / "voc")
    assert sorted(p.name for p in written) == sorted(
        p.name for p in (BBOX / "voc_annotations").glob("*.xml")
    )
