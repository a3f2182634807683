"""The rules of a profile (a JSON object) and the one walker of values behind them (`domain.convert.values`)."""

from __future__ import annotations

import json
from decimal import Decimal, localcontext
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.factories import valid_user
from user_migration.adapters.dynamodb.codec import encode_value
from user_migration.adapters.dynamodb.item_size import attribute_value_bytes
from user_migration.adapters.postgres.types import parse_profile
from user_migration.domain.convert.rules import Reason, user_problems
from user_migration.domain.convert.values import LookCloser, checked_value, quick_value
from user_migration.domain.model import UnreadableValue


def profile_problems(profile: Any) -> list[Reason]:
    """Every reason a user of the documented layout with this profile is rejected for."""
    return user_problems(valid_user(profile=profile))


def sizable_value(value: dict[str, Any]) -> dict[str, Any]:
    """An attribute value `domain.convert.limits` can size: a B value (which it does not know)
    becomes an S of as many ASCII characters, the same size by DynamoDB's rules."""
    ((kind, payload),) = value.items()
    if kind == "B":
        return {"S": "x" * len(payload)}
    if kind == "M":
        return {"M": {key: sizable_value(element) for key, element in payload.items()}}
    if kind == "L":
        return {"L": [sizable_value(element) for element in payload]}
    return value


def sizable(item: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """A whole item, every value made `sizable_value`."""
    return {name: sizable_value(value) for name, value in item.items()}


def value_bytes(prepared: Any) -> int:
    """DynamoDB's size of a prepared value, computed on its encoded form."""
    return attribute_value_bytes(sizable_value(encode_value(prepared)))


def nested(levels: int) -> dict:
    """A profile whose deepest object sits `levels` levels down (the profile itself is level 1)."""
    value: dict = {}
    for _ in range(levels - 1):
        value = {"n": value}
    return value


@pytest.mark.parametrize("profile", [None, {}, {"a": None, "b": True, "c": "", "d": [], "e": {}}])
def test_acceptable_profiles(profile):
    assert profile_problems(profile) == []
    assert checked_value(profile, "profile")[2] == []


@pytest.mark.parametrize("profile", [[], [1], "text", 3, Decimal("1.5"), True])
def test_profile_must_be_an_object(profile):
    assert profile_problems(profile) == ["Invalid profile: must be a JSON object"]


def test_38_significant_digits_are_fine_and_39_are_not():
    ok = Decimal("1234567890123456789012345678901234567.8")
    too_precise = Decimal("1234567890123456789012345678901234567.89")
    assert profile_problems({"n": ok}) == []
    assert profile_problems({"a": {"n": too_precise}}) == [
        "Invalid profile: number has 39 significant digits (max 38) at profile.a.n"
    ]


def test_trailing_and_leading_zeros_do_not_count_as_significant():
    assert profile_problems({"n": Decimal("1" + "0" * 100)}) == []
    assert profile_problems({"n": Decimal("0.000" + "1" * 38)}) == []


def test_big_integers_are_judged_by_their_digits():
    assert profile_problems({"n": 10**37 + 1}) == []
    assert profile_problems({"n": 10**38 + 1}) == [
        "Invalid profile: number has 39 significant digits (max 38) at profile.n"
    ]


@pytest.mark.parametrize("number", [Decimal("1E+126"), Decimal("-1E+126"), Decimal("1E-131"), Decimal("-9.9E-131")])
def test_numbers_outside_dynamodb_range(number):
    assert profile_problems({"x": [number]}) == [
        "Invalid profile: number is out of DynamoDB's range (1E-130..9.99E+125) at profile.x[0]"
    ]


@pytest.mark.parametrize(
    "number", [Decimal("9.9999999999999999999999999999999999999E+125"), Decimal("1E-130"), Decimal(0)]
)
def test_numbers_at_the_edges_of_the_range(number):
    assert profile_problems({"x": number}) == []


@pytest.mark.parametrize(
    ("value", "what"),
    [
        (float("nan"), "NaN"),
        (float("inf"), "Infinity"),
        (Decimal("NaN"), "NaN is not a number DynamoDB can store"),
        (Decimal("-Infinity"), "Infinity is not a number DynamoDB can store"),
    ],
)
def test_nan_and_infinity(value, what):
    assert profile_problems({"x": value}) == [f"Invalid profile: {what} at profile.x"]


def test_32_levels_of_nesting_are_fine_and_33_are_not():
    assert profile_problems(nested(32)) == []
    problems = profile_problems(nested(33))
    assert len(problems) == 1
    assert problems[0].startswith("Invalid profile: nesting deeper than 32 levels at profile.n.n")


def test_lists_count_as_nesting_levels_too():
    value: object = {}
    for _ in range(32):
        value = [value]
    assert profile_problems({"l": value})[0].startswith("Invalid profile: nesting deeper than 32 levels")


def test_paths_quote_odd_keys_and_every_problem_is_listed():
    profile = {"odd key": {"": 1}, "list": [1, Decimal("NaN")], "ok": 1}
    assert profile_problems(profile) == [
        "Invalid profile: empty key at profile['odd key']",
        "Invalid profile: NaN is not a number DynamoDB can store at profile.list[1]",
    ]


def test_strings_must_be_encodable_as_utf8():
    assert profile_problems({"s": "\udc80"}) == ["Invalid profile: string is not valid Unicode at profile.s"]


def test_unsupported_python_values_are_reported():
    assert profile_problems({"s": {1, 2}}) == ["Invalid profile: unsupported value of type set at profile.s"]


def test_unreadable_profile_is_reported_with_its_reason():
    assert profile_problems(UnreadableValue("{bad", "not valid JSON")) == ["Invalid profile: not valid JSON"]
    assert profile_problems(UnreadableValue("{bad", "not valid JSON"))[0].code == "invalid_profile"


def test_an_unreadable_value_inside_a_value_is_reported_with_its_path():
    problems = checked_value({"a": [UnreadableValue("x", "not a point in time")]}, "profile")[2]
    assert problems == ["not a point in time at profile.a[0]"]


# --- the quick pass and the slow walk agree ----------------------------------------------------


class Text(str):
    """A str subclass: storable, but only the slow walk vouches for it."""


class Count(int):
    """An int subclass (bool is one too)."""


odd_numbers = st.one_of(
    st.integers(min_value=-(10**130), max_value=10**130),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.floats(),
    st.builds(Count, st.integers(-5, 5)),
    st.sampled_from(
        [
            10**38 - 1,
            10**38,
            -(10**38),
            10**40,
            10**38 + 1,
            Decimal("1" * 39),
            Decimal("-0"),
            Decimal("sNaN"),
            Decimal("1E+126"),
            Decimal("1E-131"),
            Decimal("1E-130"),
            Decimal("9.9999999999999999999999999999999999999E+125"),
            Decimal("12345678901234567890123456789012345678"),
            Decimal("-12345678901234567890123456789012345678"),
            Decimal("0.00000001"),
        ]
    ),
)
odd_texts = st.one_of(
    st.text(max_size=8),
    st.text(alphabet=st.characters(categories=["Cs", "Ll", "So"]), max_size=4),  # Cs: lone surrogates
    st.builds(Text, st.text(max_size=4)),
)
odd_keys = st.one_of(odd_texts, st.integers(0, 3), st.none())
odd_scalars = st.one_of(
    st.none(), st.booleans(), odd_numbers, odd_texts, st.sampled_from([(1, 2), frozenset([1]), b"x"])
)
plain_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.decimals(places=3, min_value=-(10**6), max_value=10**6),
    st.text(max_size=8),
)
plain_keys = st.text(min_size=1, max_size=6)


def mostly(plain: st.SearchStrategy, odd: st.SearchStrategy) -> st.SearchStrategy:
    """Nine draws in ten from `plain`, the others from `odd`."""
    return st.sampled_from([True] * 9 + [False]).flatmap(lambda is_plain: plain if is_plain else odd)


# Mostly plain JSON, so that the quick pass often vouches, with now and then an odd value or key.
scalars = mostly(plain_scalars, odd_scalars)
keys = mostly(plain_keys, odd_keys)


def _nest(value: object, shape: list[bool]) -> object:
    for in_a_list in shape:
        value = [value] if in_a_list else {"n": value}
    return value


values = st.recursive(
    scalars,
    lambda children: mostly(
        st.one_of(st.lists(children, max_size=4), st.dictionaries(keys, children, max_size=4)),
        st.one_of(
            st.lists(children, max_size=2).map(tuple),
            st.builds(_nest, children, st.lists(st.booleans(), min_size=29, max_size=34)),  # near the limit
        ),
    ),
    max_leaves=12,
)
odd_profiles = mostly(st.dictionaries(keys, values, max_size=6), st.one_of(st.none(), values))


@settings(max_examples=1000, deadline=None)
@given(profile=odd_profiles)
def test_the_quick_pass_vouches_only_for_values_the_slow_walk_finds_fine(profile):
    try:
        quick = quick_value(profile)
    except LookCloser:
        prepared, size, problems = checked_value(profile, "profile")
        if not problems:
            # Fine after all (a float, a str subclass, a huge round int): the slow walk converts it.
            assert size == value_bytes(prepared)
        return
    prepared, size, problems = checked_value(profile, "profile")  # the walk that says why, run on its own
    assert problems == []
    if type(profile) is dict:
        assert profile_problems(profile) == []
    assert quick == (prepared, size)
    assert quick[1] == value_bytes(quick[0])


def test_a_usual_profile_is_vouched_for_by_the_quick_pass():
    profile = {
        "locale": "pt-BR",
        "newsletter": False,
        "login_count": 3157,
        "tags": ["beta", "vip"],
        "balance": Decimal("1234.50"),
        "address": {"city": "Kraków", "geo": {"lat": Decimal("50.064651"), "lon": Decimal("-19.944981")}},
        "note": None,
    }
    prepared, size = quick_value(profile)
    assert prepared is profile  # nothing to convert: the very same dict
    assert (prepared, size, []) == checked_value(profile, "profile")
    assert size == value_bytes(prepared)


@pytest.mark.parametrize("text", ["1" * 39, "-" + "1" * 39, "1" * 38 + ".1", "0." + "1" * 39])
def test_39_digits_in_a_short_text_are_still_too_many(text):
    assert profile_problems({"n": Decimal(text)}) == [
        "Invalid profile: number has 39 significant digits (max 38) at profile.n"
    ]


def test_an_exponent_written_in_lower_case_is_still_an_exponent():
    with localcontext() as context:
        context.capitals = 0  # str(Decimal("1E+200")) is then "1e+200"
        assert profile_problems({"n": Decimal("1E+200")}) == [
            "Invalid profile: number is out of DynamoDB's range (1E-130..9.99E+125) at profile.n"
        ]


@pytest.mark.parametrize("number", [10**38, 10**40, Count(3), 0.5])
def test_numbers_the_quick_pass_leaves_to_the_slow_walk_are_still_storable(number):
    with pytest.raises(LookCloser):
        quick_value({"n": number})
    assert profile_problems({"n": number}) == []
    prepared, size, problems = checked_value({"n": number}, "profile")
    assert problems == []
    assert prepared == {"n": number}
    assert size == value_bytes(prepared)


# --- profiles as the PostgreSQL adapter parses them --------------------------------------------


def test_the_source_parses_short_ints_as_int_and_keeps_the_rest_exact():
    profile = parse_profile('{"n": 42, "neg": -7, "minus_zero": -0, "long": ' + "9" * 39 + ', "price": 12.50}')
    assert profile == {"n": 42, "neg": -7, "minus_zero": 0, "long": int("9" * 39), "price": Decimal("12.50")}
    assert [type(profile[key]) for key in ("n", "neg", "minus_zero", "long")] == [int, int, Decimal, Decimal]
    assert str(profile["minus_zero"]) == "-0"


def test_a_huge_int_in_the_source_is_judged_by_its_digits():
    assert profile_problems(parse_profile('{"n": ' + "1" * 5000 + "}")) == [
        "Invalid profile: number has 5000 significant digits (max 38) at profile.n"
    ]


json_documents = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(10**45), max_value=10**45),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=6),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=4), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(document=st.dictionaries(st.text(max_size=4), json_documents, max_size=5))
def test_parsing_short_ints_as_int_changes_no_item_and_no_reason(document):
    text = json.dumps(document)
    parsed = parse_profile(text)
    all_decimal = json.loads(text, parse_float=Decimal, parse_int=Decimal)
    assert profile_problems(parsed) == profile_problems(all_decimal)
    if not profile_problems(parsed):
        prepared, size, _ = checked_value(parsed, "profile")
        prepared_decimal, size_decimal, _ = checked_value(all_decimal, "profile")
        assert encode_value(prepared) == encode_value(prepared_decimal)
        assert size == size_decimal
