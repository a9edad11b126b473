"""geometry.py: rotated boxes, their enclosing boxes, polygon rings and areas."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hardex_nb.geometry import (
    axis_aligned,
    centre_inside,
    corners,
    enclosing,
    from_corners,
    is_turned,
    polygon_area,
    polygon_parts,
)

coords = st.floats(-500, 500, allow_nan=False)
sides = st.floats(1, 300, allow_nan=False)
angles = st.floats(-179, 179, allow_nan=False)


@given(coords, coords, sides, sides, angles)
def test_corners_and_back_give_the_same_box_and_angle(x, y, w, h, angle):
    box, back = from_corners(corners(x, y, x + w, y + h, angle))
    np.testing.assert_allclose(box, (x, y, x + w, y + h), atol=1e-6)
    assert abs((back - angle + 180) % 360 - 180) < 1e-6


def test_a_quarter_turn_swaps_the_sides_about_the_centre():
    c = corners(0, 0, 4, 2, 90)  # clockwise on screen (y down)
    np.testing.assert_allclose(c.min(axis=0), [1, -1], atol=1e-12)
    np.testing.assert_allclose(c.max(axis=0), [3, 3], atol=1e-12)
    assert enclosing(0, 0, 4, 2, 90) == pytest.approx((1, -1, 3, 3))
    assert enclosing(0, 0, 4, 2, 360) == (0, 0, 4, 2)  # a whole turn turns nothing


def test_what_turns_a_box():
    assert [is_turned(a) for a in (None, float("nan"), 0, 360, -720, 30)] == [
        False,
        False,
        False,
        False,
        False,
        True,
    ]
    assert centre_inside(-10, -10, 12, 12, 5, 5) and not centre_inside(6, 0, 8, 2, 5, 5)


def test_axis_aligned_replaces_only_turned_boxes_and_clips_to_their_image():
    ann = pd.DataFrame(
        {
            "sample_id": [1, 1, 2],
            "kind": ["box", "polygon", "box"],
            "x0": [0.0, 0.0, 8.0],
            "y0": [0.0, 0.0, 8.0],
            "x1": [4.0, 4.0, 12.0],
            "y1": [2.0, 2.0, 12.0],
            "angle": [90.0, 90.0, 45.0],
        }
    )
    sizes = pd.DataFrame({"width": [10, 12], "height": [10, 12]}, index=[1, 2])
    out = axis_aligned(ann, sizes)
    assert out.loc[0, ["x0", "y0", "x1", "y1"]].tolist() == pytest.approx([1, 0, 3, 3])
    assert out.loc[1].equals(ann.loc[1])  # a polygon does not turn
    half = 2 * np.sqrt(2)
    assert out.loc[2, ["x0", "x1"]].tolist() == pytest.approx([10 - half, 12])  # clipped


def test_polygon_rings_and_areas():
    square = [[0, 0], [2, 0], [2, 2], [0, 2]]
    assert len(polygon_parts(square)) == 1 and polygon_parts(None) == []
    assert polygon_area(square) == 4
    assert polygon_area([square, [[5, 5], [6, 5], [6, 6]]]) == 4.5  # an object in pieces
    assert polygon_area([[0, 0], [1, 1], [2, 2]]) == 0  # collinear
