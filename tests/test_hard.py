"""Hard-example scores and reasons (hard.py)."""

import numpy as np
import pytest

from hardex_nb import ValidationError, hard


def test_mislabel_scores_rank_flipped_labels_first():
    rng = np.random.default_rng(0)
    n, k = 400, 4
    y_true = rng.integers(0, k, n)
    logits = rng.normal(0, 1, (n, k))
    logits[np.arange(n), y_true] += 3.0
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    given = y_true.copy()
    flipped = rng.choice(n, 40, replace=False)
    given[flipped] = (given[flipped] + rng.integers(1, k, 40)) % k
    scores = hard.mislabel_scores(given, probs)
    assert scores.shape == (n,) and ((0 <= scores) & (scores <= 1)).all()
    top = np.argsort(-scores)[:40]
    assert len(set(top) & set(flipped)) >= 32  # precision ≥ 0.8 at the number flipped


def test_mislabel_scores_adjust_for_class_confidence():
    # class 1 is predicted with low confidence overall: a 0.45 on it is normal, not suspicious
    probs = np.array([[0.9, 0.1], [0.85, 0.15], [0.55, 0.45], [0.5, 0.5], [0.52, 0.48]])
    labels = np.array([0, 0, 1, 1, 1])
    s = hard.mislabel_scores(labels, probs)
    assert s[2] < 0.5 and s[0] < 0.5


def test_mislabel_scores_validate():
    with pytest.raises(ValidationError, match="sum to 1"):
        hard.mislabel_scores([0, 1], [[0.9, 0.9], [0.5, 0.5]])
    with pytest.raises(ValidationError, match="integer class indices"):
        hard.mislabel_scores([0.5, 1], [[0.5, 0.5], [0.5, 0.5]])
    with pytest.raises(ValidationError, match=r"\[0, 2\)"):
        hard.mislabel_scores([0, 2], [[0.5, 0.5], [0.5, 0.5]])


def test_classification_hardness_reasons():
    probs = np.array([[0.98, 0.02], [0.55, 0.45], [0.9, 0.1], [0.95, 0.05]])
    tta = np.array([[[0.97, 0.03], [0.5, 0.5], [0.2, 0.8], [0.95, 0.05]]])
    t = hard.classification_hardness(probs, tta_probs=tta, flag="any")
    assert t["reasons"].tolist() == ["", "1", "4", ""]
    assert t["hard"].tolist() == [False, True, True, False]
    assert t["score"].iloc[0] < t["score"].iloc[1:3].min()
    # the selective flag marks as many as the model expects wrong (0.02+0.45+0.1+0.05 → 1):
    # the highest score, with the reasons of the others kept
    t = hard.classification_hardness(probs, tta_probs=tta)
    assert t["hard"].sum() == hard.expected_errors(probs) == 1
    assert t["hard"].iloc[int(t["score"].to_numpy().argmax())]
    assert t["reasons"].tolist() == ["", "1", "4", ""]
    with pytest.raises(ValidationError, match="flag="):
        hard.classification_hardness(probs, flag="some")
    # with given labels: a confident prediction against its label is a suspected mislabel
    probs = np.array([[0.95, 0.05]] * 10 + [[0.05, 0.95]] * 10 + [[0.97, 0.03]])
    labels = [0] * 10 + [1] * 11
    t = hard.classification_hardness(probs, labels=labels)
    assert t["reasons"].iloc[-1] == "101" and not t["hard"].iloc[:-1].any()
    assert "mislabel" in t
    with pytest.raises(ValidationError, match="tta_probs"):
        hard.classification_hardness(probs, tta_probs=np.ones((1, 3, 2)) / 2)


def test_select_batch_spreads_over_clusters_and_classes():
    rng = np.random.default_rng(0)
    # three tight clusters; the 8 most uncertain images all lie in cluster 0
    centers = np.eye(3, 8) * 10
    sizes = (8, 20, 32)
    cluster = np.repeat([0, 1, 2], sizes)
    x = np.concatenate([c + rng.normal(0, 0.1, (k, 8)) for c, k in zip(centers, sizes)])
    scores = np.r_[np.full(8, 0.9), np.full(20, 0.5), np.full(32, 0.4)] + rng.uniform(0, 0.05, 60)
    top = hard.select_batch(scores, x, 2, strategy="score")
    assert cluster[top].tolist() == [0, 0]  # uncertainty alone: one confusion twice
    picked = hard.select_batch(scores, x, 2, seed=1)
    assert sorted(cluster[picked]) == [0, 1]
    # k-center avoids what is already covered: cluster 0 labeled, so it starts elsewhere
    covered = centers[:1] + rng.normal(0, 0.1, (5, 8))
    first = hard.select_batch(scores, x, 2, strategy="kcenter", covered=covered)
    assert 0 not in cluster[first]
    # class balance: at most ceil(2n/K) per predicted class (the 28 most uncertain are all
    # predicted 0; with 4 classes a batch of 4 takes at most 2 of them)
    predicted = np.where(cluster < 2, 0, 1 + np.arange(60) % 3)
    unbalanced = hard.select_batch(scores, x, 4, seed=0)
    assert (predicted[unbalanced] == 0).sum() > 2
    both = hard.select_batch(scores, x, 4, predicted=predicted, seed=0)
    assert (predicted[both] == 0).sum() == 2 and len(set(both.tolist())) == 4
    with pytest.raises(ValidationError, match="strategy"):
        hard.select_batch(scores, x, 3, strategy="best")
    with pytest.raises(ValidationError, match="rows"):
        hard.select_batch(scores[:5], x, 3)
    assert hard.select_batch(scores, x, 0).size == 0


def _pred(boxes, labels, scores):
    return {
        "boxes": np.asarray(boxes, float).reshape(-1, 4),
        "labels": np.asarray(labels),
        "scores": np.asarray(scores, float),
    }


def test_detection_hardness_false_positive_missed_and_reasons():
    image0 = _pred([[0, 0, 10, 10], [50, 50, 60, 60], [20, 20, 30, 30]], [0, 0, 1], [0.9, 0.8, 0.3])
    view0 = _pred([[0, 0, 10, 10], [20, 20, 30, 30], [70, 70, 90, 90]], [0, 1, 1], [0.85, 0.4, 0.9])
    image1 = _pred([], [], [])
    view1 = _pred([], [], [])
    image2 = _pred([[0, 0, 10, 10]], [0], [0.55])
    view2 = _pred([[0, 0, 10, 10]], [0], [0.6])
    boxes, images = hard.detection_hardness([image0, image1, image2], [[view0, view1, view2]])
    b0 = boxes[boxes["image"] == 0].set_index(["x0", "y0"])["hard_type"]
    assert b0[(0, 0)] == "none"  # confident and confirmed
    assert b0[(50, 50)] == "false_positive"  # vanishes in the mirrored view
    assert b0[(20, 20)] == "missed"  # below the threshold, confirmed by the view
    assert b0[(70, 70)] == "missed"  # only the view finds it
    imgs = images.set_index("image")
    assert imgs.loc[0, "reasons"] == "4" and imgs.loc[0, "score"] == pytest.approx(3 / 4)
    assert imgs.loc[1, "reasons"] == "0" and imgs.loc[1, "hard"]
    assert imgs.loc[2, "reasons"] == "1"  # 0.55 is within the band around 0.5
    # no hard box, but a box near the threshold: hard, and scored by how near (not 0)
    assert imgs.loc[2, "hard"] and imgs.loc[2, "score"] == pytest.approx(1 - 0.05 / 0.15)
    with pytest.raises(ValidationError, match="tta_preds"):
        hard.detection_hardness([image0], [[view0, view1]])


def test_training_distance_and_resolution():
    rng = np.random.default_rng(1)
    centers = np.eye(8)[:2] * 10
    train = np.r_[centers[0] + rng.normal(0, 1, (50, 8)), centers[1] + rng.normal(0, 1, (50, 8))]
    labels = np.r_[np.zeros(50, int), np.ones(50, int)]
    query = np.r_[
        [centers[0] + rng.normal(0, 1, 8)],
        [centers[1] + rng.normal(0, 1, 8)],
        [-centers[0] + np.eye(8)[5] * 10],
    ]
    out = hard.training_distance(train, labels, query, [0, 0, 0])
    assert out["reasons"].iloc[0] == ""
    assert "2" in out["reasons"].iloc[1]  # looks like class 1, predicted 0
    assert "3" in out["reasons"].iloc[2]  # far from everything of class 0
    sizes = np.array([[640, 480]] * 20 + [[600, 450]] * 20)
    flags = hard.resolution_outliers(sizes, [[640, 480], [4000, 3000], [640, 100]])
    assert flags.tolist() == [False, True, True]
    assert hard.merge_reasons(["1", ""], ["3-1", "5"]) == ["1-3", "5"]


def test_low_boxes_on_found_objects_are_not_misses():
    image = _pred(
        [[0, 0, 10, 10], [1, 0, 10, 10], [40, 40, 50, 50], [41, 40, 50, 50]],
        [0, 0, 0, 0],
        [0.9, 0.3, 0.4, 0.35],
    )
    view = _pred(
        [[0, 0, 10, 10], [1, 0, 10, 10], [40, 40, 50, 50], [41, 40, 50, 50]],
        [0, 0, 0, 0],
        [0.9, 0.3, 0.4, 0.35],
    )
    boxes, _ = hard.detection_hardness([image], [[view]])
    missed = boxes[boxes["hard_type"] == "missed"]
    # the 0.3 box duplicates the confident one; of the two low boxes at (40, 40) one is kept
    assert missed[["x0", "score"]].values.tolist() == [[40.0, 0.4]]


def test_one_vocabulary_for_reasons_and_hard_types():
    from hardex_nb import reasons
    from hardex_nb.widgets.annotator import Annotator

    assert [int(r) for r in reasons.Reason] == [0, 1, 2, 3, 4, 5, 100, 101]
    assert reasons.Reason.SUSPECTED_MISLABEL.text == "suspected mislabel"
    assert set(reasons.REASON_TEXTS) == {int(r) for r in reasons.Reason}
    assert reasons.encode_reasons([4, 1, 4, hard.Reason.MARKED_BY_HAND]) == "4-1-100"
    assert reasons.parse_reasons("4-1-100") == [4, 1, 100] and reasons.parse_reasons("") == []
    with pytest.raises(ValidationError, match="whole numbers"):
        reasons.parse_reasons("1-x")
    assert reasons.HARD_TYPES == ("none", "false_positive", "missed")
    assert Annotator.class_traits()["reason_texts"].default()["101"] == "suspected mislabel"


def test_temperature_scaling_softens_an_overconfident_model_and_counts_its_errors():
    """Probabilities 0.99 sure and right 70% of the time: the fitted temperature softens
    them until the errors they expect are about the errors made; a well calibrated model
    keeps T near 1, and T never goes below 1 by default."""
    rng = np.random.default_rng(0)
    n, k = 2000, 5
    right = rng.random(n) < 0.7
    top = rng.integers(0, k, n)
    labels = np.where(right, top, (top + rng.integers(1, k, n)) % k)
    probs = np.full((n, k), 0.01 / (k - 1))
    probs[np.arange(n), top] = 0.99
    assert hard.expected_errors(probs) == 20  # it expects 20 errors, makes about 600
    t = hard.fit_temperature(probs, labels)
    assert t > 2
    calibrated = hard.tempered(probs, t)
    assert np.allclose(calibrated.sum(1), 1)
    assert (calibrated.argmax(1) == top).all()  # the ranking of classes is kept
    assert abs(hard.expected_errors(calibrated) - int((~right).sum())) < 0.05 * n
    fair = np.full((n, k), 0.3 / (k - 1))
    fair[np.arange(n), top] = 0.7
    assert hard.fit_temperature(fair, labels) == pytest.approx(1.0, abs=0.1)
    assert np.array_equal(hard.tempered(probs, 1.0), probs)
    assert hard.fit_temperature(fair[right], labels[right]) == 1.0  # all right: not sharpened
