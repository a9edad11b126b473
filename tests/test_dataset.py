import re
import sqlite3
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from synthetic import write_image

import hardex_nb as hx
from hardex_nb import FormatError, StoreError, ValidationError, ingest, runlog

ROOT = Path(__file__).resolve().parents[1]


def test_create_open_and_frames(tmp_path, image_folder):
    ds = hx.Dataset.create(tmp_path / "d", task="detection", labels=["cat", "dog"])
    assert (tmp_path / "d" / "hardex.sqlite").exists() and (tmp_path / "d" / "media").is_dir()
    report = ds.add_images(image_folder)
    assert len(report.added) == 6 and report.rejected == []
    s = ds.samples
    assert list(s.columns[:6]) == ["sample_id", "path", "name", "width", "height", "status"]
    assert s["status"].dtype == "category" and set(s["status"]) == {"unlabeled"}
    assert s["width"].tolist() == [64, 65, 66, 67, 68, 69]
    assert s["added_at"].dt.tz is not None
    assert all((tmp_path / "d" / p).exists() for p in s["path"])
    again = hx.Dataset.open(tmp_path / "d")
    pd.testing.assert_frame_equal(again.samples, s)
    assert again.task == "detection" and again.label_names == ["cat", "dog"]


def test_create_refuses_bad_arguments(tmp_path):
    with pytest.raises(ValidationError, match="task='segmentation'"):
        hx.Dataset.create(tmp_path / "a", task="segmentation", labels=[])
    with pytest.raises(ValidationError, match="given twice"):
        hx.Dataset.create(tmp_path / "b", task="detection", labels=["a", "a"])
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "x").write_text("x")
    with pytest.raises(StoreError, match="not empty"):
        hx.Dataset.create(tmp_path / "c", task="detection", labels=[])
    with pytest.raises(StoreError, match="not a hardex_nb dataset"):
        hx.Dataset.open(tmp_path / "c")


def test_returned_frames_are_copies(det_ds):
    s = det_ds.samples
    s.loc[0, "name"] = "changed"
    s.pop("path")
    assert det_ds.samples.loc[0, "name"] == "img_0.png"
    a = det_ds.annotations
    assert a.empty and "hard_type" in a.columns


def test_mixed_folder_imports_good_and_rejects_each_bad(tmp_path):
    folder = tmp_path / "mixed"
    write_image(folder / "ok.jpg", 100, 80, fmt="JPEG")
    write_image(folder / "sub" / "ok2.bmp", 50, 50, fmt="BMP")
    write_image(folder / "tiny.png", 20, 20)
    write_image(folder / "long.png", 700, 100)
    write_image(folder / "anim.gif", 40, 40, fmt="GIF")
    data = write_image(tmp_path / "full.jpg", 300, 300, fmt="JPEG").read_bytes()
    (folder / "cut.jpg").write_bytes(data[:2000])
    big = write_image(folder / "huge.png", 40, 40)
    with open(big, "r+b") as f:
        f.truncate(101 * 2**20)
    (folder / "ok.json").write_text("{}")
    ds = hx.Dataset.create(tmp_path / "d", task="classification", labels=["a", "b"])
    report = ds.add_images(folder)
    assert sorted(ds.samples["name"]) == ["ok.jpg", "ok2.bmp"]
    reasons = dict(report.rejected)
    assert set(reasons) == {"tiny.png", "long.png", "anim.gif", "cut.jpg", "huge.png"}
    assert "minimum" in reasons["tiny.png"] and "6:1" in reasons["long.png"]
    assert "not supported" in reasons["anim.gif"] and "truncated" in reasons["cut.jpg"]
    assert "100 MB" in reasons["huge.png"]
    assert report.skipped == ["ok.json"]
    assert "5 rejected" in repr(report)


def test_add_images_from_list_zip_and_without_copy(tmp_path, image_folder):
    ds = hx.Dataset.create(tmp_path / "d", task="detection", labels=["a"])
    files = sorted(image_folder.iterdir())
    r1 = ds.add_images(files[:2], copy=False)
    assert ds.image_path(r1.added[0]) == files[0].resolve()
    zpath = tmp_path / "imgs.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        for f in files[2:]:
            zf.write(f, f"folder/{f.name}")
    r2 = ds.add_images(zpath)
    assert len(r2.added) == 4
    assert all(ds.image_path(i).exists() for i in r2.added)


def test_zip_with_climbing_member_is_refused_whole(tmp_path, image_folder):
    ds = hx.Dataset.create(tmp_path / "d", task="detection", labels=["a"])
    zpath = tmp_path / "evil.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.write(image_folder / "img_0.png", "good.png")
        zf.write(image_folder / "img_1.png", "../evil.png")
    with pytest.raises(FormatError, match=r"\.\./evil.png: path climbs out"):
        ds.add_images(zpath)
    assert ds.samples.empty


def test_box_edits_and_validation(det_ds):
    sid = int(det_ds.samples.sample_id[0])  # 64 x 48
    ann = det_ds.add_box(sid, "cat", 1, 2, 30, 40)
    assert det_ds.samples.set_index("sample_id").loc[sid, "status"] == "labeled"
    bad = [
        (dict(label="cow"), "not in the label set"),
        (dict(x1=0.5), "x0 < x1"),
        (dict(x1=65), "outside sample"),
        (dict(y0=float("nan")), "not finite"),
    ]
    for change, message in bad:
        args = dict(label="cat", x0=1, y0=2, x1=30, y1=40) | change
        with pytest.raises(ValidationError, match=message):
            det_ds.add_box(sid, args["label"], args["x0"], args["y0"], args["x1"], args["y1"])
    with pytest.raises(ValidationError, match="unknown sample id"):
        det_ds.add_box(999, "cat", 1, 2, 3, 4)
    assert len(det_ds.annotations) == 1
    det_ds.update_annotation(ann, label="dog", x1=50)
    row = det_ds.annotations.iloc[0]
    assert row["label"] == "dog" and row["x1"] == 50
    with pytest.raises(ValidationError, match="outside"):
        det_ds.update_annotation(ann, x1=500)
    with pytest.raises(ValidationError, match="unknown field"):
        det_ds.update_annotation(ann, colour="red")
    assert det_ds.annotations.iloc[0]["x1"] == 50
    poly = det_ds.add_polygon(sid, "cat", [[1, 1], [20, 1], [10, 15]], score=0.7, origin="V1")
    ign = det_ds.add_ignore_region(sid, 40, 30, 60, 45)
    text = det_ds.add_box(sid, "cat", 2, 2, 10, 10, text="STOP")
    a = det_ds.annotations.set_index("ann_id")
    assert a.loc[poly, "kind"] == "polygon" and a.loc[poly, "points"] == [[1, 1], [20, 1], [10, 15]]
    assert (a.loc[poly, "x1"], a.loc[poly, "y1"]) == (20, 15)
    assert a.loc[ign, "kind"] == "ignore" and pd.isna(a.loc[ign, "label"])
    assert a.loc[text, "kind"] == "text" and a.loc[text, "text"] == "STOP"
    det_ds.delete_annotations([poly, text])
    assert sorted(det_ds.annotations.ann_id) == [ann, ign]
    with pytest.raises(ValidationError, match="unknown annotation"):
        det_ds.delete_annotations([poly])


def test_edits_after_reopening_keep_empty_fields_empty(det_ds):
    sid = int(det_ds.samples.sample_id[0])
    human = det_ds.add_box(sid, "cat", 1, 1, 10, 10)
    det_ds.add_box(sid, "dog", 2, 2, 12, 12, score=0.4, origin="V1", angle=5)
    reopened = hx.Dataset.open(det_ds.path)  # score and angle columns now hold NaN for `human`
    reopened.update_annotation(human, label="dog")
    row = hx.Dataset.open(det_ds.path).annotations.set_index("ann_id").loc[human]
    assert row["label"] == "dog" and np.isnan(row["score"]) and np.isnan(row["angle"])
    con = sqlite3.connect(det_ds.path / "hardex.sqlite")
    assert con.execute(
        "SELECT score, angle FROM annotations WHERE ann_id=?", (human,)
    ).fetchone() == (None, None)


def test_every_edit_is_on_disk_when_it_returns(det_ds):
    ids = det_ds.samples.sample_id.tolist()
    det_ds.add_box(ids[0], "cat", 1, 1, 10, 10)
    det_ds.set_status(ids[1], "to_confirm")
    det_ds.mark_hard(ids[2:4], reasons=[1, 101], score=0.9)
    det_ds.set_split(ids[4], "test")
    det_ds.add_label("bird")
    det_ds.rename_label("dog", "puppy")
    det_ds.delete_samples(ids[5])
    # a fresh connection that never saw the in-memory frames
    con = sqlite3.connect(det_ds.path / "hardex.sqlite")
    rows = dict(con.execute("SELECT sample_id, status FROM samples").fetchall())
    assert rows == {
        ids[0]: "labeled",
        ids[1]: "to_confirm",
        ids[2]: "unlabeled",
        ids[3]: "unlabeled",
        ids[4]: "unlabeled",
    }
    assert con.execute(
        "SELECT hard, hard_reasons, hard_score FROM samples WHERE sample_id=?", (ids[2],)
    ).fetchone() == (1, "1-101", 0.9)
    assert [r[0] for r in con.execute("SELECT name FROM labels ORDER BY position")] == [
        "cat",
        "puppy",
        "bird",
    ]
    reopened = hx.Dataset.open(det_ds.path)
    pd.testing.assert_frame_equal(reopened.samples, det_ds.samples)
    pd.testing.assert_frame_equal(reopened.annotations, det_ds.annotations)


def test_classification_labels_and_label_cascade(cls_ds):
    ids = cls_ds.samples.sample_id.tolist()
    cls_ds.set_label(ids[:3], "cat")
    cls_ds.set_label(ids[3:5], "dog")
    s = cls_ds.samples.set_index("sample_id")
    assert s.loc[ids[0], "label"] == "cat" and s.loc[ids[0], "status"] == "labeled"
    with pytest.raises(ValidationError, match="add it with ds.add_label"):
        cls_ds.set_label(ids[5], "cow")
    cls_ds.rename_label("cat", "kitten")
    assert (cls_ds.samples.label == "kitten").sum() == 3
    cls_ds.delete_label("kitten")
    s = cls_ds.samples.set_index("sample_id")
    assert s.loc[ids[:3], "status"].eq("unlabeled").all() and s.loc[ids[:3], "label"].isna().all()
    assert cls_ds.label_names == ["dog"]
    reopened = hx.Dataset.open(cls_ds.path)
    assert reopened.labels["name"].tolist() == ["dog"]
    pd.testing.assert_frame_equal(reopened.samples, cls_ds.samples)


def test_delete_label_removes_its_boxes(det_ds):
    ids = det_ds.samples.sample_id.tolist()
    det_ds.add_box(ids[0], "cat", 1, 1, 10, 10)
    keep = det_ds.add_box(ids[1], "dog", 1, 1, 10, 10)
    det_ds.add_box(ids[1], "cat", 2, 2, 10, 10)
    det_ds.delete_label("cat")
    assert det_ds.annotations.ann_id.tolist() == [keep]
    s = det_ds.samples.set_index("sample_id")["status"]
    assert s[ids[0]] == "unlabeled" and s[ids[1]] == "labeled"


def test_delete_samples_removes_annotations_and_copies(det_ds):
    sid = int(det_ds.samples.sample_id[0])
    path = det_ds.image_path(sid)
    det_ds.add_box(sid, "cat", 1, 1, 10, 10)
    det_ds.delete_samples([sid])
    assert not path.exists() and det_ds.annotations.empty
    assert sid not in det_ds.samples.sample_id.tolist()


def test_query_filters(tmp_path, image_folder):
    ds = hx.Dataset.create(tmp_path / "d", task="detection", labels=["cat", "dog"])
    first = ds.add_images(sorted(image_folder.iterdir())[:3]).added
    time.sleep(0.05)
    cut = pd.Timestamp.now(tz="UTC")
    later = ds.add_images(sorted(image_folder.iterdir())[3:]).added
    ds.add_box(first[0], "dog", 1, 1, 9, 9)
    ds.mark_hard(later[0], reasons="1")
    assert ds.query(name="IMG_1").sample_id.tolist() == [first[1]]
    assert ds.query(label="dog").sample_id.tolist() == [first[0]]
    assert ds.query(status="labeled").sample_id.tolist() == [first[0]]
    assert ds.query(status=["unlabeled"]).shape[0] == 5
    assert ds.query(added_after=cut).sample_id.tolist() == later
    assert ds.query(added_before=cut).sample_id.tolist() == first
    assert ds.query(min_width=68).sample_id.tolist() == later[1:]
    assert ds.query(min_height=49).empty
    assert ds.query(hard=True).sample_id.tolist() == [later[0]]
    assert ds.query(hard=False, label="dog", name="img").sample_id.tolist() == [first[0]]
    with pytest.raises(ValidationError, match="status"):
        ds.query(status="done")


WRITER = textwrap.dedent("""
    import sys, hardex_nb as hx
    ds = hx.Dataset.open(sys.argv[1])
    sid = int(sys.argv[2])
    for i in range(int(sys.argv[3])):
        ann = ds.add_box(sid, "cat", 1, 1, 2 + (i % 40), 2 + (i % 40))
        print(ann, flush=True)
""")


def test_kill_minus_nine_loses_no_returned_edit(det_ds):
    sid = int(det_ds.samples.sample_id[0])
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(det_ds.path), str(sid), "100000"],
        stdout=subprocess.PIPE,
        text=True,
    )
    returned = []
    for line in proc.stdout:
        returned.append(int(line))
        if len(returned) >= 300:
            break
    proc.kill()
    proc.wait()
    returned += [int(line) for line in proc.stdout.read().split()]
    con = sqlite3.connect(det_ds.path / "hardex.sqlite")
    assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    con.close()
    on_disk = set(hx.Dataset.open(det_ds.path).annotations.ann_id)
    assert set(returned) <= on_disk and len(returned) >= 300


def test_concurrent_writers_serialize(det_ds):
    ids = det_ds.samples.sample_id.tolist()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(det_ds.path), str(ids[k]), "150"],
            stdout=subprocess.PIPE,
            text=True,
        )
        for k in range(3)
    ]
    outs = [p.communicate(timeout=300)[0].split() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    returned = [int(x) for out in outs for x in out]
    assert len(returned) == 450 == len(set(returned))
    # this process had the dataset open all along: it sees the others' commits
    ann = det_ds.annotations
    assert sorted(ann.ann_id) == sorted(returned)
    assert ann.groupby("sample_id").size().to_dict() == {ids[0]: 150, ids[1]: 150, ids[2]: 150}
    mine = det_ds.add_box(ids[3], "dog", 1, 1, 5, 5)
    assert mine not in returned and len(hx.Dataset.open(det_ds.path).annotations) == 451


def test_insert_rows_is_all_or_nothing(det_ds):
    before = det_ds.samples
    good = pd.DataFrame(
        {
            "path": ["x.png"],
            "name": ["x.png"],
            "width": [10],
            "height": [10],
            "status": ["unlabeled"],
            "hard": [0],
            "hard_reasons": [""],
            "added_at": [0.0],
            "source": ["upload"],
            "split": ["train"],
        }
    )
    bad_ann = pd.DataFrame(
        {
            "sample_id": [10**9],
            "kind": ["box"],
            "label": ["cat"],
            "x0": [0.0],
            "y0": [0.0],
            "x1": [1.0],
            "y1": [1.0],
            "origin": ["human"],
            "hard_type": ["none"],
        }
    )
    with pytest.raises(hx.ValidationError, match="nothing was written"):
        ingest.insert_rows(det_ds, good, bad_ann)
    pd.testing.assert_frame_equal(det_ds.samples, before)
    pd.testing.assert_frame_equal(hx.Dataset.open(det_ds.path).samples, before)


def test_schema_1_dataset_gains_the_difficult_column(tmp_path):
    """A dataset written before annotations carried VOC's difficult flag opens and keeps
    every row; the flag reads False and can be set."""
    import sqlite3

    ds = hx.Dataset.create(tmp_path / "old", task="detection", labels=["a"])
    from synthetic import write_image

    sid = ds.add_images([write_image(tmp_path / "x.png", 60, 40)]).added[0]
    ann = ds.add_box(sid, "a", 1, 1, 20, 20)
    ds.close()
    con = sqlite3.connect(tmp_path / "old" / "hardex.sqlite")
    con.execute("ALTER TABLE annotations DROP COLUMN difficult")
    con.execute("UPDATE meta SET value='1' WHERE key='schema_version'")
    con.commit()
    con.close()
    ds = hx.Dataset.open(tmp_path / "old")
    assert ds.annotations["difficult"].tolist() == [False]
    ds.update_annotation(ann, difficult=True)
    with pytest.raises(hx.ValidationError, match="difficult='yes'"):
        ds.update_annotation(ann, difficult="yes")
    ds.close()
    assert hx.Dataset.open(tmp_path / "old").annotations["difficult"].tolist() == [True]


def test_rows_naming_a_label_deleted_by_another_process_are_refused_whole(tmp_path):
    """A writer that read the label set before another process deleted a label (a long
    import, say) writes nothing that names the deleted label, and nothing else either."""
    from synthetic import write_image

    first = hx.Dataset.create(tmp_path / "d", task="detection", labels=["a", "c"])
    sid = first.add_images([write_image(tmp_path / "x.png", 60, 40)]).added[0]
    other = hx.Dataset.open(tmp_path / "d")  # as a second process would
    other.delete_label("c")
    rows = pd.DataFrame(
        [
            {
                "sample_id": sid,
                "kind": "box",
                "label": "a",
                "x0": 1.0,
                "y0": 1.0,
                "x1": 9.0,
                "y1": 9.0,
                "origin": "human",
                "hard_type": "none",
            },
            {
                "sample_id": sid,
                "kind": "box",
                "label": "c",
                "x0": 2.0,
                "y0": 2.0,
                "x1": 9.0,
                "y1": 9.0,
                "origin": "human",
                "hard_type": "none",
            },
        ]
    )
    with pytest.raises(hx.ValidationError, match=r"label\(s\) \['c'\] were deleted by another"):
        ingest.insert_rows(first, annotations=rows)
    for view in (first, hx.Dataset.open(tmp_path / "d")):
        assert view.annotations.empty and view.label_names == ["a"]


def test_degenerate_polygons_are_refused_at_the_edit(tmp_path):
    from synthetic import write_image

    ds = hx.Dataset.create(tmp_path / "d", task="detection", labels=["a"])
    sid = ds.add_images([write_image(tmp_path / "x.png", 60, 40)]).added[0]
    for points in (
        [[1, 1], [10, 10], [20, 20]],  # collinear
        [[5, 5], [5, 5], [5, 5]],  # one point three times
        [[1, 1], [9, 1], [1, 1], [9, 1]],
    ):  # a line walked twice
        with pytest.raises(hx.ValidationError, match="enclose no area"):
            ds.add_polygon(sid, "a", points)
    ann = ds.add_polygon(sid, "a", [[1, 1], [9, 1], [5, 8]])
    with pytest.raises(hx.ValidationError, match="enclose no area"):
        ds.update_annotation(ann, points=[[1, 1], [2, 2], [3, 3]])
    assert len(ds.annotations) == 1 and ds.annotations["points"][0] == [[1, 1], [9, 1], [5, 8]]


def test_relative_path_then_chdir(tmp_path, monkeypatch):
    from synthetic import write_image

    monkeypatch.chdir(tmp_path)
    ds = hx.Dataset.create("rel", task="detection", labels=["a"])
    image = write_image(tmp_path / "x.png", 60, 40)
    sid = ds.add_images([image]).added[0]
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert ds.path == tmp_path / "rel" and ds.image_path(sid).exists()
    second = ds.add_images([write_image(tmp_path / "y.png", 60, 40, seed=1)]).added[0]
    ds.delete_samples([sid, second])
    assert list((tmp_path / "rel" / "media").iterdir()) == []
    assert not (tmp_path / "elsewhere" / "rel").exists()


def test_a_run_left_running_by_a_killed_process_is_marked_failed_at_open(tmp_path):
    ds = hx.Dataset.create(tmp_path / "d", task="classification", labels=["a", "b"])
    ds.close()
    killed = subprocess.run(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
        import os, signal
        import hardex_nb as hx
        from hardex_nb import runlog
        ds = hx.Dataset.open({str(tmp_path / "d")!r})
        print(runlog.start_run(ds, model="resnet18", params={{}}), os.getpid(), flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert killed.returncode == -9
    version, pid = killed.stdout.split()
    with pytest.warns(UserWarning, match=rf"\['{version}'\] were left running"):
        ds = hx.Dataset.open(tmp_path / "d")
    run = ds.runs.set_index("version").loc[version]
    assert run["status"] == "failed" and f"pid {pid}" in run["message"]
    # a run whose process is alive (this one) is left alone
    mine = runlog.start_run(ds, model="resnet18", params={})
    assert (
        hx.Dataset.open(tmp_path / "d").runs.set_index("version").loc[mine, "status"] == "running"
    )


# -- races with another process: the store refuses what would dangle ------------------------

LABELER = textwrap.dedent("""
    import sys, hardex_nb as hx
    ds = hx.Dataset.open(sys.argv[1])
    ids = [int(i) for i in ds.samples.sample_id]
    print("ready", flush=True)
    n = 0
    while True:
        try:
            ds.set_label(ids[n % len(ids)], "c")
        except hx.ValidationError as exc:
            print("refused", n, exc, flush=True)
            break
        n += 1
""")


def test_set_label_racing_delete_label_never_leaves_a_dangling_label(cls_ds):
    """Another process classifies images as 'c' in a loop while this one deletes 'c': the
    loop stops with a clear error and no sample names a label that no longer exists."""
    cls_ds.add_label("c")
    proc = subprocess.Popen(
        [sys.executable, "-c", LABELER, str(cls_ds.path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(0.5)  # let it write a while (natural timing; nothing is injected)
    cls_ds.delete_label("c")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert out.startswith("refused") and "not in the label set" in out and "Traceback" not in err
    con = sqlite3.connect(cls_ds.path / "hardex.sqlite")
    dangling = con.execute(
        "SELECT COUNT(*) FROM samples WHERE label IS NOT NULL AND label NOT "
        "IN (SELECT name FROM labels)"
    ).fetchone()[0]
    assert dangling == 0
    for view in (cls_ds, hx.Dataset.open(cls_ds.path)):
        assert view.label_names == ["cat", "dog"]
        assert view.samples["label"].isna().all()  # 'c' went back to unlabeled, and only it


EDITOR = textwrap.dedent("""
    import sys, hardex_nb as hx
    ds = hx.Dataset.open(sys.argv[1])
    ann, sid = int(sys.argv[2]), int(sys.argv[3])
    print("ready", flush=True)
    n = 0
    try:
        while True:
            ds.update_annotation(ann, x1=10 + n % 30)
            n += 1
    except hx.ValidationError as exc:
        print("refused", exc, flush=True)
    sys.stdin.readline()  # the test says when its image is deleted too
    try:
        ds.add_box(sid, "cat", 1, 1, 5, 5)
    except hx.ValidationError as exc:
        print("refused", exc, flush=True)
    print("left", len(ds.annotations), ds.annotations["x1"].isna().sum(), flush=True)
""")


def test_edits_of_rows_another_process_deleted_are_refused_and_memory_follows_disk(det_ds):
    """Another process edits a box in a loop while this one deletes the box, then its
    image: each edit after that is refused, no NaN row appears in that process's frames."""
    sid = int(det_ds.samples.sample_id[0])
    ann = det_ds.add_box(sid, "cat", 1, 1, 20, 20)
    proc = subprocess.Popen(
        [sys.executable, "-c", EDITOR, str(det_ds.path), str(ann), str(sid)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(0.3)
    det_ds.delete_annotations([ann])
    det_ds.delete_samples([sid])
    # only then may it add a box to the image: on a loaded machine its loop could see the
    # box gone and add to the image before this process deleted it
    out, err = proc.communicate("go\n", timeout=120)
    lines = out.splitlines()
    assert proc.returncode == 0 and "Traceback" not in err, err
    # refused inside the write ("annotation N was deleted by another process"), or before it
    # when that process already saw the deletion ("unknown annotation id N"): timing decides
    assert lines[0].startswith("refused") and re.search(rf"annotation (id )?{ann}\b", lines[0])
    assert lines[1].startswith("refused") and "sample" in lines[1]
    assert lines[2] == "left 0 0"
    disk = hx.Dataset.open(det_ds.path)
    assert disk.annotations.empty and sid not in set(disk.samples.sample_id)


def test_a_label_still_in_use_cannot_be_deleted_under_the_store(det_ds):
    """The trigger is the last line: SQL that deletes a label still named is refused."""
    sid = int(det_ds.samples.sample_id[0])
    det_ds.add_box(sid, "cat", 1, 1, 20, 20)
    with pytest.raises(ValidationError, match="still used"), det_ds._write() as cur:
        cur.execute("DELETE FROM labels WHERE name='cat'")
    assert hx.Dataset.open(det_ds.path).label_names == ["cat", "dog"]


# -- kills and failures: no orphans ----------------------------------------------------------


def _media_files(ds_path: Path) -> set[str]:
    return {
        p.relative_to(ds_path / "media").as_posix()
        for p in (ds_path / "media").rglob("*")
        if p.is_file()
    }


def _stored_files(ds: hx.Dataset) -> set[str]:
    return {Path(p).name for p in ds.samples["path"]}


def test_kill_during_add_images_leaves_nothing_behind(tmp_path):
    folder = tmp_path / "many"
    for i in range(400):
        write_image(folder / f"im_{i:03d}.png", 64, 48, seed=i)
    hx.Dataset.create(tmp_path / "d", task="detection", labels=["a"]).close()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
        import hardex_nb as hx
        ds = hx.Dataset.open({str(tmp_path / "d")!r})
        for _ in range(100):
            ds.add_images({str(folder)!r})
    """),
        ],
        stderr=subprocess.PIPE,
    )
    incoming = tmp_path / "d" / "media" / ".incoming"
    deadline = time.time() + 120
    while time.time() < deadline and not (incoming.exists() and any(incoming.rglob("*.png"))):
        time.sleep(0.005)
    proc.kill()
    proc.wait()
    with warnings_allowed():
        ds = hx.Dataset.open(tmp_path / "d")
    assert not incoming.exists()
    assert _media_files(tmp_path / "d") == _stored_files(ds)  # every file has its row
    assert all(ds.image_path(i).exists() for i in ds.samples.sample_id)


def test_a_kill_between_commit_and_rename_is_finished_at_open(tmp_path):
    """A process killed after committing its rows but before moving its copies into place:
    the next open moves them, so every committed sample has its image."""
    images = [write_image(tmp_path / f"x{i}.png", 60, 40, seed=i) for i in range(3)]
    hx.Dataset.create(tmp_path / "d", task="detection", labels=["a"]).close()
    killed = subprocess.run(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
        import os, pathlib, signal
        import hardex_nb as hx
        ds = hx.Dataset.open({str(tmp_path / "d")!r})
        def die(self, target):   # the first rename after the commit
            os.kill(os.getpid(), signal.SIGKILL)
        pathlib.Path.replace = die
        ds.add_images({[str(p) for p in images]!r})
    """),
        ],
        capture_output=True,
        timeout=120,
    )
    assert killed.returncode == -9
    with pytest.warns(UserWarning, match="cleaned up 3 image file"):
        ds = hx.Dataset.open(tmp_path / "d")
    assert len(ds.samples) == 3 and _media_files(tmp_path / "d") == _stored_files(ds)
    assert all(
        ds.image_path(i).read_bytes() == images[k].read_bytes()
        for k, i in enumerate(ds.samples.sample_id)
    )


def test_a_kill_after_delete_samples_commits_leaves_no_orphan_file(det_ds):
    doomed = [int(i) for i in det_ds.samples.sample_id[:2]]
    killed = subprocess.run(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
        import os, pathlib, signal
        import hardex_nb as hx
        ds = hx.Dataset.open({str(det_ds.path)!r})
        def die(self, missing_ok=False):   # the first file deletion after the commit
            os.kill(os.getpid(), signal.SIGKILL)
        pathlib.Path.unlink = die
        ds.delete_samples({doomed!r})
    """),
        ],
        capture_output=True,
        timeout=120,
    )
    assert killed.returncode == -9
    with pytest.warns(UserWarning, match="cleaned up 2 image file"):
        ds = hx.Dataset.open(det_ds.path)
    assert len(ds.samples) == 4 and _media_files(det_ds.path) == _stored_files(ds)


def test_a_copy_that_fails_part_way_adds_nothing_and_leaves_no_file(tmp_path):
    """The file-size limit makes the copy of a 3 MB image fail after 1 MB, as a full disk
    would: a StoreError, no sample, no file."""
    from PIL import Image

    rng = np.random.default_rng(0)
    big = tmp_path / "big.png"
    Image.fromarray(rng.integers(0, 255, (1100, 1100, 3), dtype=np.uint8)).save(big)
    small = write_image(tmp_path / "small.png", 60, 40)
    hx.Dataset.create(tmp_path / "d", task="detection", labels=["a"]).close()
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
        import resource, signal
        import hardex_nb as hx
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # writes past the limit fail (EFBIG)
        ds = hx.Dataset.open({str(tmp_path / "d")!r})
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
        try:
            ds.add_images([{str(small)!r}, {str(big)!r}])
        except hx.StoreError as exc:
            print("StoreError", exc)
    """),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.stdout.startswith("StoreError") and "big.png" in out.stdout, out.stderr
    assert "nothing was added" in out.stdout
    ds = hx.Dataset.open(tmp_path / "d")
    assert ds.samples.empty and _media_files(tmp_path / "d") == set()


def test_file_names_that_cannot_be_stored_are_rejected_alone(tmp_path):
    import os

    folder = tmp_path / "names"
    folder.mkdir()
    good = write_image(folder / "good.png", 60, 40)
    raw = os.fsencode(folder) + b"/caf\xe9.png"  # Latin-1 bytes: not UTF-8
    with open(raw, "wb") as f:
        f.write(good.read_bytes())
    long_name = "l" * 246 + ".png"  # 250 bytes: the media copy must shorten it
    (folder / long_name).write_bytes(good.read_bytes())
    ds = hx.Dataset.create(tmp_path / "d", task="detection", labels=["a"])
    report = ds.add_images(folder, duplicates="add")  # the same bytes under other names
    assert len(report.added) == 2
    assert [(name, reason) for name, reason in report.rejected] == [
        ("caf\\udce9.png", "the file name is not valid UTF-8; rename the file")
    ]
    assert sorted(ds.samples.name) == ["good.png", long_name]
    assert all(ds.image_path(i).exists() for i in report.added)


# -- job claims ------------------------------------------------------------------------------


def _claim(ds, **holder):
    import json

    with ds._write() as cur:
        cur.execute(
            "INSERT OR REPLACE INTO meta VALUES ('job:auto_label', ?)", (json.dumps(holder),)
        )


def test_a_claim_whose_pid_was_reused_is_taken_over(det_ds):
    import os
    import socket

    # this process is alive, but it started later than the claim says its holder did
    _claim(det_ds, host=socket.gethostname(), pid=os.getpid(), process_start=1, since=0.0)
    runlog.claim_job(det_ds, "auto_label")
    assert det_ds.jobs()["pid"].tolist() == [os.getpid()]


def test_a_claim_from_another_machine_is_released_by_hand(det_ds):
    _claim(det_ds, host="crashed-node", pid=4242, process_start=7, since=1.7e9)
    with pytest.raises(hx.JobError, match=r"process 4242 on crashed-node.*ds\.release_jobs\(\)"):
        runlog.claim_job(det_ds, "auto_label")
    jobs = det_ds.jobs()
    assert jobs[["job", "host", "pid"]].values.tolist() == [["auto_label", "crashed-node", 4242]]
    assert jobs["alive"].isna().all()
    assert det_ds.release_jobs() == ["auto_label"]
    runlog.claim_job(det_ds, "auto_label")  # free again
    runlog.release_job(det_ds, "auto_label")
    assert det_ds.jobs().empty


def test_embeddings_land_with_the_job_or_not_at_all(det_ds):
    sid = int(det_ds.samples.sample_id[0])
    vectors = np.arange(8, dtype=np.float32).reshape(2, 4)
    bad = pd.DataFrame(
        [
            {
                "sample_id": sid,
                "kind": "box",
                "label": "nope",
                "x0": 1.0,
                "y0": 1.0,
                "x1": 9.0,
                "y1": 9.0,
                "origin": "V1",
                "hard_type": "none",
            }
        ]
    )
    with pytest.raises(ValidationError):
        ingest.insert_rows(det_ds, annotations=bad, embeddings=("V1", [sid, sid + 1], vectors))
    with pytest.raises(ValidationError, match="no stored embeddings"):
        det_ds.embeddings()
    ingest.insert_rows(det_ds, embeddings=("V1", [sid, sid + 1], vectors))
    ids, got = hx.Dataset.open(det_ds.path).embeddings("V1")
    assert ids.tolist() == [sid, sid + 1] and np.array_equal(got, vectors)


class warnings_allowed:
    """A block that may warn (a sweep after a kill reports what it cleaned, or nothing)."""

    def __enter__(self):
        import warnings

        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        warnings.simplefilter("ignore")

    def __exit__(self, *exc):
        return self._ctx.__exit__(*exc)


def test_fewer_than_30_images_get_advice(tmp_path, image_folder):
    ds = hx.Dataset.create(tmp_path / "d", task="detection", labels=["a"])
    report = ds.add_images(image_folder)
    assert "holds 6 images; add at least 30" in report.advice and "advice" in repr(report)
    more = tmp_path / "more"
    for i in range(24):
        write_image(more / f"m{i}.png", 40, 40, seed=i)
    assert ds.add_images(more).advice == ""


def test_deleting_every_box_unlabels_unless_marked_a_negative(det_ds):
    sid, other = (int(i) for i in det_ds.samples.sample_id[:2])
    a = det_ds.add_box(sid, "cat", 1, 1, 20, 20)
    b = det_ds.add_box(sid, "dog", 5, 5, 30, 30)
    det_ds.add_ignore_region(sid, 40, 5, 60, 30)
    det_ds.delete_annotations([a])
    assert det_ds.sample(sid)["status"] == "labeled"  # one object left
    det_ds.delete_annotations([b])  # only an ignore region left
    assert det_ds.sample(sid)["status"] == "unlabeled"
    assert hx.Dataset.open(det_ds.path).sample(sid)["status"] == "unlabeled"
    det_ds.add_box(other, "cat", 1, 1, 9, 9)
    assert len(det_ds.clear_annotations(other, negative=True)) == 1
    s = hx.Dataset.open(det_ds.path)
    assert s.sample(other)["status"] == "labeled" and s.annotations_of(other).empty
    assert det_ds.clear_annotations(sid) and det_ds.annotations_of(sid).empty
    assert det_ds.sample(sid)["status"] == "unlabeled"


def test_rotated_boxes_are_checked_and_train_as_their_enclosing_box(tmp_path):
    from hardex_nb.jobs.run import targets_for as _targets_for

    ds = hx.Dataset.create(tmp_path / "r", task="detection", labels=["ship"])
    (sid,) = ds.add_images([write_image(tmp_path / "a.png", 100, 80)]).added
    # a 40 × 10 bar turned 90° about its centre (20, 40): 10 wide, 40 tall
    ann = ds.add_box(sid, "ship", 0, 35, 40, 45, angle=90)
    with pytest.raises(ValidationError, match="its centre .* is outside"):
        ds.add_box(sid, "ship", 90, 70, 130, 100, angle=30)
    poly = ds.add_polygon(sid, "ship", [[50, 10], [70, 10], [60, 30]])
    with pytest.raises(ValidationError, match="only a box turns"):
        ds.update_annotation(poly, angle=10)
    (target,) = _targets_for(ds, [sid], ["ship"])
    np.testing.assert_allclose(target["boxes"][0], [15, 20, 25, 60], atol=1e-5)
    # turned 45°, the corners leave the image: clipped to it for training
    ds.update_annotation(ann, y0=0, y1=10, angle=45)  # centre (20, 5)
    (target,) = _targets_for(ds, [sid], ["ship"])
    half = (20 + 5) / np.sqrt(2)
    np.testing.assert_allclose(target["boxes"][0], [20 - half, 0, 20 + half, 5 + half], atol=1e-5)
    assert hx.Dataset.open(ds.path).annotations.set_index("ann_id").loc[ann, "angle"] == 45
    ignore = ds.add_ignore_polygon(sid, [[70, 50], [95, 55], [80, 75]])
    row = ds.annotations.set_index("ann_id").loc[ignore]
    assert row["kind"] == "ignore" and len(row["points"]) == 3
    assert (row["x0"], row["y0"], row["x1"], row["y1"]) == (70, 50, 95, 75)
    (target,) = _targets_for(ds, [sid], ["ship"])
    np.testing.assert_allclose(target["ignore"], [[70, 50, 95, 75]])
