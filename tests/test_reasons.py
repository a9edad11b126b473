"""reasons.py: the hard-example vocabulary and how reasons are stored."""

import pytest

from hardex_nb import ValidationError
from hardex_nb.reasons import (
    HARD_TYPES,
    REASON_TEXTS,
    HardType,
    Reason,
    encode_reasons,
    parse_reasons,
)


def test_reasons_are_stored_unique_in_order_and_read_back():
    assert encode_reasons([1, 4, 1, Reason.MARKED_BY_HAND]) == "1-4-100"
    assert parse_reasons("1-4-100") == [1, 4, 100]
    assert parse_reasons("") == parse_reasons(None) == []
    assert parse_reasons(encode_reasons([])) == []


def test_a_reason_that_is_not_a_code_is_refused_with_the_rule():
    with pytest.raises(ValidationError, match="whole numbers joined by '-'"):
        parse_reasons("1-low")


def test_every_reason_has_its_text_and_the_codes_match_modelarts():
    assert {int(r) for r in Reason} == set(REASON_TEXTS)
    assert [int(r) for r in Reason][:6] == [0, 1, 2, 3, 4, 5]  # ModelArts' own codes
    assert Reason.SUSPECTED_MISLABEL.text == "suspected mislabel"
    assert HARD_TYPES == tuple(t.value for t in HardType) == ("none", "false_positive", "missed")
