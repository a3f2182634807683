from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from user_migration.adapters.dynamodb.id_ranges import decode_ids, encode_ids


def test_runs_are_merged_and_sorted():
    assert encode_ids([5, 3, 4, 1, 9, 10, 11, 4]) == "1,3..5,9..11"


def test_no_ids_is_the_empty_text():
    assert encode_ids([]) == ""
    assert decode_ids("") == set()


def test_a_page_of_consecutive_ids_costs_a_few_bytes():
    assert encode_ids(range(1_000_001, 1_002_001)) == "1000001..1002000"


def test_negative_and_huge_ids_survive():
    ids = {-(2**63), -3, -2, 0, 2**63 - 1}
    assert encode_ids(ids) == f"{-(2**63)},-3..-2,0,{2**63 - 1}"
    assert decode_ids(encode_ids(ids)) == ids


@given(st.sets(st.integers(min_value=-(2**63), max_value=2**63 - 1) | st.integers(0, 300)))
def test_round_trip(ids):
    assert decode_ids(encode_ids(ids)) == ids


@pytest.mark.parametrize("text", ["x", "1..", "5..2", "1,,2..x"])
def test_foreign_text_is_refused(text):
    with pytest.raises(ValueError, match="not a run of user ids"):
        decode_ids(text)
