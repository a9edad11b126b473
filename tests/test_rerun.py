"""A notebook cell is run twice: every call that writes gives the same dataset the second
time, or refuses and says why; hostile files read nothing from outside what they were
given; a killed import or export leaves nothing half-written."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from synthetic import write_image

import hardex_nb as hx
from hardex_nb import FormatError, JobError, ValidationError, hard
from hardex_nb.staging import PREFIX

FIXTURES = Path(__file__).resolve().parent / "fixtures"
LABELME = FIXTURES / "labelme" / "bbox_detection" / "data_annotated"


def _labelme_source(tmp_path) -> Path:
    """The labelme project's example photos and JSON (tests/fixtures/labelme)."""
    src = tmp_path / "labelme"
    shutil.copytree(LABELME, src)
    return src


def test_importing_the_same_files_twice_adds_nothing_the_second_time(tmp_path):
    src = _labelme_source(tmp_path)
    ds = hx.Dataset.create(tmp_path / "d", task="detection")
    ds.add_images(src)
    first = ds.import_labelme(src)
    boxes = len(ds.annotations)
    assert boxes == len(first.annotations) > 0 and first.already == 0
    again = ds.import_labelme(src)
    assert len(ds.annotations) == boxes and again.annotations == []
    assert again.already == boxes and f"{boxes} already there" in repr(again)
    # VOC of the same boxes, exported and read back: still nothing new
    ds.export_voc(tmp_path / "voc")
    assert ds.import_voc(tmp_path / "voc").already == boxes and len(ds.annotations) == boxes
    # replace: the file's objects, once; add: stacked on purpose
    replaced = ds.import_labelme(src, mode="replace")
    assert len(ds.annotations) == boxes and len(replaced.annotations) == boxes
    ds.import_labelme(src, mode="add")
    assert len(ds.annotations) == 2 * boxes
    with pytest.raises(ValueError, match="mode='twice'"):
        ds.import_labelme(src, mode="twice")


def test_merge_keeps_a_persons_edit_and_adds_only_what_is_new(tmp_path):
    src = _labelme_source(tmp_path)
    ds = hx.Dataset.create(tmp_path / "d", task="detection")
    ds.add_images(src)
    ds.import_labelme(src)
    a = ds.annotations.iloc[0]
    ds.update_annotation(int(a["ann_id"]), x1=float(a["x1"]) - 3)  # a person moved a box
    again = ds.import_labelme(src)
    # the moved box is a new object to the file: it comes back beside the person's one
    assert len(again.annotations) == 1 and again.already == len(ds.annotations) - 2
    assert (ds.annotations["x1"] == float(a["x1"]) - 3).sum() == 1


def test_adding_the_same_folder_twice_adds_nothing_the_second_time(tmp_path):
    folder = tmp_path / "imgs"
    for i in range(4):
        write_image(folder / f"a_{i}.png", 40, 40, seed=i)
    shutil.copy(folder / "a_0.png", folder / "copy_of_a_0.png")  # same bytes, new name
    ds = hx.Dataset.create(tmp_path / "d", task="classification", labels=["x", "y"])
    report = ds.add_images(folder)
    assert len(report.added) == 4 and len(report.duplicates) == 1
    ((name, sid),) = report.duplicates
    assert {name, ds.sample(sid)["name"]} == {"a_0.png", "copy_of_a_0.png"}
    again = ds.add_images(folder)
    assert again.added == [] and len(again.duplicates) == 5 and len(ds.samples) == 4
    assert "0 added, 5 already in the dataset" in repr(again)
    # a zip of the same files, and a single file: still the same samples
    shutil.make_archive(str(tmp_path / "z"), "zip", folder)
    assert ds.add_images(tmp_path / "z.zip").added == [] and len(ds.samples) == 4
    forced = ds.add_images([folder / "a_1.png"], duplicates="add")
    assert len(forced.added) == 1 and len(ds.samples) == 5
    with pytest.raises(ValidationError, match="duplicates='twice'"):
        ds.add_images(folder, duplicates="twice")


def test_a_dataset_from_before_content_hashes_finds_its_duplicates(tmp_path):
    import sqlite3

    folder = tmp_path / "imgs"
    write_image(folder / "a.png", 40, 40)
    ds = hx.Dataset.create(tmp_path / "d", task="classification", labels=["x"])
    ds.add_images(folder)
    ds.close()
    con = sqlite3.connect(tmp_path / "d" / "hardex.sqlite")
    con.execute("UPDATE samples SET sha256=NULL")  # as a schema-5 dataset holds it
    con.execute("UPDATE meta SET value='5' WHERE key='schema_version'")
    con.commit()
    con.close()
    ds = hx.Dataset.open(tmp_path / "d")
    assert ds.add_images(folder).added == [] and len(ds.samples) == 1
    assert ds.samples["sha256"].notna().all()


def _fixed_detector(ds, boxes_per_image=2):
    """A wrapped model that finds the same boxes in every image (no training)."""

    def model(x):
        out = []
        for _ in range(len(x)):
            b = torch.tensor([[4.0, 4.0, 20.0, 20.0], [30.0, 30.0, 50.0, 44.0]])[:boxes_per_image]
            out.append(
                {
                    "boxes": b,
                    "labels": torch.ones(len(b), dtype=torch.int64),
                    "scores": torch.tensor([0.9, 0.8])[: len(b)],
                }
            )
        return out

    return hx.wrap_model(ds, model, image_size=64)


def _detection_ds(tmp_path, n=14):
    ds = hx.Dataset.create(tmp_path / "det", task="detection", labels=["a", "b"])
    folder = tmp_path / "imgs"
    for i in range(n):
        write_image(folder / f"i_{i}.png", 64, 64, seed=100 + i)
    ids = ds.add_images(folder).added
    for k, sid in enumerate(ids[:10]):  # 5 labeled images per label
        ds.add_box(sid, "a" if k % 2 else "b", 2, 2, 30, 30)
        ds.set_status(sid, "labeled")
    return ds, ids


def test_auto_label_again_after_sending_images_back_replaces_the_model_boxes(tmp_path):
    ds, ids = _detection_ds(tmp_path)
    run = _fixed_detector(ds)
    rest = ids[10:]
    first = hx.auto_label(ds, run, progress=False)
    model_boxes = int((ds.annotations["origin"] == run.version).sum())
    assert len(first.sample_ids) == len(rest) and model_boxes >= 2 * len(rest)
    ds.add_box(rest[0], "a", 40, 2, 60, 20)  # a person adds a box while reviewing
    ds.set_status(rest, "unlabeled")  # as the notebooks send auto-labels back
    hx.auto_label(ds, run, progress=False)
    again = ds.annotations[ds.annotations["sample_id"].isin(rest)]
    assert (again["origin"] == run.version).sum() == model_boxes  # replaced, not stacked
    assert (again["origin"] == "human").sum() == 1  # the person's box stays
    # and the record of the job is there with it
    assert ds.results["key"].tolist().count(f"auto_label_{run.version}") == 1


def test_marking_an_auto_labeled_image_hard_keeps_the_models_reasons_and_score(tmp_path):
    ds, ids = _detection_ds(tmp_path, n=12)
    sid = ids[11]
    ds.mark_hard(sid, reasons=[1], score=0.845, replace=True)  # as auto_label leaves it
    g = hx.Gallery(ds)
    g.handle({"action": "mark_hard", "ids": [sid], "hard": True})
    row = ds.sample(sid)
    assert row["hard"] and row["hard_reasons"] == "1-100" and row["hard_score"] == 0.845
    ann = hx.Annotator(ds, sample_ids=[sid])
    ann.handle({"action": "set_hard", "hard": False})
    row = ds.sample(sid)
    assert not row["hard"] and row["hard_reasons"] == "1" and row["hard_score"] == 0.845
    ann.handle({"action": "undo"})
    row = ds.sample(sid)
    assert row["hard"] and row["hard_reasons"] == "1-100" and row["hard_score"] == 0.845
    ds.mark_hard(ids[10])  # no reason given: by hand
    assert ds.sample(ids[10])["hard_reasons"] == "100"
    assert ds.query(hard=True)["hard_reasons"].str.len().gt(0).all()


def test_a_classifiers_hard_flag_always_names_a_reason():
    rng = np.random.default_rng(0)
    top = rng.uniform(0.62, 0.99, size=200)  # above the low-confidence bar, margins wide
    p = np.stack([top, 1 - top], axis=1)
    table = hard.classification_hardness(p, tta_probs=p[None])
    assert table["hard"].sum() == hard.expected_errors(p) > 0
    assert (table.loc[table["hard"], "reasons"] != "").all()


def _split_ds(tmp_path):
    ds = hx.Dataset.create(tmp_path / "d", task="detection", labels=["a"])
    folder = tmp_path / "imgs"
    for i in range(6):
        write_image(folder / f"s_{i}.png", 48, 40, seed=200 + i)
    ids = ds.add_images(folder).added
    for sid in ids:
        ds.add_box(sid, "a", 3, 3, 20, 20)
        ds.set_status(sid, "labeled")
    ds.set_split(ids[2:4], "val")
    ds.set_split(ids[4:], "test")
    return ds


@pytest.mark.parametrize("fmt", ["manifest", "yolo", "coco"])
def test_splits_survive_the_formats_that_carry_them(tmp_path, fmt):
    ds = _split_ds(tmp_path)
    want = dict(zip(ds.samples["name"], ds.samples["split"].astype(str)))
    out = tmp_path / "out"
    options = {"splits": True} if fmt == "coco" else {}
    files = ds.export_annotations(fmt, out, **options)
    assert files.notes == []
    again = ds.export_annotations(fmt, tmp_path / "out2", **options)  # the same export twice
    assert sorted(p.relative_to(tmp_path / "out2") for p in again) == sorted(
        p.relative_to(out) for p in files
    )
    back = hx.Dataset.from_files(fmt, out, into=tmp_path / "back")
    assert dict(zip(back.samples["name"], back.samples["split"].astype(str))) == want
    if fmt == "manifest":
        usage = [json.loads(line)["usage"] for line in files[0].read_text().splitlines()]
        assert sorted(usage) == ["EVAL", "EVAL", "TEST", "TEST", "TRAIN", "TRAIN"]
    if fmt == "coco":
        assert sorted(p.name for p in files) == [
            "annotations_test.json",
            "annotations_train.json",
            "annotations_val.json",
        ]


@pytest.mark.parametrize("fmt", ["coco", "voc", "labelme", "dota"])
def test_a_format_without_splits_says_it_drops_them(tmp_path, fmt):
    ds = _split_ds(tmp_path)
    with pytest.warns(UserWarning, match="carry no split: 2 val, 2 test"):
        files = ds.export_annotations(fmt, tmp_path / "out")
    assert any("carry no split" in n for n in files.notes) and "note:" in repr(files)


def test_collect_of_an_empty_folder_is_refused_filtered_or_not(tmp_path):
    ds, _ = _detection_ds(tmp_path)
    run = _fixed_detector(ds)
    into = hx.Dataset.create(tmp_path / "into", task="detection", labels=["a", "b"])
    (tmp_path / "empty").mkdir()
    for filtered in (True, False):
        with pytest.raises(JobError, match="no usable image"):
            hx.collect(run, tmp_path / "empty", into=into, filter_hard=filtered, progress=False)
    assert len(into.samples) == 0


def test_collect_twice_adds_the_batch_once(tmp_path):
    ds, _ = _detection_ds(tmp_path)
    run = _fixed_detector(ds)
    into = hx.Dataset.create(tmp_path / "into", task="detection", labels=["a", "b"])
    batch = tmp_path / "batch"
    for i in range(3):
        write_image(batch / f"b_{i}.png", 64, 64, seed=300 + i)
    report, _ = hx.collect(run, batch, into=into, filter_hard=False, progress=False)
    assert len(report.added) == 3
    report, _ = hx.collect(run, batch, into=into, filter_hard=False, progress=False)
    assert report.added == [] and len(report.duplicates) == 3 and len(into.samples) == 3


def test_delete_result_and_load_refuse_a_key_that_is_not_text(tmp_path):
    ds = hx.Dataset.create(tmp_path / "d", task="classification", labels=["x"])
    for bad in (3, None, ["k"], "a b"):
        with pytest.raises(ValidationError, match="key="):
            ds.delete_result(bad)
        with pytest.raises(ValidationError, match="key="):
            hx.load_result(ds, bad)


def test_train_refuses_a_bad_val_fraction_and_records_a_failure_after_it_started(
    tmp_path, monkeypatch
):
    import importlib

    from hardex_nb.cli import main

    train_module = importlib.import_module("hardex_nb.jobs.train")

    ds, _ = _detection_ds(tmp_path)
    assert main(["train", "--dataset", str(ds.path), "--val-fraction", "2"]) == 2
    assert ds.runs.empty or not (ds.runs["status"] == "running").any()

    def broken(*args, **kwargs):
        raise RuntimeError("split failed")

    monkeypatch.setattr(train_module, "_split", broken)
    with pytest.raises(RuntimeError, match="split failed"):
        hx.train(ds, epochs=1, progress=False)
    assert ds.runs["status"].iloc[-1] == "failed"


# -- hostile annotation files ----------------------------------------------------------------
def _coco_one(tmp_path, file_name: str) -> tuple[Path, Path]:
    images = tmp_path / "images"
    write_image(images / "inside.png", 40, 30, seed=1)
    doc = {
        "images": [{"id": 1, "file_name": file_name, "width": 40, "height": 30}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 10, 10]}],
        "categories": [{"id": 1, "name": "a"}],
    }
    (tmp_path / "ann.json").write_text(json.dumps(doc))
    return tmp_path / "ann.json", images


@pytest.mark.parametrize("how", ["dotdot", "absolute", "link"])
def test_an_annotation_file_cannot_pull_in_a_file_from_outside(tmp_path, how):
    secret = write_image(tmp_path / "secret.png", 40, 30, seed=9)
    name = {"dotdot": "../secret.png", "absolute": str(secret), "link": "linked.png"}[how]
    ann, images = _coco_one(tmp_path, name)
    if how == "link":
        (images / "linked.png").symlink_to(secret)
    with pytest.raises(FormatError, match="outside") as err:
        hx.Dataset.from_coco(ann, images=images, into=tmp_path / "ds")
    assert "copy the image there" in str(err.value)
    assert not (tmp_path / "ds").exists()
    assert not list(tmp_path.glob(f"{PREFIX}*"))


def test_labelme_image_path_out_of_its_folder_is_refused(tmp_path):
    src = tmp_path / "given"
    src.mkdir()
    doc = json.loads((LABELME / "2011_000003.json").read_text())
    shutil.copy(LABELME / "2011_000003.jpg", tmp_path / "elsewhere.jpg")  # outside src
    doc["imagePath"] = "../elsewhere.jpg"
    (src / "2011_000003.json").write_text(json.dumps(doc))
    with pytest.raises(FormatError, match="outside"):
        hx.Dataset.from_labelme(src, into=tmp_path / "ds")
    assert not (tmp_path / "ds").exists()


def test_a_coco_file_name_is_never_looked_up_in_the_working_directory(tmp_path, monkeypatch):
    ann, images = _coco_one(tmp_path, "inside.png")
    work = tmp_path / "work"
    write_image(work / "inside.png", 40, 30, seed=5)  # same name, other pixels
    monkeypatch.chdir(work)
    ds = hx.Dataset.from_coco(ann, images=images, into=tmp_path / "ds")
    from hardex_nb.media import file_hash

    assert ds.samples["sha256"].tolist() == [file_hash(images / "inside.png")]


# -- kills ----------------------------------------------------------------------------------------
def _killed(script: str, tmp_path: Path) -> None:
    """Run ``script`` in a fresh interpreter that kills itself (SIGKILL) where it says."""
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr


def test_from_coco_killed_part_way_leaves_nothing_and_is_swept(tmp_path):
    src = _labelme_source(tmp_path)
    hx.Dataset.from_labelme(src, into=tmp_path / "lm").export_coco(tmp_path / "coco")
    coco = tmp_path / "coco" / "annotations.json"
    _killed(
        f"""
        import os, signal
        import hardex_nb as hx
        from hardex_nb import ingest
        def die(*a, **k):
            os.kill(os.getpid(), signal.SIGKILL)
        ingest.apply_import = die
        hx.Dataset.from_coco({str(coco)!r}, into={str(tmp_path / "ds")!r})
        """,
        tmp_path,
    )
    assert not (tmp_path / "ds").exists()
    (left,) = tmp_path.glob(f"{PREFIX}ds.*")  # the dead process's staging folder
    ds = hx.Dataset.from_coco(coco, into=tmp_path / "ds")
    assert len(ds.samples) == 3 and not left.exists()


def test_an_export_killed_part_way_leaves_no_half_target_and_the_next_one_works(tmp_path):
    ds = _split_ds(tmp_path)
    ds.close()
    _killed(
        f"""
        import os, signal
        import hardex_nb as hx
        from hardex_nb.formats import common
        copied = []
        def copy(src, dst):
            copied.append(dst)
            if len(copied) == 3:
                os.kill(os.getpid(), signal.SIGKILL)
            with open(src, "rb") as f, open(dst, "wb") as g:
                g.write(f.read())
        common.shutil.copyfile = copy
        hx.Dataset.open({str(ds.path)!r}).export_coco({str(tmp_path / "out")!r})
        """,
        tmp_path,
    )
    assert not (tmp_path / "out").exists()
    assert len(list(tmp_path.glob(f"{PREFIX}out.*"))) == 1
    files = hx.Dataset.open(ds.path).export_coco(tmp_path / "out")
    assert files and not list(tmp_path.glob(f"{PREFIX}*"))
    # overwrite replaces it whole, and leaves no staging folder either
    hx.Dataset.open(ds.path).export_coco(tmp_path / "out", overwrite=True)
    assert (tmp_path / "out" / "annotations.json").exists()
    assert not list(tmp_path.glob(f"{PREFIX}*")) and not list(tmp_path.glob(".out-*"))


def test_a_job_whose_record_fails_writes_none_of_its_fields(tmp_path, monkeypatch):
    """The result record is written in the job's own transaction: when it cannot be written,
    the auto-labels it describes are rolled back with it (as after a kill between the two)."""
    from hardex_nb import runlog

    ds, ids = _detection_ds(tmp_path)
    run = _fixed_detector(ds)
    before = (ds.samples["status"].tolist(), len(ds.annotations))

    def broken(*args, **kwargs):
        raise OSError("disk full while recording")

    monkeypatch.setattr(runlog, "record_result", broken)
    with pytest.raises(OSError, match="disk full"):
        hx.auto_label(ds, run, progress=False)
    again = hx.Dataset.open(ds.path)
    assert (again.samples["status"].tolist(), len(again.annotations)) == before
    assert again.results.empty and again.jobs().empty  # the claim is released too


def test_hardex_collect_creates_the_target_when_asked(trained_detector, tmp_path):
    from hardex_nb.cli import main

    ds, run, _, _ = trained_detector
    batch = tmp_path / "batch"
    for i in range(3):
        write_image(batch / f"c_{i}.png", 96, 96, seed=400 + i)
    args = ["collect", "--dataset", str(ds.path), "--run", run.version, "--images", str(batch)]
    target = tmp_path / "new_inbox"
    assert main([*args, "--into", str(target), "--all"]) == 2  # no dataset there, not asked
    assert not (target / "hardex.sqlite").exists()
    assert main([*args, "--into", str(target), "--all", "--create"]) == 0
    inbox = hx.Dataset.open(target)
    assert inbox.task == "detection" and inbox.label_names == run.labels
    assert len(inbox.samples) == 3
    assert main([*args, "--into", str(target), "--all", "--create"]) == 0  # run again
    assert len(hx.Dataset.open(target).samples) == 3
