"""The published time model: what each labeling action costs, priced by hand here."""

import numpy as np
import pytest

from hardex_nb import review_time as rt


def test_classes_by_hand_and_by_review():
    assert rt.label_classes(10).seconds == pytest.approx(30.0)
    bill = rt.review_classes(["a", "b", "a", "c"], ["a", "a", "a", "c"])
    assert bill.counts == {"verify": 3, "fix": 1}
    assert bill.seconds == pytest.approx(3 * 1.6 + 4.6)
    with pytest.raises(ValueError, match="3 proposals for 2 images"):
        rt.review_classes(["a", "b", "c"], ["a", "b"])


def test_bills_add_up():
    bill = rt.label_classes(2) + rt.review_classes(["a"], ["b"])
    assert bill.seconds == pytest.approx(6.0 + 4.6)
    assert bill.counts == {"choose": 2, "fix": 1}


def test_each_kind_of_box_proposal_pays_its_price():
    truth = np.array([[0, 0, 10, 10], [20, 20, 40, 40], [50, 50, 60, 60], [70, 0, 90, 20]])
    truth_labels = [0, 0, 1, 1]
    boxes = np.array(
        [
            [0, 0, 10, 10.5],  # IoU 0.95, right class: verified
            [20, 20, 40, 46],  # IoU 0.77: adjusted
            [50, 50, 60, 60],  # exact but the wrong class: relabeled
            [100, 100, 110, 110],  # on nothing: deleted
        ]
    )
    bill = rt.review_boxes(boxes, [0, 0, 0, 1], truth, truth_labels)
    # the fourth object (70, 0, 90, 20) was not found: added by hand
    assert bill.counts == {
        "check": 1,
        "verify": 1,
        "adjust": 1,
        "relabel": 1,
        "delete": 1,
        "add": 1,
    }
    assert bill.seconds == pytest.approx(1.6 + 1.6 + 4.6 + 4.6 + 1.0 + 7.0)


def test_a_wrong_class_off_its_object_is_relabeled_and_adjusted():
    bill = rt.review_boxes([[0, 0, 10, 14]], [1], [[0, 0, 10, 10]], [0])  # IoU 0.71
    assert bill.counts == {"check": 1, "relabel+adjust": 1}
    assert bill.seconds == pytest.approx(1.6 + 1.6 + 3.0 + 3.0)


def test_proposals_meet_objects_one_to_one_best_overlap_first():
    truth = [[0, 0, 10, 10]]
    # two proposals on one object: the better one is verified, the other deleted
    bill = rt.review_boxes([[0, 0, 10, 11], [0, 0, 10, 10]], [0, 0], truth, [0])
    assert bill.counts == {"check": 1, "verify": 1, "delete": 1}
    # nothing proposed on an empty image: only the look
    assert rt.review_boxes(np.zeros((0, 4)), [], np.zeros((0, 4)), []).seconds == 1.6
    # everything missed: each object drawn, as by hand, plus the look
    assert rt.review_boxes(np.zeros((0, 4)), [], truth * 3, [0] * 3).seconds == pytest.approx(
        1.6 + 3 * 7.0
    )
    assert rt.draw_boxes(3).seconds == pytest.approx(21.0)
