"""Prepared users to DynamoDB items and back (`adapters.dynamodb.codec`), and the digest by which
the migration recognises its own, unchanged items."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from decimal import Decimal, localcontext
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.factories import CREATED, prepared_user
from tests.unit.test_profile_rules import sizable
from tests.unit.test_values import prepared_keys, prepared_values, same
from user_migration.adapters.dynamodb.codec import (
    _canonical,
    decode_item,
    decode_value,
    digest_text,
    encode_user,
    encode_value,
    item_digest,
    key_of,
    number_from_text,
    unchanged_since_written,
    written_by_migration,
)
from user_migration.adapters.dynamodb.item_size import item_bytes
from user_migration.domain.model import PreparedUser

attribute_names = st.text(min_size=1, max_size=10).filter(lambda name: name not in ("migrated_at", "migration_digest"))
# A mapping never names the key attribute, nor the migration's own attributes (parse_mapping refuses them).
prepared_attributes = st.dictionaries(
    attribute_names.filter(lambda name: name not in ("user_id", "uid", "migration_digest")), prepared_values, max_size=6
)
prepared_users = st.builds(
    PreparedUser,
    user_id=st.integers(min_value=1, max_value=2**63 - 1),
    attributes=prepared_attributes,
)


def test_each_kind_of_value_has_its_attribute_value():
    assert encode_value("x") == {"S": "x"}
    assert encode_value(12) == {"N": "12"}
    assert encode_value(Decimal("12.50")) == {"N": "12.50"}
    assert encode_value(True) == {"BOOL": True}
    assert encode_value(None) == {"NULL": True}
    assert encode_value(b"\x00") == {"B": b"\x00"}
    assert encode_value([1, None]) == {"L": [{"N": "1"}, {"NULL": True}]}
    assert encode_value({"a": {}}) == {"M": {"a": {"M": {}}}}
    with pytest.raises(TypeError, match="float"):
        encode_value(0.5)


def test_numbers_decode_as_int_when_written_as_integers_and_as_exact_decimals_otherwise():
    assert number_from_text("42") == 42
    assert type(number_from_text("42")) is int
    assert number_from_text("-" + "9" * 38) == -int("9" * 38)
    assert number_from_text("12.50") == Decimal("12.50")
    assert str(number_from_text("12.50")) == "12.50"
    assert type(number_from_text("1E+2")) is Decimal
    assert decode_value({"B": base64.b64encode(b"\x01\x02").decode()}) == b"\x01\x02"  # as JSON would carry it
    with pytest.raises(ValueError, match="SS"):
        decode_value({"SS": ["a"]})


@settings(max_examples=500, deadline=None)
@given(value=prepared_values)
def test_every_prepared_value_survives_encoding_and_decoding(value):
    decoded = decode_value(encode_value(value))
    assert decoded == value
    assert same(decoded, value)


@settings(max_examples=300, deadline=None)
@given(user=prepared_users, key_attribute=st.sampled_from(["user_id", "uid"]))
def test_an_encoded_user_decodes_to_its_attributes_and_key(user, key_attribute):
    item = encode_user(user, key_attribute)
    assert item[key_attribute] == {"N": str(user.user_id)}
    assert key_of(user.user_id, key_attribute) == {key_attribute: item[key_attribute]}
    values = decode_item(item)
    assert values.pop(key_attribute) == user.user_id
    digest = values.pop("migration_digest")
    assert len(digest) == 32
    assert same(values, user.attributes)
    assert written_by_migration(item)
    assert unchanged_since_written(item)
    # The size rule the preparer applies counts the digest: 48 bytes.
    assert item_bytes(sizable({"migration_digest": item["migration_digest"]})) == 48


def test_a_prepared_user_encodes_with_its_size():
    user = prepared_user(3)
    item = encode_user(user, "user_id")
    assert user.size == item_bytes(item)
    assert next(iter(item)) == "user_id"
    assert list(item)[-2:] == ["migration_digest", "migration_version"]


# --- the digest -------------------------------------------------------------------------------


def digest_of(**attributes: Any) -> str:
    return item_digest({"user_id": {"N": "1"}, **attributes})


@pytest.mark.parametrize(
    ("written", "returned"),
    [
        ("12.50", "12.5"),
        ("1E+2", "100"),
        ("100", "1E+2"),
        ("0.0", "0"),
        ("-0", "0"),
        ("1.000E-5", "0.00001"),
        ("+7", "7"),
        # Written without exponent (read from its text) and with one (read from its digits).
        ("1500.0", "1.5E+3"),
        ("-0.00", "0E+5"),
        ("-23.550520", "-23.55052"),
        ("0.000100", "1E-4"),
        ("0.00000015", "1.50E-7"),
    ],
)
def test_numbers_written_differently_but_equal_have_one_digest(written, returned):
    assert digest_of(n={"N": written}) == digest_of(n={"N": returned})
    assert digest_of(m={"M": {"x": {"L": [{"N": written}]}}}) == digest_of(m={"M": {"x": {"L": [{"N": returned}]}}})


def test_different_numbers_have_different_digests():
    assert digest_of(n={"N": "12.5"}) != digest_of(n={"N": "12.51"})
    assert digest_of(n={"N": "100"}) != digest_of(n={"N": "10"})
    assert digest_of(n={"N": "1"}) != digest_of(n={"S": "1"})


def test_binary_is_digested_alike_as_bytes_or_as_base64_text():
    assert digest_of(b={"B": b"\x00\xff"}) == digest_of(b={"B": base64.b64encode(b"\x00\xff").decode()})


def test_migrated_at_and_the_digest_itself_are_not_digested():
    assert digest_of(a={"S": "x"}) == digest_of(a={"S": "x"}, migrated_at={"S": "2020"})
    assert digest_of(a={"S": "x"}) == digest_of(a={"S": "x"}, migration_digest={"S": "anything"})


def reordered_value(value: Any, draw: Any) -> Any:
    """The same attribute value, every map's keys in another order."""
    ((kind, payload),) = value.items()
    if kind == "M":
        return {"M": reordered(payload, draw)}
    if kind == "L":
        return {"L": [reordered_value(element, draw) for element in payload]}
    return value


def reordered(members: dict[str, Any], draw: Any) -> dict[str, Any]:
    """The same item (or map's members) with its keys, and those of every map in it, in another order."""
    keys = draw(st.permutations(list(members)))
    return {key: reordered_value(members[key], draw) for key in keys}


def normalised_like_dynamodb(value: Any) -> Any:
    """An attribute value as DynamoDB gives it back: numbers in their shortest plain form."""
    ((kind, payload),) = value.items()
    if kind == "N":
        with localcontext() as context:
            context.prec = 60
            number = Decimal(payload).normalize()
        return {"N": "0" if number.is_zero() else format(number, "f")}
    if kind == "M":
        return {"M": {key: normalised_like_dynamodb(element) for key, element in payload.items()}}
    if kind == "L":
        return {"L": [normalised_like_dynamodb(element) for element in payload]}
    return value


@settings(max_examples=300, deadline=None)
@given(user=prepared_users, data=st.data())
def test_the_digest_is_independent_of_key_order_and_of_how_numbers_come_back(user, data):
    item = encode_user(user, "user_id")
    shuffled = reordered(item, data.draw)
    assert item_digest(shuffled) == item_digest(item)
    assert unchanged_since_written(shuffled)
    returned = {name: normalised_like_dynamodb(value) for name, value in item.items()}
    assert item_digest(returned) == item_digest(item)
    assert unchanged_since_written(returned)


def changed(value: Any, draw: Any) -> Any:
    """A prepared value different from `value` somewhere (a leaf, an element or a member)."""
    if isinstance(value, list) and value and draw(st.booleans()):
        index = draw(st.integers(0, len(value) - 1))
        return [*value[:index], changed(value[index], draw), *value[index + 1 :]]
    if isinstance(value, dict) and value and draw(st.booleans()):
        key = draw(st.sampled_from(sorted(value)))
        return {**value, key: changed(value[key], draw)}
    options: list[Any] = [[value], {"x": value}]
    if isinstance(value, bool):
        options.append(not value)
    elif isinstance(value, (int, Decimal)):
        options.append(value * 2 if value else 1)  # exact, where adding 1 to 1E+100 would round
    elif isinstance(value, str):
        options.append(value + "x")
    elif isinstance(value, bytes):
        options.append(value + b"x")
    elif isinstance(value, list):
        options.append([*value, None])
    elif isinstance(value, dict):
        options.append({**value, draw(prepared_keys.filter(lambda key: key not in value)): None})
    return draw(st.sampled_from(options))


@settings(max_examples=300, deadline=None)
@given(user=prepared_users.filter(lambda user: bool(user.attributes)), data=st.data())
def test_any_change_of_any_attribute_changes_the_digest(user, data):
    item = encode_user(user, "user_id")
    name = data.draw(st.sampled_from(sorted(user.attributes)))
    new_value = changed(user.attributes[name], data.draw)
    assert not same(new_value, user.attributes[name])
    edited = copy.deepcopy(item)
    edited[name] = encode_value(new_value)
    assert item_digest(edited) != item_digest(item)
    assert written_by_migration(edited)
    assert not unchanged_since_written(edited)


@settings(max_examples=200, deadline=None)
@given(user=prepared_users.filter(lambda user: bool(user.attributes)), data=st.data())
def test_an_attribute_added_or_removed_changes_the_digest(user, data):
    item = encode_user(user, "user_id")
    name = data.draw(st.sampled_from(sorted(user.attributes)))
    removed = {key: value for key, value in item.items() if key != name}
    assert not unchanged_since_written(removed)
    added = {**item, name + "_new": {"NULL": True}}
    assert not unchanged_since_written(added)


def test_changing_the_key_or_an_email_is_a_change_and_migrated_at_is_not():
    item = encode_user(prepared_user(5, CREATED), "user_id")
    assert unchanged_since_written(item)
    assert not unchanged_since_written({**item, "email": {"S": "someone.else@example.com"}})
    assert not unchanged_since_written({**item, "user_id": {"N": "6"}})
    assert unchanged_since_written({**item, "migrated_at": {"S": "2000-01-01T00:00:00.000000Z"}})


def test_an_item_without_digest_was_not_written_by_the_migration():
    item = encode_user(prepared_user(5), "user_id")
    del item["migration_digest"]
    assert not written_by_migration(item)
    assert not unchanged_since_written(item)
    assert not unchanged_since_written({**item, "migration_digest": {"S": "0" * 32}})


# The digest's text before the C encoder was kept: `JSONEncoder.encode`, as the digests of every
# item written so far were made. They must keep reading the same.
_ENCODER_AS_BEFORE = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=_canonical)


def _digest_as_before(user: PreparedUser, key_attribute: str) -> str:
    values = {key_attribute: user.user_id, **user.attributes}
    content = {name: value for name, value in values.items() if name not in ("migrated_at", "migration_digest")}
    text = _ENCODER_AS_BEFORE.encode(content)
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


@settings(max_examples=500, deadline=None)
@given(user=prepared_users, key_attribute=st.sampled_from(["user_id", "uid"]))
def test_the_digest_text_is_the_json_encoder_s_as_before(user, key_attribute):
    content = {key_attribute: user.user_id, **user.attributes}
    assert digest_text(content) == _ENCODER_AS_BEFORE.encode(content)
    assert encode_user(user, key_attribute)["migration_digest"]["S"] == _digest_as_before(user, key_attribute)


def test_the_digest_of_a_realistic_user_is_unchanged():
    user = PreparedUser(
        7,
        {
            "username": "zoë.o'brien",
            "profile": {"plan": "pro", "tags": ["a", "ü"], "balance": Decimal("12.50"), "lat": Decimal("-0.5")},
            "avatar": b"\x00\xff",
            "score": Decimal("1E+3"),
            "flags": [True, None, 2**70 - 1],
            "migrated_at": "2026-12-07T00:00:00Z",
        },
    )
    assert encode_user(user, "user_id")["migration_digest"]["S"] == _digest_as_before(user, "user_id")
