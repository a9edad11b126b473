"""The multilabel task: several labels per image, from the store to the review."""

import json
import shutil

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, f1_score, hamming_loss
from synthetic import FIXTURES, squares_dataset, write_image

import hardex_nb as hx
from hardex_nb import FormatError, ValidationError, hard
from hardex_nb.evaluation import evaluate_multilabel, f1_thresholds
from hardex_nb.reasons import parse_reasons

SDK_MANIFEST = FIXTURES / "modelarts_sdk" / "classification-multi-xy-V201902220937263726.manifest"


@pytest.fixture
def ml_ds(tmp_path):
    ds = hx.Dataset.create(tmp_path / "ds", task="multilabel", labels=["cat", "dog", "sky"])
    for i in range(3):
        write_image(tmp_path / "img" / f"{i}.png", 50, 40, seed=i)
    ds.add_images(tmp_path / "img")
    return ds


def test_set_labels_twice_gives_the_same_dataset(ml_ds):
    a, b, c = ml_ds.samples["sample_id"].tolist()
    for _ in range(2):
        ml_ds.set_labels([a, b], ["dog", "cat", "dog"])
        ml_ds.set_labels(c, [])
    samples = ml_ds.samples.set_index("sample_id")
    assert samples.loc[a, "labels"] == ["cat", "dog"]  # label-set order, no repeat
    assert samples.loc[c, "labels"] == [] and samples.loc[c, "status"] == "labeled"
    assert len(ml_ds.annotations) == 4 and set(ml_ds.annotations["kind"]) == {"tag"}
    assert ml_ds.query(label="dog")["sample_id"].tolist() == [a, b]
    ml_ds.set_labels(a, None)
    assert ml_ds.labels_of(a) == [] and ml_ds.sample(a)["status"] == "unlabeled"
    again = hx.Dataset.open(ml_ds.path)
    assert again.samples.set_index("sample_id").loc[b, "labels"] == ["cat", "dog"]


def test_change_labels_gives_and_takes_keeping_the_others_twice_alike(ml_ds):
    a, b, c = ml_ds.samples["sample_id"].tolist()
    ml_ds.set_labels(a, ["cat"])
    for _ in range(2):
        ml_ds.change_labels([a, b], add=["dog"])
    assert [ml_ds.labels_of(i) for i in (a, b, c)] == [["cat", "dog"], ["dog"], []]
    assert ml_ds.sample(b)["status"] == "labeled" and ml_ds.sample(c)["status"] == "unlabeled"
    for _ in range(2):
        ml_ds.change_labels([a, b], remove="dog", add="sky")
    assert [ml_ds.labels_of(i) for i in (a, b)] == [["cat", "sky"], ["sky"]]
    with pytest.raises(ValidationError, match="both added and removed"):
        ml_ds.change_labels(a, add=["cat"], remove=["cat"])
    gallery = hx.Gallery(ml_ds)
    gallery.handle({"action": "change_labels", "ids": [a, c], "label": "cat", "give": False})
    assert gallery.error == "" and ml_ds.labels_of(a) == ["sky"]
    assert ml_ds.labels_of(c) == [] and ml_ds.sample(c)["status"] == "labeled"


def test_one_label_calls_are_refused_with_what_to_call(ml_ds):
    sid = int(ml_ds.samples["sample_id"].iloc[0])
    with pytest.raises(ValidationError, match="set_labels"):
        ml_ds.set_label(sid, "cat")
    with pytest.raises(ValidationError, match="give a list"):
        ml_ds.set_labels(sid, "cat")
    with pytest.raises(ValidationError, match="unicorn"):
        ml_ds.set_labels(sid, ["cat", "unicorn"])
    assert ml_ds.labels_of(sid) == []  # nothing written by the refused call
    with pytest.raises(ValidationError, match="add_box|detection"):
        ml_ds.add_box(sid, "cat", 1, 1, 5, 5)


def _sdk_images(tmp_path):
    names = [json.loads(line)["source"].rsplit("/", 1)[1] for line in open(SDK_MANIFEST)]
    for i, name in enumerate(names):
        write_image(tmp_path / "imgs" / name, 40, 32, seed=i)
    return names


def test_the_modelarts_sdk_multilabel_manifest_imports_with_its_labels_twice(tmp_path):
    names = _sdk_images(tmp_path)
    ds = hx.Dataset.create(tmp_path / "ds", task="multilabel")
    ds.add_images(tmp_path / "imgs")
    first = ds.import_manifest(SDK_MANIFEST)
    second = ds.import_manifest(SDK_MANIFEST)  # a cell run twice
    assert len(first.matched) == 19 and len(first.annotations) == 20
    assert second.annotations == [] and second.already == 20
    labels = ds.samples.set_index("name")["labels"]
    assert sorted(labels.loc["2_1550650971273.jpg"]) == ["Cat", "Dog"]  # the file's last line
    assert labels.loc["11_1550650987036.jpg"] == ["Dog"]
    assert sum(len(v) for v in labels) == 20 and len(labels) == len(names)
    samples = ds.samples.set_index("name")
    assert samples.loc["11_1550650987036.jpg", "hard"]  # "hard": "true" on its annotation
    assert (samples["status"] == "labeled").all()  # annotated-by human


def test_a_classification_dataset_refuses_the_multilabel_line_and_says_what_to_do(tmp_path):
    _sdk_images(tmp_path)
    ds = hx.Dataset.create(tmp_path / "ds", task="classification")
    ds.add_images(tmp_path / "imgs")
    with pytest.raises(FormatError, match=r"line 19: 2 labels \['Cat', 'Dog'\].*multilabel"):
        ds.import_manifest(SDK_MANIFEST)
    assert ds.samples["label"].isna().all() and ds.label_names == []


@pytest.mark.parametrize("fmt", ["manifest", "labelme"])
def test_labels_travel_both_ways(tmp_path, fmt):
    _sdk_images(tmp_path)
    ds = hx.Dataset.create(tmp_path / "ds", task="multilabel")
    ds.add_images(tmp_path / "imgs")
    ds.import_manifest(SDK_MANIFEST)
    ds.export_annotations(fmt, tmp_path / "out", images=False)
    back = hx.Dataset.create(tmp_path / "back", task="multilabel")
    back.add_images(tmp_path / "imgs")
    back.import_annotations(fmt, tmp_path / "out")
    wanted = {n: set(v) for n, v in ds.samples.set_index("name")["labels"].items()}
    assert {n: set(v) for n, v in back.samples.set_index("name")["labels"].items()} == wanted
    if fmt == "labelme":  # every flag of the label set written, true for those carried
        doc = json.loads((tmp_path / "out" / "2_1550650971273.json").read_text())
        assert doc["flags"] == {"Dog": True, "Cat": True}
        assert doc["shapes"] == []


def test_formats_without_image_labels_refuse_a_multilabel_export(ml_ds, tmp_path):
    ml_ds.set_labels(ml_ds.samples["sample_id"].iloc[0], ["cat"])
    for fmt in ("voc", "yolo", "coco", "dota"):
        with pytest.raises(FormatError, match="labelme.*manifest"):
            ml_ds.export_annotations(fmt, tmp_path / fmt)
        assert not (tmp_path / fmt).exists()


def test_labelme_flags_several_set_import_as_several_labels(tmp_path):
    src = FIXTURES / "labelme" / "classification" / "data_annotated"
    work = tmp_path / "lm"
    shutil.copytree(src, work)
    doc_path = sorted(work.glob("*.json"))[0]
    doc = json.loads(doc_path.read_text())
    assert doc["flags"] == {"__ignore__": False, "cat": True, "dog": False}  # as published
    doc["flags"]["dog"] = True  # a labeler ticks a second flag
    doc_path.write_text(json.dumps(doc))
    ds = hx.Dataset.create(tmp_path / "ds", task="multilabel")
    ds.add_images(work)
    ds.import_labelme(work)
    stem = doc_path.stem
    row = ds.samples[ds.samples["name"].str.startswith(stem)].iloc[0]
    assert sorted(row["labels"]) == ["cat", "dog"]


# -- evaluation and hard examples -----------------------------------------------------------------
def _noisy(seed=0, n=300, k=4):
    rng = np.random.default_rng(seed)
    y = rng.random((n, k)) < 0.3
    p = np.clip(y * 0.35 + rng.random((n, k)) * 0.65, 0, 1).round(2)  # ties included
    return y, p


def test_evaluation_equals_scikit_learn():
    y, p = _noisy()
    t = np.array([0.5, 0.4, 0.6, 0.3])
    report = evaluate_multilabel(y, p, label_names=list("abcd"), thresholds=t)
    expected_ap = [average_precision_score(y[:, k], p[:, k]) for k in range(4)]
    assert np.allclose(report.per_label["ap"], expected_ap, atol=1e-12)
    assert report.map == pytest.approx(np.mean(expected_ap))
    given = p >= t
    assert report.hamming_loss == pytest.approx(hamming_loss(y, given))
    assert report.exact_match == pytest.approx((given == y).all(axis=1).mean())
    assert np.allclose(report.per_label["f1"], f1_score(y, given, average=None))
    found, counted = report.tally
    assert report.avg_detection_rate == pytest.approx((given & y).sum() / y.sum())
    assert counted == y.sum() and found == (given & y).sum()
    with pytest.raises(ValidationError, match="no confusion matrix"):
        report.confusion()  # what ConfusionMatrix shows
    err = report.errors("a")
    assert len(err) == (given[:, 0] != y[:, 0]).sum()
    assert set(err["predicted"]) <= {"missed", "false"}


def test_f1_thresholds_are_the_best_f1_on_those_images():
    y, p = _noisy(1)
    t = f1_thresholds(y, p)
    for k in range(y.shape[1]):
        best = max(f1_score(y[:, k], p[:, k] >= u) for u in np.unique(p[:, k]))
        assert f1_score(y[:, k], p[:, k] >= t[k]) == pytest.approx(best)
    assert f1_thresholds(np.zeros((5, 2)), np.random.default_rng(0).random((5, 2))).tolist() == [
        0.5,
        0.5,
    ]


def test_hard_examples_rank_the_wrong_decisions_first():
    y, p = _noisy(2)
    table = hard.multilabel_hardness(p, 0.5)
    wrong = ((p >= 0.5) != y).any(axis=1)
    top = np.argsort(-table["score"].to_numpy())[: wrong.sum()]
    assert wrong[top].mean() > 0.75  # far above the base rate
    assert wrong.mean() < 0.75
    # a label right at its threshold is uncertain; one far from it is not
    edge = hard.multilabel_hardness(np.array([[0.52, 0.99], [0.01, 0.95]]), [0.5, 0.5])
    assert edge["uncertain"].tolist() == [[0], []]
    assert edge["reasons"].tolist() == ["1", ""]
    mirrored = hard.multilabel_hardness(
        np.array([[0.9, 0.1]]), [0.5, 0.5], tta_probs=np.array([[0.4, 0.1]])
    )
    assert mirrored["reasons"].iloc[0] == "4" and mirrored["uncertain"].iloc[0] == [0]
    # three doubtful decisions, none doubtful enough alone: flagged, and said why
    many = hard.multilabel_hardness(np.array([[0.75, 0.25, 0.74], [0.99, 0.01, 0.99]]), 0.5)
    assert many["hard"].tolist() == [True, False] and many["reasons"].tolist() == ["1", ""]
    assert many["uncertain"].iloc[0] == [2]


def test_mislabel_scores_point_at_the_flipped_decision():
    rng = np.random.default_rng(0)
    y = (rng.random((200, 3)) < 0.4).astype(int)
    p = np.clip(np.where(y, 0.85, 0.15) + rng.normal(0, 0.05, y.shape), 0, 1)
    given = y.copy()
    given[7, 1] = 1 - given[7, 1]
    given[42, 2] = 1 - given[42, 2]
    scores = hard.multilabel_mislabel_scores(given, p)
    worst = set(map(tuple, np.argwhere(scores >= np.sort(scores.ravel())[-2])))
    assert worst == {(7, 1), (42, 2)}
    # pruning marks only what beats the per-class thresholds: (42, 2) here, not (7, 1),
    # whose 0.84 for "not carried" is just under that class's mean (cleanlab's
    # find_label_issues marks the same one image on these numbers)
    issues = hard.multilabel_label_issues(given, p)
    assert set(map(tuple, np.argwhere(issues))) == {(42, 2)}
    clear = p.copy()
    clear[7, 1] = 0.02  # far from every image given the label
    assert set(map(tuple, np.argwhere(hard.multilabel_label_issues(given, clear)))) == {
        (7, 1),
        (42, 2),
    }


# -- the loop, trained -----------------------------------------------------------------------------
@pytest.mark.slow
def test_train_evaluate_auto_label_and_review_a_multilabel_dataset(tmp_path):
    ds, ids, truth = squares_dataset(tmp_path, n=140, n_labeled=80)
    ds.set_split(ids[60:80], "val")
    run = hx.train(ds, epochs=8, image_size=32, progress=False)
    assert run.thresholds.shape == (3,) and not np.allclose(run.thresholds, 0.5)
    again = hx.Run.load(ds, run.version)
    assert np.allclose(again.thresholds, run.thresholds)
    assert ds.runs["avg_detection_rate"].iloc[-1] > 0.8
    # held out: the 60 unlabeled images, never trained on
    pool = ids[80:]
    probs = run.predict_proba(pool)
    y = np.array([[name in t for name in ds.label_names] for t in truth[80:]])
    held_out = evaluate_multilabel(y, probs, label_names=ds.label_names, thresholds=run.thresholds)
    assert held_out.map > 0.85 and held_out.hamming_loss < 0.15
    report = hx.evaluate(ds, run)
    assert report.header().startswith(f"model {run.version} · avg detection rate")
    assert hx.load_result(ds, report.key).map == pytest.approx(report.map)
    with pytest.raises(hx.JobError, match="mode='fast'"):
        hx.train(ds, mode="accurate", epochs=1, progress=False)

    first = hx.auto_label(ds, run, progress=False)
    shown = ds.samples.set_index("sample_id").loc[pool]
    assert (shown["status"] == "to_confirm").all()
    tags = ds.annotations[ds.annotations["sample_id"].isin(pool)]
    assert set(tags["kind"]) == {"tag"} and set(tags["origin"]) == {run.version}
    predicted = run.predict(pool)
    assert len(tags) == len(predicted) and first.hard_ids
    hard_rows = shown[shown["hard"]]
    # every flag says why in the model's own words: uncertain (1) or inconsistent (4)
    assert all({1, 4} & set(parse_reasons(r)) for r in hard_rows["hard_reasons"])
    # the flag points at the images whose labels are wrong more often than not
    wrong = {
        sid for sid, t in zip(pool, truth[80:]) if sorted(shown.loc[sid, "labels"]) != sorted(t)
    }
    flagged = set(first.hard_ids)
    if wrong:
        assert len(flagged & wrong) / len(flagged) > len(wrong) / len(pool)

    # a second auto-label replaces the first's labels, never stacks them
    ds.set_status(pool, "unlabeled")
    hx.auto_label(ds, run, progress=False)
    assert len(ds.annotations[ds.annotations["sample_id"].isin(pool)]) == len(tags)

    # Review: a click takes a model's label away, confirm makes the rest the reviewer's
    review = hx.Review(ds)
    sid = review.sample_id
    had = ds.labels_of(sid)
    other = next(n for n in ds.label_names if n not in had) if len(had) < 3 else had[0]
    review._on_toggle_label({"label": other})
    now = ds.labels_of(sid)
    assert (other in now) != (other in had)
    review._on_confirm({"threshold": review.threshold})
    assert ds.sample(sid)["status"] == "labeled"
    mine = ds.annotations_of(sid)
    assert set(mine["origin"]) <= {"human"} and sorted(mine["label"].astype(str)) == sorted(now)
    review._on_undo({})  # the confirm
    assert sorted(ds.labels_of(sid)) == sorted(now)
    review._on_undo({})  # the click
    assert ds.sample(sid)["status"] == "to_confirm" and sorted(ds.labels_of(sid)) == sorted(had)
    assert review.probabilities and len(review.probabilities) == 3  # every label's probability

    labeled = int((ds.samples["status"] == "labeled").sum())
    found = hx.find_mislabels(ds, folds=2, epochs=4, image_size=32, progress=False)
    assert {"labels", "issues", "p_red"} <= set(found.table.columns)
    assert len(found.table) == labeled
    flagged = ds.samples.set_index("sample_id").loc[found.flagged]
    assert (flagged["status"] == "to_confirm").all()
    assert all("101" in r for r in flagged["hard_reasons"])
