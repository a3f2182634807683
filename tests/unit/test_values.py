"""The one walker of values (`domain.convert.values`): the quick pass and the slow walk agree, a prepared
value is prepared again as itself, and sizes are DynamoDB's, computed on the encoded value."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.test_profile_rules import value_bytes
from tests.unit.test_profile_rules import values as odd_values
from user_migration.domain.convert.limits import number_problem
from user_migration.domain.convert.values import LookCloser, checked_value, quick_value
from user_migration.domain.model import Json, UnreadableValue

storable_ints = st.integers(min_value=-(10**38) + 1, max_value=10**38 - 1)
storable_decimals = st.decimals(allow_nan=False, allow_infinity=False).filter(lambda d: number_problem(d) is None)
prepared_scalars = st.one_of(
    st.text(),
    st.text(alphabet=st.characters(min_codepoint=0x80, codec="utf-8"), max_size=8),  # only multi-byte characters
    storable_ints,
    storable_decimals,
    st.binary(max_size=16),
    st.booleans(),
)
prepared_keys = st.text(min_size=1, max_size=8)
# Prepared values as the preparer hands them to a target; None only inside a list or a map.
prepared_values = st.recursive(
    prepared_scalars,
    lambda children: st.one_of(
        st.lists(st.none() | children, max_size=4),
        st.dictionaries(prepared_keys, st.none() | children, max_size=4),
    ),
    max_leaves=16,
)


def same(left: Any, right: Any) -> bool:
    """Equal, and of the same kinds all the way down (True is not 1, b"" is not "")."""
    if isinstance(left, bool) or isinstance(right, bool):
        return type(left) is type(right) and left == right
    if isinstance(left, (int, Decimal)) and isinstance(right, (int, Decimal)):
        return left == right
    if type(left) is not type(right):
        return False
    if isinstance(left, list):
        return len(left) == len(right) and all(same(a, b) for a, b in zip(left, right, strict=True))
    if isinstance(left, dict):
        return left.keys() == right.keys() and all(same(left[key], right[key]) for key in left)
    return bool(left == right)


@settings(max_examples=500, deadline=None)
@given(value=prepared_values)
def test_a_prepared_value_is_prepared_again_as_itself_by_both_passes(value):
    prepared, size = quick_value(value)
    assert prepared is value  # nothing to convert: not even a copy
    slow, slow_size, problems = checked_value(value, "v")
    assert problems == []
    assert same(slow, value)
    assert slow_size == size
    assert size == value_bytes(value)


@settings(max_examples=1000, deadline=None)
@given(value=odd_values)
def test_the_slow_walk_prepares_what_the_quick_pass_vouches_for_unchanged(value):
    slow, slow_size, problems = checked_value(value, "v")
    if problems:
        with pytest.raises(LookCloser):
            quick_value(value)
        return
    assert slow_size == value_bytes(slow)
    # What the slow walk made is storable as it is: walked again, it stays the same.
    again, again_size, again_problems = checked_value(slow, "v")
    assert again_problems == []
    assert same(again, slow)
    assert again_size == slow_size
    for candidate in (value, slow):
        try:
            quick, quick_size = quick_value(candidate)
        except LookCloser:  # e.g. 10**38: storable, but only the slow walk can tell
            continue
        assert same(quick, slow)
        assert quick_size == slow_size


@pytest.mark.parametrize(
    ("value", "size"),
    [
        ("héllo", 6),
        ("", 0),
        ("🙂", 4),
        (12345, 4),  # 5 digits: 3 bytes, plus 1
        (0, 2),
        (100000, 2),  # trailing zeros are not significant
        (Decimal("-0.00012"), 2),
        (True, 1),
        (b"\x00\x01\x02", 3),
        (b"", 0),
        ([], 3),
        ({}, 3),
        (["ab", False], 3 + (1 + 2) + (1 + 1)),
        ({"ké": "v"}, 3 + 1 + 3 + 1),
        ([None], 3 + 1 + 1),
        (Json(None), 1),
        (Json({"a": 1}), 3 + 1 + 1 + 2),
    ],
)
def test_sizes_follow_dynamodbs_rules(value, size):
    assert quick_value(value)[1] == size
    assert checked_value(value, "v")[1] == size


def test_a_timestamp_is_prepared_as_its_text():
    moment = datetime(2020, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    assert quick_value(moment) == ("2020-01-02T03:04:05.000006Z", 27)
    assert checked_value({"at": moment}, "v") == ({"at": "2020-01-02T03:04:05.000006Z"}, 3 + 1 + 2 + 27, [])


@pytest.mark.parametrize(
    "value",
    [0.5, float("nan"), 10**38, Decimal("1E+126"), "bad \ud800", {"": 1}, {1: "a"}, (1,), {"x": 0.5}, {"t": (1,)}],
)
def test_the_quick_pass_leaves_these_to_the_slow_walk(value):
    with pytest.raises(LookCloser):
        quick_value(value)


def test_a_list_is_rebuilt_only_from_the_first_converted_element():
    moment = datetime(2020, 1, 2, tzinfo=UTC)
    original = ["a", moment, "b"]
    prepared, _ = quick_value(original)
    assert prepared == ["a", "2020-01-02T00:00:00.000000Z", "b"]
    assert original[1] is moment  # the source's list is left alone


def test_the_slow_walk_names_every_problem_with_its_path():
    value = {"a": [1, float("nan")], "odd key": {"": 1}, "u": UnreadableValue("x", "unreadable"), "s": {1}}
    assert checked_value(value, "attr")[2] == [
        "NaN at attr.a[1]",
        "empty key at attr['odd key']",
        "unreadable at attr.u",
        "unsupported value of type set at attr.s",
    ]


def test_nesting_is_counted_from_the_value_itself():
    value: Any = "leaf"
    for _ in range(32):
        value = [value]
    assert checked_value(value, "v")[2] == []
    assert checked_value([value], "v")[2][0].startswith("nesting deeper than 32 levels at v[0]")
