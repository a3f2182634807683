"""Conversion between a valid user and its DynamoDB item (low-level attribute-value format).

A private cattrs converter turns the item's typed shape (`StoredUser`) into plain values and
back; the attribute-value wrapping ({"S": ...}, {"N": ...}) is applied around that. Numbers
travel as their exact decimal text and never pass through float.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import attrs
import cattrs

from domain.dynamodb_rules import MAX_ITEM_BYTES, item_bytes
from domain.model import AttributeValue, Item, JsonValue, UnreadableValue, User, UserItem
from domain.validation import user_problems


@attrs.frozen
class StoredUser:
    """The shape of a user item in DynamoDB; `user_id` is the partition key."""

    user_id: int
    username: str
    email: str
    status: str
    created_at: datetime
    migrated_at: datetime
    display_name: str | None = None
    updated_at: datetime | None = None
    profile: Any = None


def format_timestamp(moment: datetime) -> str:
    """ISO-8601 in UTC with microseconds and a `Z`; a naive datetime is taken to be UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    return (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T"
        f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}.{moment.microsecond:06d}Z"
    )


def parse_timestamp(text: str) -> datetime:
    """Reverse of `format_timestamp`: an aware UTC datetime."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


_item_converter = cattrs.Converter()
_item_converter.register_unstructure_hook(datetime, format_timestamp)
_item_converter.register_structure_hook(datetime, lambda text, _: parse_timestamp(text))


def _number_text(number: int | float | Decimal) -> str:
    if isinstance(number, float):
        if not math.isfinite(number):
            raise ValueError("only finite numbers can be stored")
        # repr() is the shortest text that reads back as the same float: the number as written.
        number = Decimal(repr(number))
    return str(number)


def to_attribute_value(value: JsonValue) -> AttributeValue:
    """One JSON value in DynamoDB's attribute-value format."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, (int, float, Decimal)):
        return {"N": _number_text(value)}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, (list, tuple)):
        return {"L": [to_attribute_value(element) for element in value]}
    if isinstance(value, dict):
        return {"M": {key: to_attribute_value(element) for key, element in value.items()}}
    raise TypeError(f"unsupported value of type {type(value).__name__}")


def _number_from_text(text: str) -> int | Decimal:
    number = Decimal(text)
    if number == number.to_integral_value() and "." not in text and "e" not in text.lower():
        return int(text)
    return number


def from_attribute_value(value: AttributeValue) -> JsonValue:
    """Reverse of `to_attribute_value`."""
    ((kind, payload),) = value.items()
    if kind == "NULL":
        return None
    if kind == "BOOL":
        return bool(payload)
    if kind == "N":
        return _number_from_text(payload)
    if kind == "S":
        return str(payload)
    if kind == "L":
        return [from_attribute_value(element) for element in payload]
    if kind == "M":
        return {key: from_attribute_value(element) for key, element in payload.items()}
    raise ValueError(f"unsupported attribute type {kind!r}")


def _plain_to_attribute_value(field: str, value: Any) -> AttributeValue:
    if field == "user_id":
        return {"N": str(value)}
    if field == "profile":
        return to_attribute_value(value)
    return {"S": value}


def stored_user_of(user: User, migrated_at: datetime) -> StoredUser:
    """The item shape of a user that passed validation."""
    assert user.username is not None
    assert user.email is not None
    assert user.status is not None
    assert isinstance(user.created_at, datetime)
    assert not isinstance(user.updated_at, UnreadableValue)
    assert not isinstance(user.profile, UnreadableValue)
    return StoredUser(
        user_id=user.id,
        username=user.username,
        email=user.email,
        status=user.status,
        created_at=user.created_at,
        migrated_at=migrated_at,
        display_name=user.display_name,
        updated_at=user.updated_at,
        profile=user.profile,
    )


def to_item(user: User, migrated_at: datetime) -> Item:
    """The DynamoDB item of a valid user; optional attributes that are null are omitted."""
    plain = _item_converter.unstructure(stored_user_of(user, migrated_at))
    return {field: _plain_to_attribute_value(field, value) for field, value in plain.items() if value is not None}


def stored_user_from_item(item: Item) -> StoredUser:
    """Reverse of `to_item`, keeping `migrated_at`."""
    plain: dict[str, Any] = {}
    for field, value in item.items():
        if field == "user_id":
            plain[field] = int(value["N"])
        elif field == "profile":
            plain[field] = from_attribute_value(value)
        else:
            plain[field] = value["S"]
    return _item_converter.structure(plain, StoredUser)


def from_item(item: Item) -> User:
    """The user an item was made from."""
    stored = stored_user_from_item(item)
    return User(
        id=stored.user_id,
        username=stored.username,
        email=stored.email,
        display_name=stored.display_name,
        status=stored.status,
        created_at=stored.created_at,
        updated_at=stored.updated_at,
        profile=stored.profile,
    )


@attrs.frozen
class Rejection:
    """A user that cannot be migrated, with every reason."""

    user_id: int
    reasons: tuple[str, ...]


def prepare_user(user: User, migrated_at: datetime) -> UserItem | Rejection:
    """Validate a source user and, when it passes, convert it into the item to write."""
    problems = user_problems(user)
    if problems:
        return Rejection(user.id, tuple(problems))
    attributes = to_item(user, migrated_at)
    size = item_bytes(attributes)
    if size > MAX_ITEM_BYTES:
        return Rejection(user.id, (f"Item too large: {size} bytes (limit {MAX_ITEM_BYTES})",))
    return UserItem(user.id, attributes)
