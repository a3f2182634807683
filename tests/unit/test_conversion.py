"""A user of the documented layout, prepared (`domain.convert.rules`) and encoded (`adapters.dynamodb.codec`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.factories import from_item, to_item, valid_user
from tests.unit.test_profile_rules import mostly, odd_profiles, sizable
from user_migration.adapters.dynamodb.codec import encode_user, encode_value, item_digest
from user_migration.adapters.dynamodb.item_size import item_bytes
from user_migration.domain.convert.limits import significant_digits
from user_migration.domain.convert.rules import Rejection, prepare_user, user_problems
from user_migration.domain.convert.timestamps import format_timestamp, parse_timestamp
from user_migration.domain.convert.values import checked_value
from user_migration.domain.convert.versions import version_of
from user_migration.domain.model import Json, PreparedUser, UnreadableValue, User

MIGRATED_AT = datetime(2026, 11, 25, 9, 0, 0, 123456, tzinfo=UTC)


def test_item_has_every_attribute_in_attribute_value_format():
    item = to_item(valid_user(42), MIGRATED_AT)
    assert item == {
        "user_id": {"N": "42"},
        "username": {"S": "user_42"},
        "email": {"S": "user42@example.com"},
        "display_name": {"S": "User 42"},
        "status": {"S": "active"},
        "created_at": {"S": "2021-03-04T05:06:07.890123Z"},
        "updated_at": {"S": "2024-01-02T03:04:05.000006Z"},
        "migrated_at": {"S": "2026-11-25T09:00:00.123456Z"},
        "profile": {
            "M": {
                "plan": {"S": "pro"},
                "score": {"N": "12.50"},
                "tags": {"L": [{"S": "a"}, {"S": "b"}]},
                "nested": {"M": {"x": {"N": "1"}}},
            }
        },
        "migration_digest": {"S": item_digest(item)},
        # updated_at as microseconds since the epoch: the version "newer" is decided by.
        "migration_version": {"N": str(version_of(valid_user(42).updated_at))},
    }
    assert item["migration_version"] == {"N": "1704164645000006"}
    assert len(item["migration_digest"]["S"]) == 32


def test_null_optional_attributes_are_omitted():
    item = to_item(valid_user(1, display_name=None, updated_at=None, profile=None), MIGRATED_AT)
    assert set(item) == {"user_id", "username", "email", "status", "created_at", "migrated_at", "migration_digest"}


def test_empty_display_name_is_kept_as_an_empty_string():
    assert to_item(valid_user(1, display_name=""), MIGRATED_AT)["display_name"] == {"S": ""}


def test_profile_json_types_map_to_dynamodb_types():
    profile = {"s": "", "t": True, "f": False, "n": None, "l": [1, "x", None], "m": {}}
    assert to_item(valid_user(profile=profile), MIGRATED_AT)["profile"] == {
        "M": {
            "s": {"S": ""},
            "t": {"BOOL": True},
            "f": {"BOOL": False},
            "n": {"NULL": True},
            "l": {"L": [{"N": "1"}, {"S": "x"}, {"NULL": True}]},
            "m": {"M": {}},
        }
    }


def test_numbers_keep_their_exact_decimal_text():
    profile = {
        "big": Decimal("12345678901234567890123456789012345678"),
        "precise": Decimal("0.1000000000000000000000000000000000001"),
        "int": 10**37,
        "exp": Decimal("1E+125"),
    }
    converted = to_item(valid_user(profile=profile), MIGRATED_AT)["profile"]["M"]
    assert converted["big"] == {"N": "12345678901234567890123456789012345678"}
    assert converted["precise"] == {"N": "0.1000000000000000000000000000000000001"}
    assert converted["int"] == {"N": "1" + "0" * 37}
    assert converted["exp"] == {"N": "1E+125"}


def test_a_float_given_in_process_is_written_as_its_shortest_text():
    assert to_item(valid_user(profile={"f": 0.1}), MIGRATED_AT)["profile"] == {"M": {"f": {"N": "0.1"}}}


def test_timestamps_are_utc_with_microseconds_and_z():
    plus_five = timezone(timedelta(hours=5, minutes=30))
    assert format_timestamp(datetime(2020, 6, 1, 12, 0, tzinfo=plus_five)) == "2020-06-01T06:30:00.000000Z"
    assert format_timestamp(datetime(5, 1, 2, 3, 4, 5, 6, tzinfo=UTC)) == "0005-01-02T03:04:05.000006Z"
    assert format_timestamp(datetime(2020, 6, 1, 12, 0)) == "2020-06-01T12:00:00.000000Z"


def test_reverse_conversion_gives_back_the_user_and_migrated_at():
    user = valid_user(9)
    item = to_item(user, MIGRATED_AT)
    assert from_item(item) == user
    assert parse_timestamp(item["migrated_at"]["S"]) == MIGRATED_AT


def test_prepare_user_rejects_with_every_reason():
    prepared = prepare_user(valid_user(5, username=None, status="x"), MIGRATED_AT)
    assert prepared == Rejection(5, ("Missing required field 'username'", "Invalid status 'x'"))


def test_prepare_user_prepares_a_valid_user():
    prepared = prepare_user(valid_user(5), MIGRATED_AT)
    assert isinstance(prepared, PreparedUser)
    assert prepared.user_id == 5
    assert encode_user(prepared, "user_id") == to_item(valid_user(5), MIGRATED_AT)
    assert prepared.size == item_bytes(to_item(valid_user(5), MIGRATED_AT))


@pytest.mark.parametrize("user_id", [5, 10**18, "550e8400-e29b-41d4-a716-446655440000", "alice", "1e5", "clé-ünïcode"])
def test_a_prepared_users_size_is_its_items_whatever_its_key(user_id: int | str):
    # A uuid or text key is an S value: its UTF-8 length, not the size of a number (a uuid's "e"
    # once made it a number's exponent: 3 bytes for 36).
    prepared = prepare_user(attrs.evolve(valid_user(1), id=user_id), MIGRATED_AT)
    assert isinstance(prepared, PreparedUser)
    assert prepared.size == item_bytes(encode_user(prepared, "user_id"))


def test_prepared_attributes_are_target_neutral_and_in_the_rows_order():
    prepared = prepare_user(valid_user(5), MIGRATED_AT)
    assert isinstance(prepared, PreparedUser)
    assert list(prepared.attributes) == [
        "username",
        "email",
        "display_name",
        "created_at",
        "updated_at",
        "status",
        "profile",
        "migrated_at",
    ]
    assert prepared.attributes["created_at"] == "2021-03-04T05:06:07.890123Z"
    assert prepared.attributes["profile"] == {
        "plan": "pro",
        "score": Decimal("12.50"),
        "tags": ["a", "b"],
        "nested": {"x": 1},
    }


# --- the round trip: every valid user survives item conversion unchanged -----------------------

json_numbers = st.one_of(
    st.integers(min_value=-(10**38) + 1, max_value=10**38 - 1),
    st.decimals(allow_nan=False, allow_infinity=False, places=None)
    .filter(lambda d: d.is_zero() or (Decimal("1E-130") <= abs(d) < Decimal("1E+126")))
    .filter(lambda d: significant_digits(d) <= 38),
)
json_scalars = st.one_of(st.none(), st.booleans(), json_numbers, st.text())
json_keys = st.text(min_size=1, max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(json_keys, children, max_size=4)),
    max_leaves=20,
)
aware_datetimes = st.datetimes(
    min_value=datetime(1, 1, 2),
    max_value=datetime(9999, 12, 30),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=-8)), timezone(timedelta(hours=5, minutes=45))]),
)
valid_users = st.builds(
    User,
    id=st.integers(min_value=1, max_value=2**63 - 1),
    username=st.from_regex(r"[A-Za-z0-9_.-]{3,32}", fullmatch=True),
    email=st.from_regex(r"[a-z0-9._+-]{1,20}@[a-z0-9-]{1,20}\.[a-z]{2,6}", fullmatch=True),
    display_name=st.none() | st.text(),
    status=st.sampled_from(["active", "suspended", "deleted"]),
    created_at=aware_datetimes,
    updated_at=st.none() | aware_datetimes,
    profile=st.none() | st.dictionaries(json_keys, json_values, max_size=5),
)


@settings(max_examples=300, deadline=None)
@given(user=valid_users)
def test_every_valid_user_survives_the_round_trip(user):
    assert user_problems(user) == []
    assert from_item(to_item(user, MIGRATED_AT)) == user


@settings(max_examples=200, deadline=None)
@given(user=valid_users)
def test_the_size_computed_on_the_way_is_dynamodbs_item_size(user):
    prepared = prepare_user(user, MIGRATED_AT)
    assert isinstance(prepared, PreparedUser)
    item = encode_user(prepared, "user_id")
    assert item == to_item(user, MIGRATED_AT)
    assert prepared.size == item_bytes(item)


# --- the write path against a plain reference ---------------------------------------------------


def _reference_attributes(user: User, migrated_at: datetime) -> dict:
    """The prepared attributes as the slow walk makes them, attribute by attribute, in the row's order."""
    attributes = {
        "username": user.username,
        "email": user.email,
        "display_name": user.display_name,
        "created_at": format_timestamp(user.created_at),
        "updated_at": None if user.updated_at is None else format_timestamp(user.updated_at),
        "status": user.status,
        "profile": None if user.profile is None else checked_value(Json(user.profile), "profile")[0],
        "migrated_at": format_timestamp(migrated_at),
    }
    return {name: value for name, value in attributes.items() if value is not None}


unreadable = st.just(UnreadableValue("infinity", "'infinity' is not a point in time"))
any_users = st.builds(
    User,
    id=st.integers(min_value=1, max_value=2**63 - 1),
    username=mostly(st.from_regex(r"[a-z0-9_]{3,12}", fullmatch=True), st.sampled_from([None, "", "ab", "é"])),
    email=mostly(st.from_regex(r"[a-z]{1,8}@[a-z]{1,8}\.[a-z]{2}", fullmatch=True), st.sampled_from([None, "x@y"])),
    display_name=st.none() | st.text(max_size=8) | st.just("bad \ud800"),
    status=mostly(st.sampled_from(["active", "suspended", "deleted"]), st.sampled_from(["gone", None, ""])),
    created_at=mostly(aware_datetimes, st.none() | unreadable),
    updated_at=st.one_of(st.none(), aware_datetimes, unreadable),
    profile=mostly(odd_profiles, st.just(UnreadableValue("{bad", "not valid JSON (x)"))),
)


@settings(max_examples=500, deadline=None)
@given(user=any_users)
def test_prepare_user_rejects_with_every_reason_or_prepares_the_reference_attributes(user):
    prepared = prepare_user(user, MIGRATED_AT)
    problems = user_problems(user)
    if problems:
        assert prepared == Rejection(user.id, tuple(problems))
        return
    expected = _reference_attributes(user, MIGRATED_AT)
    assert isinstance(prepared, PreparedUser)
    assert list(prepared.attributes.items()) == list(expected.items())  # the same order too
    item = encode_user(prepared, "user_id")
    assert {
        name: value for name, value in item.items() if name not in ("user_id", "migration_digest", "migration_version")
    } == {name: encode_value(value) for name, value in expected.items()}
    assert prepared.size == item_bytes(sizable(item))


@settings(max_examples=300, deadline=None)
@given(moment=aware_datetimes | st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)))
def test_timestamps_are_written_as_isoformat_would(moment):
    utc = moment if moment.tzinfo is None else moment.astimezone(UTC)
    assert format_timestamp(moment) == utc.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"
    assert parse_timestamp(format_timestamp(moment)) == utc.replace(tzinfo=UTC)


def test_every_migrated_at_gets_its_own_text():
    earlier = datetime(2021, 11, 7, 1, 30, tzinfo=ZoneInfo("America/New_York"))
    later = earlier.replace(fold=1)  # equal to `earlier` by ==, yet an hour later
    texts = [to_item(valid_user(1), moment)["migrated_at"]["S"] for moment in (earlier, later, earlier)]
    assert texts == ["2021-11-07T05:30:00.000000Z", "2021-11-07T06:30:00.000000Z", "2021-11-07T05:30:00.000000Z"]
