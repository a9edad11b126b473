"""Widget state handling in Python: messages validated, bad ones shown and harmless."""

import pandas as pd
import pytest
from synthetic import bars_dataset, boxes_dataset, write_image

import hardex_nb as hx


@pytest.fixture
def det(tmp_path):
    ds, ids, truth = boxes_dataset(tmp_path, n=6, n_labeled=3, size=64)
    return ds, ids


def test_unknown_keyword_arguments_raise(det):
    ds, _ = det
    for make in (
        lambda: hx.Gallery(ds, colour="red"),
        lambda: hx.Annotator(ds, zoom=2),
        lambda: hx.Review(ds, foo=1),
    ):
        with pytest.raises(TypeError, match="unexpected keyword"):
            make()


def test_annotator_rejects_bad_messages_and_changes_nothing(det):
    ds, ids = det
    w = hx.Annotator(ds, ids[4])
    before = ds.annotations
    bad = [
        ({"action": "add_box", "label": "red", "x0": 1, "y0": 1, "x1": 500, "y1": 9}, "outside"),
        (
            {"action": "add_box", "label": "cow", "x0": 1, "y0": 1, "x1": 9, "y1": 9},
            "not in the label set",
        ),
        (
            {"action": "add_box", "label": "red", "x0": None, "y0": 1, "x1": 9, "y1": 9},
            "finite number",
        ),
        (
            {"action": "add_box", "label": "red", "x0": float("nan"), "y0": 1, "x1": 9, "y1": 9},
            "finite",
        ),
        ({"action": "delete", "ann_id": 10**6}, "not on this image"),
        ({"action": "explode"}, "unknown action"),
        ({"nothing": 1}, "without an action"),
        ({"action": "add_polygon", "label": "red", "points": [[1, 1], [2, 2]]}, "N ≥ 3"),
    ]
    for msg, expected in bad:
        w.handle(msg)
        assert expected in w.error
    pd.testing.assert_frame_equal(ds.annotations, before)


def test_annotator_edits_reach_disk_and_undo(det):
    ds, ids = det
    w = hx.Annotator(ds, ids[4])
    w.handle({"action": "add_box", "label": "blue", "x0": 2, "y0": 3, "x1": 20, "y1": 30})
    assert w.error == "" and len(w.annotations) == 1
    ann = w.annotations[0]["ann_id"]
    w.handle({"action": "update", "ann_id": ann, "x1": 40, "text": "A12"})
    w.handle({"action": "add_polygon", "label": "red", "points": [[1, 1], [30, 2], [15, 25]]})
    w.handle({"action": "add_box", "kind": "ignore", "x0": 40, "y0": 40, "x1": 60, "y1": 60})
    on_disk = hx.Dataset.open(ds.path).annotations_of(ids[4])
    # a box that reads something is kind "text", as the imports store it
    assert sorted(on_disk["kind"].astype(str)) == ["ignore", "polygon", "text"]
    assert on_disk.set_index("ann_id").loc[ann, "x1"] == 40
    assert on_disk.set_index("ann_id").loc[ann, "text"] == "A12"
    w.handle({"action": "undo"})  # the ignore region
    w.handle({"action": "undo"})  # the polygon
    w.handle({"action": "undo"})  # the update
    a = hx.Dataset.open(ds.path).annotations_of(ids[4])
    assert len(a) == 1 and a.iloc[0]["x1"] == 20 and a.iloc[0]["text"] is None
    assert a.iloc[0]["kind"] == "box"
    w.handle({"action": "delete", "ann_id": ann})
    w.handle({"action": "undo"})
    assert len(ds.annotations_of(ids[4])) == 1
    w.handle({"action": "next"})
    assert w.sample_id == ids[5]


def test_fixing_a_model_box_makes_it_human(det):
    ds, ids = det
    ann = ds.add_box(ids[5], "red", 1, 1, 9, 9, score=0.4, origin="V1")
    w = hx.Annotator(ds, ids[5])
    w.handle({"action": "update", "ann_id": ann, "label": "blue"})
    row = ds.annotations.set_index("ann_id").loc[ann]
    assert row["label"] == "blue" and row["origin"] == "human"


def test_review_queue_order_confirm_and_delete(tmp_path):
    ds, ids, _ = bars_dataset(tmp_path, n=6, n_labeled=2)
    ds.set_status(ids[2:], "to_confirm")
    ds.mark_hard(ids[3], reasons=[1], score=0.4)
    ds.mark_hard(ids[5], reasons=[101], score=0.9)
    w = hx.Review(ds)
    assert w.queue == [ids[5], ids[3], ids[2], ids[4]]
    w.handle({"action": "confirm"})
    assert ds.samples.set_index("sample_id").loc[ids[5], "status"] == "labeled"
    assert w.queue == [ids[3], ids[2], ids[4]] and w.sample_id == ids[3]
    w.handle({"action": "delete_sample"})
    assert "confirmed=true" in w.error and ids[3] in ds.samples.sample_id.tolist()
    w.handle({"action": "delete_sample", "confirmed": True})
    assert ids[3] not in ds.samples.sample_id.tolist() and w.queue == [ids[2], ids[4]]
    w.handle({"action": "set_label", "label": "h"})
    assert ds.samples.set_index("sample_id").loc[ids[2], "label"] == "h"


def test_a_number_key_labels_and_opens_the_next_image_but_review_stays(tmp_path):
    ds, ids, _ = bars_dataset(tmp_path, n=3, n_labeled=0)
    w = hx.Annotator(ds)
    for sid in ids:
        assert w.sample_id == sid
        w.handle({"action": "set_label", "label": "h", "advance": True})
    assert w.sample_id == ids[-1] and "last image" in w.notice
    assert (ds.samples.set_index("sample_id").loc[ids, "label"] == "h").all()
    w.handle({"action": "undo"})  # the last label, on the image it was set on
    assert pd.isna(ds.samples.set_index("sample_id").loc[ids[-1], "label"])
    ds.set_status(ids, "to_confirm")
    r = hx.Review(ds)
    first = r.sample_id
    r.handle({"action": "set_label", "label": "v", "advance": True})
    assert r.sample_id == first  # Review's keys fix the label; confirm moves on


def test_gallery_page_size_keeps_the_first_image_and_sets_one_label_on_the_selected(tmp_path):
    ds, ids, _ = bars_dataset(tmp_path, n=30, n_labeled=0)
    g = hx.Gallery(ds, page_size=8)
    g.handle({"action": "page", "page": 2})  # images 16..23
    g.handle({"action": "page_size", "size": 5})
    assert g.error == "" and g.page == 3 and g.rows[0]["sample_id"] == ids[15]
    g.handle({"action": "page_size", "size": 0})
    assert "1 to 500" in g.error and g.page_size == 5
    g.handle({"action": "set_label", "ids": ids[:3], "label": "h"})
    assert g.notice == "3 images labeled 'h'"
    assert (ds.samples.set_index("sample_id").loc[ids[:3], "label"] == "h").all()
    g.handle({"action": "set_label", "ids": ids[3:4], "label": "cow"})
    assert "cow" in g.error and pd.isna(ds.samples.set_index("sample_id").loc[ids[3], "label"])
    with pytest.raises(ValueError, match="page_size"):
        hx.Gallery(ds, page_size=0)


def test_gallery_paging_filters_and_actions(tmp_path):
    ds, ids, _ = bars_dataset(tmp_path, n=30, n_labeled=10)
    sent = []
    g = hx.Gallery(ds, page_size=8)
    g.send = lambda msg, buffers=None: sent.append((msg, buffers))
    assert g.total == 30 and len(g.rows) == 8
    g.handle({"action": "page", "page": 3})
    assert [r["sample_id"] for r in g.rows] == ids[24:30]
    msg, buffers = sent[-1]
    assert msg["ids"] == ids[24:30] and all(b[:2] == b"\xff\xd8" for b in buffers)
    g.handle({"action": "filter", "filters": {"status": "labeled"}})
    assert g.total == 10 and g.page == 0
    g.handle({"action": "filter", "filters": {"status": "finished"}})
    assert "status" in g.error and g.total == 10
    g.handle({"action": "mark_hard", "ids": ids[:2], "hard": True})
    assert ds.query(hard=True).sample_id.tolist() == ids[:2]
    g.handle({"action": "mark_hard", "ids": [10**6], "hard": True})
    assert "unknown sample" in g.error
    g.handle({"action": "delete", "ids": ids[:1]})
    assert "confirmed=true" in g.error and len(ds.samples) == 30
    g.handle({"action": "delete", "ids": ids[:1], "confirmed": True})
    assert len(ds.samples) == 29 and g.total == 9
    ann = hx.Annotator(ds)
    g.annotator = ann
    g.handle({"action": "open", "ids": [ids[5]]})
    assert ann.sample_id == ids[5] and g.opened == ids[5]


def test_report_widgets(tmp_path):
    ds, ids, truth = bars_dataset(tmp_path, n=10, n_labeled=10)
    report = hx.evaluate_classification(truth, ["v"] * 10, label_names=["v", "h"], image_ids=ids)
    cm = hx.ConfusionMatrix(report, ds=ds)
    sent = []
    cm.send = lambda msg, buffers=None: sent.append((msg, buffers))
    assert cm.matrix == [[5, 0], [5, 0]]
    cm.handle({"action": "cell", "true": "h", "predicted": "v"})
    assert sorted(cm.cell_ids) == sorted(i for i, t in zip(ids, truth) if t == "h")
    assert len(sent[-1][1]) == 5
    cm.handle({"action": "cell", "true": "x", "predicted": "v"})
    assert "no cell" in cm.error
    with pytest.raises(TypeError, match="ds="):
        hx.ConfusionMatrix(report)
    gt = pd.DataFrame(
        {"image_id": ids[:2], "label": "v", "x0": 1.0, "y0": 1.0, "x1": 20.0, "y1": 20.0}
    )
    pred = gt.assign(score=0.9, x1=[20.0, 60.0])
    det_report = hx.evaluate_detections(gt, pred)
    rv = hx.ReportView(det_report, ds=ds)
    # the cells that warn carry their message (an icon in the widget); shares as percents
    assert rv.percents == ["share"] and sorted(rv.cell_warnings[0]) == ["ap", "count"]
    assert rv.cell_warnings[0]["count"].startswith("too few annotations (2 < 30)")
    # the PR curve (one found of two: recall 0.5 at precision 1, then 0.5 at 0.5) with the
    # report threshold's point and the best F1; the reliability diagram from the scores
    (curve,) = rv.curves
    assert curve["label"] == "v" and curve["points"] == [[0.5, 0.5]]
    assert curve["at"]["threshold"] == 0.9 and curve["best"]["f1"] == pytest.approx(0.5)
    assert rv.calibration["ece"] == pytest.approx(0.4)  # 0.9 sure, half right
    assert rv.calibration["bins"][9]["count"] == 2
    assert hx.ReportView(report, ds=ds).calibration == {}  # a classifier's without scores
    # TIDE: the second box is a localization error (IoU 0.32); its count opens its image
    # with the prediction and the object it was about
    assert {e["type"]: e["count"] for e in rv.tide["errors"]}["loc"] == 1
    rv.send = lambda msg, buffers=None: sent.append((msg, buffers))
    rv.handle({"action": "tide", "error": "loc"})
    assert rv.error == "" and [img["sample_id"] for img in rv.errors] == [ids[1]]
    assert sorted(b["kind"] for b in rv.errors[0]["boxes"]) == ["false", "missed"]
    assert rv.label == "localization errors (TIDE)"
    rv.handle({"action": "tide", "error": "nope"})
    assert "no TIDE error type 'nope'" in rv.error
    # per label: v's row holds its AP and the localization error, which opens the same image
    (row,) = rv.tide["labels"]
    assert row["label"] == "v" and row["ap"] == pytest.approx(
        hx.tide_of(det_report).per_label.loc["v", "ap"]
    )
    assert {e["type"]: e["count"] for e in row["errors"]} == {
        "cls": 0,
        "loc": 1,
        "both": 0,
        "dupe": 0,
        "bkg": 0,
        "missed": 0,
    }
    assert {e["type"]: e["dAP"] for e in row["errors"]}["loc"] > 0
    rv.handle({"action": "tide", "error": "loc", "label": "v"})
    assert rv.error == "" and [img["sample_id"] for img in rv.errors] == [ids[1]]
    assert rv.label == "localization errors of v (TIDE)"
    rv.handle({"action": "tide", "error": "loc", "label": "nope"})
    assert "label 'nope' is not in this report's TIDE breakdown" in rv.error
    rv.send = lambda msg, buffers=None: sent.append((msg, buffers))
    rv.handle({"action": "label", "label": "v"})
    # only the image with an error is listed (the other image's box was found)
    kinds = sorted(b["kind"] for img in rv.errors for b in img["boxes"])
    assert kinds == ["false", "missed"] and len(sent[-1][1]) == 1 and rv.error_images == 1
    assert [img["sample_id"] for img in rv.errors] == [ids[1]]
    rv.handle({"action": "open", "sample_id": ids[0]})
    assert "not among the errors" in rv.error and rv.annotator is None
    rv.handle({"action": "open", "sample_id": ids[1]})
    assert rv.error == "" and rv.annotator.sample_id == ids[1]
    assert rv._column.children == (rv, rv.annotator)  # shown below the report
    h_ids = sorted(cm.cell_ids)
    cm.handle({"action": "cell", "true": "h", "predicted": "v"})
    cm.handle({"action": "open", "sample_id": h_ids[2]})
    assert cm.annotator.sample_id == h_ids[2] and cm.annotator.count == len(h_ids)


def test_messages_with_wrong_types_are_refused_in_the_widget(det):
    """Strict types: a bool is not an id, "false" is not false, 10**400 is not a number;
    every refusal is shown in the widget and changes nothing."""
    ds, ids = det
    w = hx.Annotator(ds, ids[0])
    boxes = ds.annotations_of(ids[0])
    first = int(boxes.ann_id.iloc[0])
    before = ds.annotations
    for msg, expected in [
        (
            {"action": "add_box", "label": "red", "x0": 10**400, "y0": 1, "x1": 9, "y1": 9},
            "finite number",
        ),
        ({"action": "update", "ann_id": True, "x1": 30}, "ann_id=True"),
        (
            {"action": "update", "ann_id": first, "points": [[1, 1], [9, 1], [9, 9]]},
            "only a polygon has points",
        ),
        ({"action": "set_label", "label": ["red"]}, "expected text"),
    ]:
        w.handle(msg)
        assert expected in w.error, (msg, w.error)
    pd.testing.assert_frame_equal(ds.annotations, before)
    g = hx.Gallery(ds)
    for msg, expected in [
        ({"action": "filter", "filters": {"min_width": float("inf")}}, "whole number"),
        ({"action": "filter", "filters": {"name": ["a"]}}, "expected text"),
        ({"action": "filter", "filters": {"hard": "false"}}, "expected true or false"),
        ({"action": "mark_hard", "ids": [ids[1]], "hard": "false"}, "expected true or false"),
        ({"action": "page", "page": True}, "whole number"),
    ]:
        w_before = dict(g.filters)
        g.handle(msg)
        assert g.error and expected in g.error, (msg, g.error)
        assert g.filters == w_before
    assert not ds.samples.set_index("sample_id").loc[ids[1], "hard"]
    g.handle({"action": "filter", "filters": {"min_width": 10**400}})  # valid, matches nothing
    assert g.error == "" and g.total == 0


def test_an_unexpected_failure_in_a_handler_is_shown_not_raised(det):
    ds, ids = det
    w = hx.Annotator(ds, ids[0])

    def broken(content):
        raise ZeroDivisionError("division by zero")

    w._on_next = broken
    w.handle({"action": "next"})
    assert w.error == "ZeroDivisionError: division by zero"


def test_undo_after_add_update_delete_restores_each_step(det):
    """Undoing a delete restores the box under a new id; the undo of the earlier update and
    add follow it (they used to fail with "unknown annotation id")."""
    ds, ids = det
    w = hx.Annotator(ds, ids[4])
    before = len(ds.annotations_of(ids[4]))
    w.handle({"action": "add_box", "label": "red", "x0": 2, "y0": 2, "x1": 12, "y1": 12})
    ann = int(ds.annotations_of(ids[4]).ann_id.max())
    w.handle({"action": "update", "ann_id": ann, "x1": 20})
    w.handle({"action": "delete", "ann_id": ann})
    assert w.error == "" and len(ds.annotations_of(ids[4])) == before
    w.handle({"action": "undo"})  # the box is back (x1 = 20)
    assert w.error == "" and ds.annotations_of(ids[4])["x1"].max() == 20
    w.handle({"action": "undo"})  # the update is undone (x1 = 12)
    assert w.error == "", w.error
    back = ds.annotations_of(ids[4])
    assert len(back) == before + 1 and 12 in back["x1"].tolist()
    w.handle({"action": "undo"})  # the add is undone
    assert w.error == "" and len(ds.annotations_of(ids[4])) == before


def test_object_attributes_are_set_undone_and_kept_through_a_deleted_objects_undo(det):
    ds, ids = det
    ann = ds.add_polygon(ids[4], "red", [[2, 2], [30, 2], [30, 30]], difficult=True)
    w = hx.Annotator(ds, ids[4])
    w.handle({"action": "update", "ann_id": ann, "occluded": True})
    assert w.error == ""
    w.handle({"action": "update", "ann_id": ann, "truncated": "yes"})
    assert "true or false" in w.error

    def flags(ann_id):
        row = hx.Dataset.open(ds.path).annotations.set_index("ann_id").loc[ann_id]
        return [bool(row[f]) for f in ("difficult", "truncated", "occluded")]

    assert flags(ann) == [True, False, True]
    shown = next(a for a in w.annotations if a["ann_id"] == ann)
    assert (shown["difficult"], shown["truncated"], shown["occluded"]) == (True, False, True)
    w.handle({"action": "delete", "ann_id": ann})
    w.handle({"action": "undo"})  # back under a new id, with its attributes
    back = int(ds.annotations_of(ids[4]).ann_id.max())
    assert back != ann
    assert flags(back) == [True, False, True]
    w.handle({"action": "undo"})  # the occluded mark undone
    assert flags(back) == [True, False, False]


def test_review_toggles_hard_and_changes_a_box_hard_type(det):
    """In the Annotator and in Review (which inherits its handlers)."""
    ds, ids = det
    w = hx.Annotator(ds, ids[0])
    sid = w.sample_id
    box = int(ds.annotations_of(sid).ann_id.iloc[0])
    w.handle({"action": "set_hard", "hard": True})
    assert w.error == "" and ds.sample(sid)["hard"] and ds.sample(sid)["hard_reasons"] == "100"
    w.handle({"action": "set_hard_type", "ann_id": box, "hard_type": "false_positive"})
    assert w.error == ""
    assert (
        hx.Dataset.open(ds.path).annotations.set_index("ann_id").loc[box, "hard_type"]
        == "false_positive"
    )
    w.handle({"action": "set_hard_type", "ann_id": box, "hard_type": "wrong"})
    assert "use one of" in w.error
    w.handle({"action": "set_hard", "hard": "yes"})
    assert "expected true or false" in w.error
    w.handle({"action": "undo"})  # the hard type back to none
    assert ds.annotations.set_index("ann_id").loc[box, "hard_type"] == "none"
    w.handle({"action": "undo"})  # the flag back off
    assert not ds.sample(sid)["hard"]


def test_clear_all_and_no_objects_in_the_annotator(det):
    ds, ids = det
    w = hx.Annotator(ds, ids[0])
    before = ds.annotations_of(ids[0])
    assert len(before) and ds.sample(ids[0])["status"] == "labeled"
    w.handle({"action": "clear"})
    assert w.error == "" and ds.annotations_of(ids[0]).empty
    assert ds.sample(ids[0])["status"] == "unlabeled"
    w.handle({"action": "undo"})  # one step brings back every box and the status
    assert w.error == "", w.error
    assert (
        len(ds.annotations_of(ids[0])) == len(before) and ds.sample(ids[0])["status"] == "labeled"
    )
    w.handle({"action": "clear", "negative": True})
    assert ds.annotations_of(ids[0]).empty and ds.sample(ids[0])["status"] == "labeled"
    w.handle({"action": "clear", "negative": "yes"})
    assert "expected true or false" in w.error


def test_labels_are_added_renamed_and_deleted_from_the_widget(det):
    ds, ids = det
    w = hx.Annotator(ds, ids[0])
    w.handle({"action": "add_label", "name": "cone"})
    assert w.error == "" and "cone" in w.labels and "cone" in ds.label_names
    w.handle({"action": "add_label", "name": "cone"})
    assert "given twice" in w.error
    w.handle({"action": "rename_label", "label": "cone", "name": "pylon"})
    assert w.error == "" and "pylon" in ds.label_names and "cone" not in ds.label_names
    w.handle({"action": "undo"})
    assert "cone" in ds.label_names
    boxes = int((ds.annotations["label"] == "red").sum())
    w.handle({"action": "delete_label", "label": "red"})  # asks first, deletes nothing
    assert f"its {boxes} annotation(s)" in w.asking["message"] and "red" in ds.label_names
    w.handle({**{k: v for k, v in w.asking.items() if k != "message"}, "confirmed": True})
    assert w.error == "" and w.asking == {} and "red" not in ds.label_names
    assert not (hx.Dataset.open(ds.path).annotations["label"] == "red").any()


def test_gallery_upload_adds_images_and_reports_rejects(tmp_path, det):
    from synthetic import write_image

    ds, ids = det
    g = hx.Gallery(ds)
    before = len(ds.samples)
    png = write_image(tmp_path / "u.png", 64, 48).read_bytes()
    other = write_image(tmp_path / "v.png", 64, 48, seed=7).read_bytes()
    g.handle(
        {"action": "upload", "names": ["x.png", "x.png", "notes.png"]},
        [png, other, b"not an image"],
    )
    assert g.error == "" and g.notice.startswith("2 images added, 1 rejected. ")
    assert len(g.notice_details) == 1 and g.notice_details[0].startswith("notes.png: ")
    assert len(ds.samples) == before + 2 and g.total == before + 2
    # the same upload again: nothing added, each file named as already there
    g.handle(
        {"action": "upload", "names": ["x.png", "y.png", "notes.png"]},
        [png, other, b"not an image"],
    )
    assert g.notice.startswith("0 images added, 2 already in the dataset, 1 rejected. ")
    assert [d.split(":")[0] for d in g.notice_details] == ["notes.png", "x.png", "y.png"]
    assert "already in the dataset" in g.notice_details[1]
    assert len(ds.samples) == before + 2
    # a text file is skipped and said so; every one of 5 bad files is listed, not 3
    g.handle(
        {"action": "upload", "names": ["readme.txt", *[f"bad{k}.png" for k in range(5)]]},
        [b"notes", *[b"not an image"] * 5],
    )
    assert g.notice.startswith("0 images added, 1 skipped, 5 rejected. ")
    assert len(g.notice_details) == 6
    assert "readme.txt: not an image" in g.notice_details[-1]
    g.handle({"action": "sort", "by": "name", "ascending": True})  # the next action clears them
    assert g.notice_details == []
    # a 120-character CJK name (360 bytes, over a file name's 255) and a name no file
    # system holds are refused alone: the other files of the batch land
    cjk = "猫" * 120 + ".png"
    third = write_image(tmp_path / "w.png", 64, 48, seed=8).read_bytes()
    fourth = write_image(tmp_path / "z.png", 64, 48, seed=9).read_bytes()
    g.handle({"action": "upload", "names": [cjk, "bad\x00.png"]}, [third, fourth])
    assert g.notice.startswith("1 image added, 1 rejected. ")
    assert g.notice_details[0].startswith("bad\x00.png: cannot be saved")
    assert ds.samples["name"].iloc[-1].startswith("猫" * 80)
    g.handle({"action": "upload", "names": ["a.png", "b.png"]}, [png])
    assert "one file name per file" in g.error and len(ds.samples) == before + 3
    fresh = write_image(tmp_path / "p.png", 64, 48, seed=10).read_bytes()
    g.handle({"action": "upload", "names": ["../../etc/x.png"]}, [fresh])  # a name, not a path
    assert g.error == "" and ds.samples["name"].iloc[-1] == "x.png"


def test_turning_a_box_and_ignore_polygons_reach_disk_and_undo(det):
    ds, ids = det
    w = hx.Annotator(ds, ids[4])
    w.handle({"action": "add_box", "label": "red", "x0": 10, "y0": 20, "x1": 40, "y1": 30})
    ann = w.annotations[-1]["ann_id"]
    w.handle({"action": "update", "ann_id": ann, "angle": -30})
    assert w.error == "" and w.annotations[-1]["angle"] == 330  # kept in [0, 360)
    w.handle({"action": "update", "ann_id": ann, "x0": 20, "x1": 50})
    w.handle({"action": "delete", "ann_id": ann})
    w.handle({"action": "undo"})  # back, still turned
    assert ds.annotations_of(ids[4])["angle"].tolist() == [330]
    w.handle({"action": "undo"})
    w.handle({"action": "undo"})  # not turned again
    row = ds.annotations_of(ids[4]).iloc[0]
    assert (row["x0"], row["x1"]) == (10, 40) and row["angle"] != row["angle"]
    w.handle({"action": "add_polygon", "kind": "ignore", "points": [[1, 1], [30, 2], [15, 25]]})
    ignore = w.annotations[-1]
    assert w.error == "" and ignore["kind"] == "ignore" and len(ignore["points"]) == 3
    w.handle({"action": "update", "ann_id": ignore["ann_id"], "angle": 10})
    assert "only a box turns" in w.error
    w.handle(
        {"action": "update", "ann_id": ignore["ann_id"], "points": [[2, 2], [31, 3], [16, 26]]}
    )
    assert w.error == "" and w.annotations[-1]["points"][0] == [2, 2]
    w.handle({"action": "delete", "ann_id": ignore["ann_id"]})
    w.handle({"action": "undo"})  # an ignore polygon again
    back = ds.annotations_of(ids[4]).query("kind == 'ignore'").iloc[0]
    assert back["points"] == [[2, 2], [31, 3], [16, 26]]


def test_each_widget_module_is_one_bundle_with_the_shared_dom_helpers():
    """The widgets' ES modules import dom.js (and the Annotator its parts); the bundle
    anywidget loads has each module once, no import left, one default export, and no
    top-level name declared twice."""
    import re

    from hardex_nb.widgets._base import STATIC, bundle

    for name in ("annotator.js", "gallery.js", "report.js", "confusion.js"):
        assert 'from "./dom.js"' in (STATIC / name).read_text()
        text = bundle(name)
        assert text.count("// ---- dom.js") == 1
        assert not re.search(r"^import ", text, re.M)
        assert len(re.findall(r"^export ", text, re.M)) == 1
        declared = re.findall(r"^(?:const|function|let|class) (\w+)", text, re.M)
        assert sorted(set(declared)) == sorted(declared), name
    annotator = bundle("annotator.js")
    for part in ("annotator/keys.js", "annotator/shapes.js", "annotator/side.js"):
        assert f"// ---- {part}" in annotator
    assert annotator.count("function h(") == 1


def test_undo_goes_back_to_the_image_it_was_made_on(det):
    """Delete a box, go to the next image, undo: the box comes back on its own image and
    the widget shows that image; the image shown meanwhile is untouched."""
    ds, ids = det
    w = hx.Annotator(ds, ids[0])
    gone = ds.annotations_of(ids[0]).iloc[0]
    w.handle({"action": "delete", "ann_id": int(gone["ann_id"])})
    w.handle({"action": "next"})
    assert w.sample_id == ids[1]
    second = len(ds.annotations_of(ids[1]))
    w.handle({"action": "undo"})
    assert w.error == "" and w.sample_id == ids[0] and "undone on" in w.notice
    back = ds.annotations_of(ids[0])
    assert ((back["x0"] == gone["x0"]) & (back["label"] == gone["label"])).any()
    assert len(ds.annotations_of(ids[1])) == second


def test_review_confirm_keeps_what_is_shown_and_undo_reverts_confirm_and_delete(tmp_path):
    """Confirm at threshold 0.8 stores no box the slider hid; undo puts the image back in
    the queue with its boxes; a deleted image comes back with its label and boxes."""
    ds, ids, _ = boxes_dataset(tmp_path, n=4, n_labeled=0, size=64)
    for sid in ids[:3]:
        ds.add_box(sid, "red", 5, 5, 30, 30, score=0.9, origin="V1")
        ds.add_box(sid, "blue", 35, 35, 60, 60, score=0.6, origin="V1")
        ds.set_status(sid, "to_confirm")
    w = hx.Review(ds, threshold=0.8)
    first = w.sample_id
    w.handle({"action": "confirm"})
    kept = ds.annotations_of(first)
    assert kept["score"].tolist() == [0.9] and ds.sample(first)["status"] == "labeled"
    assert "without 1 box(es) under the threshold 0.80" in w.notice
    w.handle({"action": "undo"})
    assert w.error == "" and w.sample_id == first and first in w.queue
    assert sorted(ds.annotations_of(first)["score"]) == [0.6, 0.9]
    assert ds.sample(first)["status"] == "to_confirm" and w.count == 3
    # delete an image, undo: it is back in the queue (a new id), with its boxes and status
    name = ds.sample(w.sample_id)["name"]
    w.handle({"action": "delete_sample", "confirmed": True})
    assert name not in ds.samples["name"].tolist() and w.count == 2
    w.handle({"action": "undo"})
    assert w.error == "" and w.count == 3
    back = ds.samples.set_index("name").loc[name]
    assert back["status"] == "to_confirm" and w.sample_id == int(back["sample_id"])
    assert sorted(ds.annotations_of(w.sample_id)["score"]) == [0.6, 0.9]


def test_confirm_uses_the_threshold_the_click_carries(tmp_path):
    """ipywidgets may hold the slider's state update back behind the confirm message: the
    threshold the reviewer saw comes with the click, and a bad one is refused."""
    ds, ids, _ = boxes_dataset(tmp_path, n=2, n_labeled=0, size=64)
    for sid in ids:
        ds.add_box(sid, "red", 5, 5, 30, 30, score=0.9, origin="V1")
        ds.add_box(sid, "blue", 35, 35, 60, 60, score=0.6, origin="V1")
        ds.set_status(sid, "to_confirm")
    w = hx.Review(ds)  # the kernel still has threshold 0
    first = w.sample_id
    w.handle({"action": "confirm", "threshold": 0.8})
    assert ds.annotations_of(first)["score"].tolist() == [0.9] and w.threshold == 0.8
    w.handle({"action": "confirm", "threshold": "high"})
    assert "threshold 'high'" in w.error and ds.sample(w.sample_id)["status"] == "to_confirm"


def test_gallery_open_without_an_annotator_shows_one_below_it(tmp_path):
    ds, ids, _ = bars_dataset(tmp_path, n=6, n_labeled=2)
    g = hx.Gallery(ds)
    assert g._column.children == (g,)
    shown = g._repr_mimebundle_()["application/vnd.jupyter.widget-view+json"]
    assert shown["model_id"] == g._column.model_id
    g.handle({"action": "open", "ids": [ids[3]]})
    assert g.error == "" and isinstance(g.annotator, hx.Annotator)
    assert g._column.children == (g, g.annotator) and g.annotator.sample_id == ids[3]
    g.handle({"action": "open", "ids": [ids[1]]})  # the same Annotator follows
    assert g._column.children == (g, g.annotator) and g.annotator.sample_id == ids[1]


def test_widgets_follow_changes_made_elsewhere(tmp_path):
    """Another Dataset object on the folder (another process, widget or job) deletes and
    relabels: on their next poll the widgets drop the deleted image and show the new label."""
    ds, ids, _ = bars_dataset(tmp_path, n=6, n_labeled=2)
    other = hx.Dataset.open(ds.path)
    g = hx.Gallery(ds)
    a = hx.Annotator(ds, ids[2])
    ds.set_status(ids[3:5], "to_confirm")
    r = hx.Review(ds)
    assert r.queue == [ids[3], ids[4]] and g.total == 6
    other.delete_samples([ids[2]])
    other.set_label(ids[0], "h")
    other.confirm([ids[3]])
    for w in (g, a, r):
        w.handle({"action": "poll"})
        assert w.error == "", w.error
    assert g.total == 5 and ids[2] not in [row["sample_id"] for row in g.rows]
    assert [row["labels"] for row in g.rows if row["sample_id"] == ids[0]] == [["h"]]
    assert a.sample_id != ids[2] and "deleted or done elsewhere" in a.notice
    assert ids[2] not in a._order
    assert r.queue == [ids[4]] and r.sample_id == ids[4]
    # a poll with nothing new leaves an error shown in place
    r.error = "kept"
    r.handle({"action": "poll"})
    assert r.error == "kept"


def test_a_change_elsewhere_found_during_an_action_is_still_drawn(tmp_path):
    """An action that reads without redrawing (a crop request) finds another writer's box:
    the next poll still draws it; a box added from the notebook through the same Dataset
    object before an action is drawn too."""
    ds = hx.Dataset.create(tmp_path / "d", task="detection", labels=["x"])
    write_image(tmp_path / "a.png", 200, 150, seed=0)
    (sid,) = ds.add_images([tmp_path / "a.png"]).added
    w = hx.Annotator(ds, sid)
    w.handle({"action": "poll"})
    other = hx.Dataset.open(ds.path)
    elsewhere = other.add_box(sid, "x", 10, 10, 50, 50)
    w.handle({"action": "crop", "x0": 0, "y0": 0, "x1": 100, "y1": 100})
    w.handle({"action": "poll"})
    assert [a["ann_id"] for a in w.annotations] == [elsewhere]
    here = ds.add_box(sid, "x", 60, 60, 90, 90)  # the notebook, same object
    w.handle({"action": "crop", "x0": 0, "y0": 0, "x1": 100, "y1": 100})
    w.handle({"action": "poll"})
    assert [a["ann_id"] for a in w.annotations] == [elsewhere, here]
    # the widget's own edit is drawn by the action itself, and a poll after it is a no-op
    w.handle({"action": "delete", "ann_id": here})
    assert [a["ann_id"] for a in w.annotations] == [elsewhere]
    assert w._seen == ds.generation


def test_crop_sends_the_region_at_native_resolution(tmp_path):
    import io

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (900, 1200, 3)).astype(np.uint8)
    Image.fromarray(pixels).save(tmp_path / "big.png")
    ds = hx.Dataset.create(tmp_path / "d", task="detection", labels=["x"])
    (sid,) = ds.add_images([tmp_path / "big.png"]).added
    w = hx.Annotator(ds, sid)
    sent = []
    w.send = lambda content, buffers=None: sent.append((content, buffers))
    w.handle({"action": "crop", "x0": 100.4, "y0": 50, "x1": 300, "y1": 170.2})
    assert w.error == "" and len(sent) == 1
    place, (png,) = sent[0][0]["crop"], sent[0][1]
    assert (place["x0"], place["y0"], place["x1"], place["y1"]) == (100, 50, 300, 171)
    assert place["native"] and place["sample_id"] == sid
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(png))), pixels[50:171, 100:300])
    w.handle({"action": "crop", "x0": 500, "y0": 10, "x1": 400, "y1": 20})
    assert "empty region" in w.error and len(sent) == 1


def test_paste_copies_objects_onto_another_image_cut_to_its_bounds_and_undo(tmp_path):
    ds = hx.Dataset.create(tmp_path / "ds", task="detection", labels=["a", "b"])
    paths = [write_image(tmp_path / f"{w}.png", w, h) for w, h in [(40, 30), (80, 60)]]
    small, large = ds.add_images(paths).added
    w = hx.Annotator(ds, small)
    copied = [
        {"kind": "box", "label": "a", "x0": 30, "y0": 20, "x1": 70, "y1": 50, "text": "AB"},
        {"kind": "polygon", "label": "b", "points": [[5, 5], [60, 5], [30, 25]]},
        {"kind": "ignore", "label": None, "x0": 50, "y0": 40, "x1": 70, "y1": 55},  # outside
    ]
    w.handle({"action": "paste", "annotations": copied})
    assert w.error == "" and "2 object(s) pasted (1 outside" in w.notice
    ann = ds.annotations_of(small).set_index("kind")
    assert ann.loc["text", ["x0", "y0", "x1", "y1"]].tolist() == [30, 20, 40, 30]
    assert ann.loc["text", "text"] == "AB" and ann.loc["text", "origin"] == "human"
    assert ann.loc["polygon", "points"] == [[5, 5], [40, 5], [30, 25]]
    w.handle({"action": "undo"})
    assert ds.annotations_of(small).empty  # one paste, one undo step
    w.show(large)
    before = ds.annotations
    w.handle({"action": "paste", "annotations": [copied[0], {"kind": "box", "label": "cow"}]})
    assert "not in the label set" in w.error  # a bad one: none added
    pd.testing.assert_frame_equal(ds.annotations, before)


def test_gallery_sorts_selects_every_match_says_why_nothing_matches_and_sends_boxes(tmp_path):
    ds = hx.Dataset.create(tmp_path / "ds", task="detection", labels=["a"])
    sizes = [(60, 40), (36, 32), (90, 70), (45, 45)]
    paths = [
        write_image(tmp_path / f"{n}.png", w, h, seed=k)
        for k, (n, (w, h)) in enumerate(zip("cadb", sizes))
    ]
    ds.add_images(paths)
    by_name = ds.samples.set_index("name")["sample_id"]
    ids = [int(by_name[f"{n}.png"]) for n in "cadb"]
    ds.add_box(ids[2], "a", 10, 10, 50, 40)
    ds.mark_hard(ids[1], reasons=[1], score=0.9)
    ds.mark_hard(ids[3], reasons=[1], score=0.4)
    g = hx.Gallery(ds, sort_by="name", page_size=2)
    assert [r["name"] for r in g.rows] == ["a.png", "b.png"]
    g.handle({"action": "sort", "by": "hard_score", "ascending": False})
    assert [r["sample_id"] for r in g.rows] == [ids[1], ids[3]] and g.page == 0
    g.handle({"action": "sort", "by": "colour", "ascending": True})
    assert "sort by one of" in g.error
    g.handle({"action": "filter", "filters": {"min_width": 40, "max_width": 60}})
    assert sorted(g.sample_ids) == sorted([ids[0], ids[3]])
    g.handle({"action": "select_all"})
    assert sorted(g.selected) == sorted([ids[0], ids[3]])
    # boxes travel with the rows (drawn on the thumbnails)
    g.handle({"action": "filter", "filters": {"name": "d.png"}})
    assert g.rows[0]["boxes"] == [[10, 10, 50, 40, "a"]]
    # ranges nothing can match are refused with what to do; the filters stay as they were
    for bad, expected in [
        ({"min_width": 80, "max_width": 50}, "swap them"),
        ({"added_after": "2030-01-02T00:00", "added_before": "2030-01-01T00:00"}, "swap them"),
        ({"min_height": -5}, "0 or more"),
        ({"max_width": 1.5}, "whole number"),
    ]:
        g.handle({"action": "filter", "filters": bad})
        assert expected in g.error, bad
        assert g.filters == {"name": "d.png"}
    # an empty result says which filter excludes everything
    g.handle({"action": "filter", "filters": {"min_width": 10**9}})
    assert g.total == 0 and "min_width=1000000000 matches no image" in g.empty_reason
    assert "the largest is 90 px" in g.empty_reason
    g.handle({"action": "filter", "filters": {"name": "a.png", "min_width": 70}})
    assert g.total == 0 and "every filter at once" in g.empty_reason
    g.handle({"action": "filter", "filters": {}})
    assert g.total == 4 and g.empty_reason == ""


def test_undo_keeps_a_bounded_number_of_steps(det):
    from hardex_nb.widgets.annotator import UNDO_STEPS

    ds, ids = det
    w = hx.Annotator(ds, ids[0])
    for k in range(UNDO_STEPS + 5):
        w.handle(
            {"action": "add_box", "label": "red", "x0": 1, "y0": 1, "x1": 10 + k % 20, "y1": 10}
        )
    assert w.error == "" and len(w._undo) == UNDO_STEPS
    boxes = len(ds.annotations_of(ids[0]))
    w.handle({"action": "undo"})  # the newest step goes first
    assert len(ds.annotations_of(ids[0])) == boxes - 1


def test_an_unexpected_handler_error_is_shown_and_logged_with_its_traceback(det, caplog):
    ds, ids = det
    g = hx.Gallery(ds)

    def broken(content):
        raise RuntimeError("a bug in a handler")

    g._on_page = broken
    with caplog.at_level("ERROR", logger="hardex_nb.widgets"):
        g.handle({"action": "page", "page": 0})
    assert g.error == "RuntimeError: a bug in a handler"
    (record,) = [r for r in caplog.records if r.name == "hardex_nb.widgets"]
    assert "Gallery: 'page' failed" in record.getMessage() and record.exc_info is not None


def _boxes(ds, sid) -> list:
    """The image's boxes, in a fixed order (a restored box gets a new id)."""
    return sorted(ds.annotations_of(sid)[["label", "x0", "y0", "x1", "y1"]].values.tolist())


def test_redo_does_each_undone_step_again_and_a_new_edit_ends_the_redo(det):
    """Add, update, delete; undo all three; redo all three: the same boxes at each point.
    Redo after an edit has nothing to do."""
    ds, ids = det
    w = hx.Annotator(ds, ids[4])
    states = [_boxes(ds, ids[4])]
    w.handle({"action": "add_box", "label": "red", "x0": 2, "y0": 2, "x1": 12, "y1": 12})
    states.append(_boxes(ds, ids[4]))
    ann = int(ds.annotations_of(ids[4]).ann_id.max())
    w.handle({"action": "update", "ann_id": ann, "x1": 20, "label": "blue"})
    states.append(_boxes(ds, ids[4]))
    w.handle({"action": "delete", "ann_id": ann})
    states.append(_boxes(ds, ids[4]))
    for expected in reversed(states[:-1]):
        w.handle({"action": "undo"})
        assert w.error == "" and _boxes(ds, ids[4]) == expected
    w.handle({"action": "undo"})
    assert w.error == "nothing to undo"
    for expected in states[1:]:
        w.handle({"action": "redo"})
        assert w.error == "" and _boxes(ds, ids[4]) == expected, w.error
        assert "redone on" in w.notice
    w.handle({"action": "redo"})
    assert w.error == "nothing to redo"
    # undo and redo again, through the renumbered ids: still the same states
    for expected in reversed(states[:-1]):
        w.handle({"action": "undo"})
        assert w.error == "" and _boxes(ds, ids[4]) == expected
    w.handle({"action": "redo"})
    assert _boxes(ds, ids[4]) == states[1]
    w.handle({"action": "add_box", "label": "red", "x0": 30, "y0": 30, "x1": 40, "y1": 40})
    w.handle({"action": "redo"})
    assert w.error == "nothing to redo"


def test_redo_a_label_a_hard_flag_and_a_clear_on_the_image_they_were_made_on(tmp_path):
    ds, ids, _ = boxes_dataset(tmp_path, n=3, n_labeled=3, size=64)
    w = hx.Annotator(ds, ids[0])
    boxes = _boxes(ds, ids[0])
    w.handle({"action": "set_hard", "hard": True})
    w.handle({"action": "clear"})
    assert _boxes(ds, ids[0]) == [] and bool(ds.sample(ids[0])["hard"])
    w.handle({"action": "undo"})
    w.handle({"action": "undo"})
    assert _boxes(ds, ids[0]) == boxes and not bool(ds.sample(ids[0])["hard"])
    w.handle({"action": "next"})
    w.handle({"action": "redo"})  # goes back to the image, marks it hard again
    assert w.sample_id == ids[0] and bool(ds.sample(ids[0])["hard"])
    assert ds.sample(ids[0])["hard_reasons"] == "100"
    w.handle({"action": "redo"})
    assert _boxes(ds, ids[0]) == [] and w.error == ""


def test_review_redo_confirms_and_deletes_again(tmp_path):
    ds, ids, _ = boxes_dataset(tmp_path, n=4, n_labeled=0, size=64)
    for sid in ids[:3]:
        ds.add_box(sid, "red", 5, 5, 30, 30, score=0.9, origin="V1")
        ds.set_status(sid, "to_confirm")
    w = hx.Review(ds)
    first = w.sample_id
    w.handle({"action": "confirm"})
    w.handle({"action": "undo"})
    assert w.sample_id == first and ds.sample(first)["status"] == "to_confirm"
    w.handle({"action": "redo"})
    assert w.error == "" and ds.sample(first)["status"] == "labeled"
    assert first not in w.queue and w.count == 2 and w.sample_id != first  # the next one
    name = ds.sample(w.sample_id)["name"]
    w.handle({"action": "delete_sample", "confirmed": True})
    w.handle({"action": "undo"})
    assert name in ds.samples["name"].tolist() and w.count == 2
    w.handle({"action": "redo"})
    assert w.error == "" and name not in ds.samples["name"].tolist() and w.count == 1
    w.handle({"action": "undo"})  # and back once more, with its box
    back = ds.samples.set_index("name").loc[name]
    assert w.count == 2 and _boxes(ds, int(back["sample_id"])) == [["red", 5, 5, 30, 30]]


def test_undo_never_overwrites_a_later_edit_made_in_another_annotator(det):
    """A moves a box, B moves it again: A's undo would put back A's old box over B's edit.
    It is refused with a notice naming what changed; B's box stays. The same for a box B
    deleted and an image label B changed; with nothing changed elsewhere undo works."""
    ds, ids = det
    a, b = hx.Annotator(ds, ids[4]), hx.Annotator(ds, ids[4])
    a.handle({"action": "add_box", "label": "red", "x0": 2, "y0": 2, "x1": 12, "y1": 12})
    ann = int(ds.annotations_of(ids[4]).ann_id.max())
    a.handle({"action": "update", "ann_id": ann, "x1": 20})
    b.handle({"action": "poll"})  # B shows A's box (the browser polls every few seconds)
    b.handle({"action": "update", "ann_id": ann, "x1": 30})
    assert a.error == b.error == ""
    a.handle({"action": "undo"})
    assert a.error == "" and "nothing undone: the red box was changed since" in a.notice
    assert ds.annotations.set_index("ann_id").loc[ann, "x1"] == 30  # B's edit kept
    # the refused step is dropped; the add before it is refused too (the box changed)
    a.handle({"action": "undo"})
    assert "the red box was changed" in a.notice and ann in ds.annotations["ann_id"].tolist()
    # B's own undo still works: its step is what is on disk
    b.handle({"action": "undo"})
    assert b.error == "" and ds.annotations.set_index("ann_id").loc[ann, "x1"] == 20
    # a box deleted elsewhere: the undo of its move says so
    a.handle({"action": "update", "ann_id": ann, "y1": 18})
    b.handle({"action": "poll"})
    b.handle({"action": "delete", "ann_id": ann})
    a.handle({"action": "undo"})
    assert "the red box was deleted since" in a.notice
    assert ann not in ds.annotations["ann_id"].tolist()


def test_undo_of_an_image_label_keeps_a_label_set_elsewhere_since(tmp_path):
    from synthetic import bars_dataset

    ds, ids, _ = bars_dataset(tmp_path, n=4, n_labeled=0, size=32)
    a, b = hx.Annotator(ds, ids[0], advance=False), hx.Annotator(ds, ids[0], advance=False)
    first, second = "v", "h"
    a.handle({"action": "set_label", "label": first})
    b.handle({"action": "poll"})
    b.handle({"action": "set_label", "label": second})
    a.handle({"action": "undo"})
    assert f"the image's label was set to {second!r} since" in a.notice
    assert ds.sample(ids[0])["label"] == second
    b.handle({"action": "undo"})
    assert b.error == "" and ds.sample(ids[0])["label"] == first


def _kept(ds, ids) -> dict:
    """What a delete must bring back, by image name: boxes, status, split, hard, bytes."""
    return {
        ds.sample(i)["name"]: (
            _boxes(ds, i),
            ds.sample(i)["status"],
            ds.sample(i)["split"],
            bool(ds.sample(i)["hard"]),
            ds.image_path(i).read_bytes(),
        )
        for i in ids
    }


def test_gallery_batch_delete_is_undone_with_labels_fields_and_bytes(det):
    """Delete three images from the Gallery, one of them with a label deleted since: Undo
    adds all three back (new ids) with their boxes, status, split, hard flag and bytes;
    a second Undo has nothing left; a run twice of the same delete-undo gives the same."""
    ds, ids = det
    g = hx.Gallery(ds)
    gone = ids[:3]
    ds.mark_hard(gone[1], True, reasons=[4], score=0.7)
    before = _kept(ds, gone)
    total = len(ds.samples)
    g.handle({"action": "delete", "ids": gone, "confirmed": True})
    assert len(ds.samples) == total - 3 and g.undoable == "3 images"
    assert g.notice == "3 images deleted (Undo brings them back)"
    used = sorted({b[0] for boxes, *_ in before.values() for b in boxes})
    ds.delete_label(used[0])  # gone with its boxes on the other images: Undo brings it back
    for _ in range(2):  # delete and undo, twice
        g.handle({"action": "undo"})
        assert g.error == "" and g.notice == "3 images added back" and g.undoable == ""
        assert len(ds.samples) == total and len(g.selected) == 3
        after = _kept(ds, g.selected)
        assert after == before and used[0] in ds.label_names
        g.handle({"action": "delete", "ids": g.selected, "confirmed": True})
    g.handle({"action": "undo"})
    g.handle({"action": "undo"})
    assert g.error == "nothing to undo" and len(ds.samples) == total


def test_a_test_image_shows_the_runs_predictions_with_their_scores(det):
    """hx.evaluate on the test split stores the run's predictions; the Annotator shows them
    on a test image (with the run's version), and nothing on a training image."""
    import torch

    ds, ids = det
    ds.set_split(ids[:3], "test")

    def fixed(x):  # one box, the same on every image: 4..20 px of the 32 px input
        box = {
            "boxes": torch.tensor([[4.0, 4.0, 20.0, 20.0], [2.0, 2.0, 6.0, 6.0]]),
            "labels": torch.tensor([1, 2]),
            "scores": torch.tensor([0.83, 0.2]),
        }
        return [box] * len(x)

    run = hx.wrap_model(ds, fixed, image_size=32, name="fixed")
    w = hx.Annotator(ds, ids[0])
    assert w.predicted == [] and w.predicted_by == ""  # nothing stored yet
    hx.evaluate(ds, run, progress=False)
    stored = ds.predictions(run.version)
    assert sorted(set(stored["sample_id"])) == sorted(ids[:3])
    w.show(ids[0])
    assert w.predicted_by == run.version
    scale = ds.sample(ids[0])["width"] / 32
    (top, low) = w.predicted
    assert top["label"] == ds.label_names[0] and top["score"] == pytest.approx(0.83)
    assert top["x1"] == pytest.approx(20 * scale) and low["score"] == pytest.approx(0.2)
    w.show(ids[4])  # a training image: no test predictions shown
    assert w.predicted == [] and w.predicted_by == ""
    hx.evaluate(ds, run, progress=False)  # again: the same rows, not twice as many
    assert len(ds.predictions(run.version)) == len(stored)


def test_a_classification_test_image_shows_the_runs_class_and_score(tmp_path):
    import torch
    from synthetic import bars_dataset

    ds, ids, truth = bars_dataset(tmp_path, n=6, n_labeled=6, size=32)
    ds.set_split(ids[:2], "test")
    run = hx.wrap_model(ds, lambda x: torch.tensor([[0.9, 0.1]] * len(x)), image_size=32)
    hx.evaluate(ds, run, progress=False)
    w = hx.Annotator(ds, ids[1])
    assert w.predicted_by == run.version
    assert [(p["label"], round(p["score"], 2), p["x0"]) for p in w.predicted] == [("v", 0.9, None)]


def test_the_views_own_requests_leave_the_last_actions_message_shown(det):
    """A crop (the browser asking for a zoomed-in view's pixels) or a poll is not the
    person's action: the notice of their last one stays (a crop after a layout change
    wiped the point tool's "nothing stands out")."""
    ds, ids = det
    w = hx.Annotator(ds, ids[0])
    w.handle({"action": "add_label", "name": "cone"})
    assert w.notice == "label 'cone' added"
    w.handle({"action": "crop", "x0": 0, "y0": 0, "x1": 32, "y1": 32})
    w.handle({"action": "poll"})
    assert w.error == "" and w.notice == "label 'cone' added"
    w.handle({"action": "next"})  # a person's action: a new message, or none
    assert w.notice == ""
