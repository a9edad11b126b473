"""annotation_rules.py: every rule an annotation obeys, in one place."""

import pytest

from hardex_nb import ValidationError
from hardex_nb import annotation_rules as rules


def test_label_names_every_format_can_carry():
    assert rules.check_label_name("scratch") == "scratch"
    for bad, why in [
        ("", "non-empty"),
        (None, "non-empty"),
        ("a\nb", "control character"),
        (" a", "leading or trailing spaces"),
        ("__ignore__", "reserved"),
        ("\ud800", "not valid Unicode"),
    ]:
        with pytest.raises(ValidationError, match=why):
            rules.check_label_name(bad)


def test_a_box_is_refused_or_clipped_outside_its_image():
    assert rules.check_box((1, 2, 30, 40), 64, 48, where="x.png") == ((1, 2, 30, 40), False)
    with pytest.raises(ValidationError, match="need x0 < x1"):
        rules.check_box((30, 2, 1, 40), 64, 48, where="x.png")
    # the files of other tools may give corners in any order
    assert rules.check_box((30, 40, 1, 2), 64, 48, ordered=False)[0] == (1, 2, 30, 40)
    with pytest.raises(ValidationError, match="reaches outside x.png"):
        rules.check_box((1, 2, 90, 40), 64, 48, where="x.png")
    assert rules.check_box((1, 2, 90, 40), 64, 48, outside="clip") == ((1, 2, 64, 40), True)
    with pytest.raises(ValidationError, match="no area inside"):
        rules.check_box((70, 2, 90, 40), 64, 48, outside="clip")
    with pytest.raises(ValidationError, match="not finite"):
        rules.check_box((1, float("nan"), 30, 40), 64, 48)


def test_a_rotated_box_keeps_its_rectangle_while_its_centre_is_inside():
    assert rules.check_box((-10, 2, 40, 20), 64, 48, angle=30) == ((-10, 2, 40, 20), False)
    with pytest.raises(ValidationError, match=r"centre \(80, 11\) is outside"):
        rules.check_box((60, 2, 100, 20), 64, 48, angle=30)


def test_a_polygon_needs_an_area_inside_its_image():
    tri = [[1, 1], [20, 1], [10, 15]]
    assert rules.check_polygon(tri, 64, 48) == (tri, False)
    with pytest.raises(ValidationError, match="enclose no area"):
        rules.check_polygon([[1, 1], [2, 2], [3, 3]], 64, 48)
    with pytest.raises(ValidationError, match="N ≥ 3"):
        rules.check_polygon([[1, 1], [2, 2]], 64, 48)
    with pytest.raises(ValidationError, match="fall outside"):
        rules.check_polygon([[1, 1], [90, 1], [10, 15]], 64, 48)
    rings, clipped = rules.check_polygon([[1, 1], [90, 1], [10, 15]], 64, 48, outside="clip")
    assert clipped and rings[1] == [64.0, 1.0]
    with pytest.raises(ValidationError, match="no area inside"):
        rules.check_polygon([[70, 1], [90, 1], [80, 15]], 64, 48, outside="clip")


def test_scores_origins_and_the_stored_row():
    assert rules.check_score(None) is None and rules.check_score(0.5) == 0.5
    with pytest.raises(ValidationError, match=r"lies in \[0, 1\]"):
        rules.check_score(1.5)
    with pytest.raises(ValidationError, match="origin="):
        rules.check_origin("", "none")
    with pytest.raises(ValidationError, match="hard_type="):
        rules.check_origin("V1", "wrong")
    row = rules.annotation_row(3, "ignore", "a", (1, 2, 3, 4), points=[[1, 2], [3, 2], [2, 4]])
    assert row["label"] is None and row["points"] == "[[1, 2], [3, 2], [2, 4]]"
    assert set(row) == set(rules.ANNOTATION_FIELDS) and row["difficult"] == 0


def test_the_row_has_every_stored_column_but_the_id():
    from hardex_nb.store import ANNOTATION_COLUMNS

    assert set(rules.ANNOTATION_FIELDS) == set(ANNOTATION_COLUMNS) - {"ann_id"}
