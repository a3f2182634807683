"""`UserPreparer`: the rules of a mapping, and what each kind of source value is prepared as."""

from __future__ import annotations

import tomllib
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from tests.factories import valid_user
from tests.unit.test_mapping import DJANGO
from tests.unit.test_profile_rules import sizable
from user_migration.adapters.dynamodb.codec import encode_user
from user_migration.adapters.dynamodb.item_size import item_bytes
from user_migration.domain.convert.limits import MAX_ITEM_BYTES
from user_migration.domain.convert.mapping import UserMapping, parse_mapping
from user_migration.domain.convert.rules import Reason, Rejection, UserPreparer, failure_text, prepare_user
from user_migration.domain.model import Json, PreparedUser, SourceUser, UnreadableValue

MIGRATED_AT = datetime(2026, 5, 6, 7, 8, 9, 101112, tzinfo=UTC)
JOINED = datetime(2019, 4, 1, 10, 0, tzinfo=UTC)

DJANGO_MAPPING = parse_mapping(tomllib.loads(DJANGO), "django.toml")
DJANGO_PREPARER = UserPreparer(DJANGO_MAPPING)


def django_user(user_id: int = 1, **changes: Any) -> SourceUser:
    """A row of `auth_user` as the Django mapping reads it: the mapped attributes, then the carried columns."""
    values: dict[str, Any] = {
        "username": "alice",
        "email": "alice@example.com",
        "display_name": "Alice Liddell",
        "status": "active",
        "created_at": JOINED,
        "last_login": None,
        "is_superuser": False,
        "first_name": "Alice",
        "last_name": "Liddell",
        "is_staff": False,
        "is_active": True,
    }
    values.update(changes)
    return SourceUser(user_id, values)


def prepare(user: SourceUser, preparer: UserPreparer = DJANGO_PREPARER) -> PreparedUser | Rejection:
    return preparer.prepare(user, MIGRATED_AT)


def prepared(user: SourceUser, preparer: UserPreparer = DJANGO_PREPARER) -> PreparedUser:
    result = prepare(user, preparer)
    assert isinstance(result, PreparedUser), result
    return result


def reasons(user: SourceUser, preparer: UserPreparer = DJANGO_PREPARER) -> list[str]:
    result = prepare(user, preparer)
    assert isinstance(result, Rejection), result
    return list(result.reasons)


def test_a_django_user_is_prepared_in_the_rows_order_with_migrated_at_last():
    user = prepared(django_user(7))
    assert user.user_id == 7
    assert user.attributes == {
        "username": "alice",
        "email": "alice@example.com",
        "display_name": "Alice Liddell",
        "status": "active",
        "created_at": "2019-04-01T10:00:00.000000Z",
        "is_superuser": False,
        "first_name": "Alice",
        "last_name": "Liddell",
        "is_staff": False,
        "is_active": True,
        "migrated_at": "2026-05-06T07:08:09.101112Z",
    }
    assert list(user.attributes)[-1] == "migrated_at"
    assert "last_login" not in user.attributes  # SQL NULL: omitted
    assert user.size == item_bytes(encode_user(user, "user_id"))


@pytest.mark.parametrize("username", ["a@b.c", "x+y", "Ünïcødé", "a" * 150, "a", "dot.dash-under_score"])
def test_django_legal_usernames_pass(username):
    assert prepared(django_user(username=username)).attributes["username"] == username


@pytest.mark.parametrize("username", ["a" * 151, "has space", "semi;colon", "slash/"])
def test_other_usernames_fail(username):
    assert reasons(django_user(username=username)) == ["Invalid username format"]


def test_the_documented_username_rule_is_replaced_not_added_to():
    # The documented pattern wants 3..32 of [A-Za-z0-9_.-]; the Django file's pattern alone decides.
    assert prepare_user(valid_user(username="x+y"), MIGRATED_AT) == Rejection(1, ("Invalid username format",))
    assert isinstance(prepare(django_user(username="x+y")), PreparedUser)


@pytest.mark.parametrize("email", ["", None])
def test_a_blank_email_passes_when_it_is_not_required(email):
    attributes = prepared(django_user(email=email)).attributes
    if email is None:
        assert "email" not in attributes
    else:
        assert attributes["email"] == ""  # kept as it is


def test_a_bad_email_still_fails():
    assert reasons(django_user(email="not an email")) == ["Invalid email format"]
    assert reasons(django_user(email="a@b"))[0].code == "invalid_email"


def test_required_attributes_of_the_documented_rules_still_apply():
    assert reasons(django_user(created_at=None, username="")) == [
        "Missing required field 'username'",
        "Missing required field 'created_at'",
    ]


def test_a_required_attribute_absent_from_the_values_is_missing_too():
    values = dict(django_user().values)
    del values["created_at"]
    assert reasons(SourceUser(1, values)) == ["Missing required field 'created_at'"]


RULED = parse_mapping(
    {
        "attributes": {"nickname": "nickname", "tier": "tier", "anything": "anything"},
        "rules": {
            "nickname": {"max_length": 5},
            "tier": {"allowed": ["gold", "silver"], "required": True},
        },
        "other_columns": {"carry": False},
    },
    "ruled.toml",
)
RULED_PREPARER = UserPreparer(RULED)


def ruled(**values: Any) -> SourceUser:
    return SourceUser(3, {"nickname": "nick", "tier": "gold", "anything": None, **values})


def test_max_length_counts_characters():
    assert prepared(ruled(nickname="Ünïcø"), RULED_PREPARER).attributes["nickname"] == "Ünïcø"
    assert reasons(ruled(nickname="abcdef"), RULED_PREPARER) == ["Invalid nickname: longer than 5 characters"]


def test_allowed_names_the_value():
    assert reasons(ruled(tier="bronze"), RULED_PREPARER) == ["Invalid tier 'bronze'"]
    long = "b" * 50
    assert reasons(ruled(tier=long), RULED_PREPARER) == [f"Invalid tier '{'b' * 40}…'"]


def test_codes_are_missing_invalid_and_item_too_large():
    rejected = prepare(ruled(nickname="abcdef", tier=""), RULED_PREPARER)
    assert isinstance(rejected, Rejection)
    assert [reason.code for reason in rejected.reasons] == ["invalid_nickname", "missing_tier"]
    assert all(isinstance(reason, Reason) for reason in rejected.reasons)
    assert failure_text(3, rejected.reasons) == (
        "User 3: Invalid nickname: longer than 5 characters; Missing required field 'tier'"
    )
    too_large = prepare(ruled(anything="x" * MAX_ITEM_BYTES), RULED_PREPARER)
    assert isinstance(too_large, Rejection)
    assert [reason.code for reason in too_large.reasons] == ["item_too_large"]


@pytest.mark.parametrize(
    "value",
    [
        "",
        "any text at all 🙂",
        0,
        -(10**37),
        Decimal("-1.5E-100"),
        True,
        b"\x00\xff",
        [],
        {},
        {"a": [1, None, {"b": b"x"}]},
        Json(None),
    ],
)
def test_an_attribute_without_rules_accepts_anything_storable(value):
    assert "anything" in prepared(ruled(anything=value), RULED_PREPARER).attributes


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (42, 42),
        (-(10**37), -(10**37)),
        (Decimal("12.50"), Decimal("12.50")),
        (Decimal("1E+125"), Decimal("1E+125")),
        (0.1, Decimal("0.1")),
        (1e300 / 1e290, Decimal(repr(1e300 / 1e290))),
        (-2.5, Decimal("-2.5")),
        (True, True),
        (False, False),
        (b"\x00\x01bytes", b"\x00\x01bytes"),
        (bytearray(b"ab"), b"ab"),
        ("text", "text"),
        (datetime(2020, 6, 1, 12, 0, tzinfo=timezone(timedelta(hours=2))), "2020-06-01T10:00:00.000000Z"),
        (datetime(2020, 6, 1, 12, 0), "2020-06-01T12:00:00.000000Z"),
        (date(2020, 6, 1), "2020-06-01"),
        (Json({"a": 1, "b": [True, None]}), {"a": 1, "b": [True, None]}),
        (Json([1, "two", None]), [1, "two", None]),
        (Json("just text"), "just text"),
        (Json(Decimal("3.14")), Decimal("3.14")),
        (Json(7), 7),
        (Json(None), None),
        (["a", None, "c"], ["a", None, "c"]),
        ([[1, 2], [3, [4, None]], []], [[1, 2], [3, [4, None]], []]),
        ((1, 2), [1, 2]),
        ([0.5, 1], [Decimal("0.5"), 1]),
        ({"when": datetime(2021, 1, 1, tzinfo=UTC)}, {"when": "2021-01-01T00:00:00.000000Z"}),
    ],
)
def test_every_source_type_has_its_prepared_value(value, expected):
    user = prepared(ruled(anything=value), RULED_PREPARER)
    result = user.attributes["anything"]
    assert result == expected
    assert type(result) is type(expected)
    assert user.size == item_bytes(sizable(encode_user(user, "user_id")))


def test_a_float_becomes_the_decimal_of_its_shortest_text():
    result = prepared(ruled(anything=0.1 + 0.2), RULED_PREPARER).attributes["anything"]
    assert result == Decimal("0.30000000000000004")


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (float("nan"), "Invalid anything: NaN"),
        (float("inf"), "Invalid anything: Infinity"),
        (float("-inf"), "Invalid anything: Infinity"),
        (Decimal("NaN"), "Invalid anything: NaN is not a number DynamoDB can store"),
        (10**40 + 1, "Invalid anything: number has 41 significant digits (max 38)"),
        (Decimal("1E+126"), "Invalid anything: number is out of DynamoDB's range (1E-130..9.99E+125)"),
        ("bad \ud800", "Invalid anything: not valid Unicode"),
        (UnreadableValue("infinity", "'infinity' is not a point"), "Invalid anything: 'infinity' is not a point"),
        ([1, float("nan")], "Invalid anything: NaN at anything[1]"),
        (Json({"x": float("inf")}), "Invalid anything: Infinity at anything.x"),
        # A problem of the value itself reads without its path.
        ({1: "a"}, "Invalid anything: key 1 is not a string at anything"),
        ({1, 2}, "Invalid anything: unsupported value of type set"),
    ],
)
def test_values_that_cannot_be_stored_are_named(value, reason):
    rejected = reasons(ruled(anything=value), RULED_PREPARER)
    assert rejected == [reason]
    assert rejected[0].code == "invalid_anything"


def test_every_problem_of_a_value_is_named():
    assert reasons(ruled(anything=[float("nan"), {"": 1}]), RULED_PREPARER) == [
        "Invalid anything: NaN at anything[0]",
        "Invalid anything: empty key at anything[1]",
    ]


def test_text_rules_see_the_text_of_other_values():
    assert prepared(ruled(nickname=12345), RULED_PREPARER).attributes["nickname"] == 12345
    assert reasons(ruled(nickname=123456), RULED_PREPARER) == ["Invalid nickname: longer than 5 characters"]


def _of_size(preparer: UserPreparer, size: int) -> SourceUser:
    """A user whose whole item (key, digest and migrated_at included) is exactly `size` bytes."""
    base = prepared(ruled(anything=""), preparer)
    return ruled(anything="x" * (size - base.size))


@pytest.mark.parametrize("key_attribute", ["user_id", "uid"])
def test_the_size_limit_is_over_the_whole_item(key_attribute):
    mapping = parse_mapping(
        {
            "target": {"key_attribute": key_attribute},
            "attributes": {"nickname": "nickname", "tier": "tier", "anything": "anything"},
            "other_columns": {"carry": False},
        },
        "sized.toml",
    )
    preparer = UserPreparer(mapping)
    at_limit = prepared(_of_size(preparer, MAX_ITEM_BYTES), preparer)
    assert at_limit.size == MAX_ITEM_BYTES
    assert item_bytes(encode_user(at_limit, key_attribute)) == MAX_ITEM_BYTES
    over = prepare(_of_size(preparer, MAX_ITEM_BYTES + 1), preparer)
    assert over == Rejection(3, (f"Item too large: {MAX_ITEM_BYTES + 1} bytes (limit {MAX_ITEM_BYTES})",))


def test_the_size_counts_multibyte_text_big_numbers_and_nested_values():
    user = prepared(
        ruled(anything={"ключ": ["🙂" * 10, Decimal("12345678901234567890.5"), None, True, {"x": -7}]}),
        RULED_PREPARER,
    )
    assert user.size == item_bytes(encode_user(user, "user_id"))


def test_a_preparer_without_a_mapping_is_the_documented_layout():
    user = valid_user(4)
    ours = UserPreparer().prepare(user, MIGRATED_AT)
    assert isinstance(ours, PreparedUser)
    documented = prepare_user(user, MIGRATED_AT)
    assert isinstance(documented, PreparedUser)
    assert ours.attributes == documented.attributes
    assert ours.size == documented.size
    assert isinstance(UserPreparer().mapping, UserMapping)
