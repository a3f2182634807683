from __future__ import annotations

from decimal import Decimal

import pytest

from domain.model import UnreadableValue
from domain.profile_rules import profile_problems
from domain.validation import user_problems
from tests.factories import valid_user


def nested(levels: int) -> dict:
    """A profile whose deepest object sits `levels` levels down (the profile itself is level 1)."""
    value: dict = {}
    for _ in range(levels - 1):
        value = {"n": value}
    return value


@pytest.mark.parametrize("profile", [None, {}, {"a": None, "b": True, "c": "", "d": [], "e": {}}])
def test_acceptable_profiles(profile):
    assert profile_problems(profile) == []


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


def test_unreadable_profile_is_reported_through_user_validation():
    user = valid_user(profile=UnreadableValue("{bad", "not valid JSON"))
    assert user_problems(user) == ["Invalid profile: not valid JSON"]
