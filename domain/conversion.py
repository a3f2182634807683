"""Conversion between a valid user and its DynamoDB item (low-level attribute-value format).

The write path builds each item's attribute values ({"S": ...}, {"N": ...}) directly; reading an
item back unwraps them and lets a private cattrs converter structure the item's typed shape
(`StoredUser`). Numbers travel as their exact decimal text and never pass through float.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import attrs
import cattrs

from domain.dynamodb_rules import MAX_ITEM_BYTES, number_bytes, text_bytes
from domain.model import AttributeValue, Item, JsonValue, UnreadableValue, User, UserItem
from domain.profile_rules import LookCloser, profile_problems, storable_profile
from domain.validation import field_problems


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
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    # What isoformat(timespec="microseconds") writes (a four-digit year, always microseconds),
    # but measured 40% faster (0.8 against 1.3 µs): it runs for two timestamps of every user.
    return "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ" % (  # noqa: UP031 - faster than an f-string here
        moment.year,
        moment.month,
        moment.day,
        moment.hour,
        moment.minute,
        moment.second,
        moment.microsecond,
    )


def parse_timestamp(text: str) -> datetime:
    """Reverse of `format_timestamp`: an aware UTC datetime."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


_item_converter = cattrs.Converter()
_item_converter.register_structure_hook(datetime, lambda text, _: parse_timestamp(text))
# Every user of a batch shares one `migrated_at` object: its text is made once, not once per user.
_last_formatted: list[tuple[datetime | None, str]] = [(None, "")]


def _batch_timestamp(moment: datetime) -> str:
    last_moment, text = _last_formatted[0]
    if moment is not last_moment:
        text = format_timestamp(moment)
        _last_formatted[0] = (moment, text)
    return text


def _number_text(number: int | float | Decimal) -> str:
    if isinstance(number, float):
        if not math.isfinite(number):
            raise ValueError("only finite numbers can be stored")
        # repr() is the shortest text that reads back as the same float: the number as written.
        number = Decimal(repr(number))
    return str(number)


def sized_attribute_value(value: JsonValue) -> tuple[AttributeValue, int]:
    """One JSON value in DynamoDB's attribute-value format, and its size by DynamoDB's rules
    (the same as `attribute_value_bytes` of it, computed on the way instead of by a second walk)."""
    if isinstance(value, str):
        return {"S": value}, text_bytes(value)
    if value is None:
        return {"NULL": True}, 1
    if isinstance(value, bool):
        return {"BOOL": value}, 1
    if isinstance(value, (int, float, Decimal)):
        text = _number_text(value)
        return {"N": text}, number_bytes(text)
    if isinstance(value, dict):
        members = {}
        size = 3  # the map itself; then per member 1 byte, its key and its value
        for key, element in value.items():
            members[key], element_size = sized_attribute_value(element)
            size += 1 + text_bytes(key) + element_size
        return {"M": members}, size
    if isinstance(value, (list, tuple)):
        elements = []
        size = 3
        for element in value:
            converted, element_size = sized_attribute_value(element)
            elements.append(converted)
            size += 1 + element_size
        return {"L": elements}, size
    raise TypeError(f"unsupported value of type {type(value).__name__}")


def to_attribute_value(value: JsonValue) -> AttributeValue:
    """One JSON value in DynamoDB's attribute-value format."""
    return sized_attribute_value(value)[0]


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


# The attributes every item has, in the order they are written; their names are ASCII.
_REQUIRED_NAMES_BYTES = sum(map(len, ("user_id", "username", "email", "status", "created_at", "migrated_at")))


def _sized_item(user: User, migrated_at: datetime, profile: tuple[AttributeValue, int] | None) -> tuple[Item, int]:
    # Built by hand, not by unstructuring a StoredUser with cattrs: measured 3 µs per user faster.
    username, email, status, created_at = user.username, user.email, user.status, user.created_at
    assert username is not None
    assert email is not None
    assert status is not None
    assert isinstance(created_at, datetime)
    user_id = str(user.id)
    created_text = format_timestamp(created_at)
    migrated_text = _batch_timestamp(migrated_at)
    item: Item = {
        "user_id": {"N": user_id},
        "username": {"S": username},
        "email": {"S": email},
        "status": {"S": status},
        "created_at": {"S": created_text},
        "migrated_at": {"S": migrated_text},
    }
    size = (
        _REQUIRED_NAMES_BYTES
        + number_bytes(user_id)
        + text_bytes(username)
        + text_bytes(email)
        + text_bytes(status)
        + len(created_text)
        + len(migrated_text)
    )
    # Optional attributes that are null are omitted.
    if user.display_name is not None:
        item["display_name"] = {"S": user.display_name}
        size += len("display_name") + text_bytes(user.display_name)
    if user.updated_at is not None:
        assert isinstance(user.updated_at, datetime)
        updated_text = format_timestamp(user.updated_at)
        item["updated_at"] = {"S": updated_text}
        size += len("updated_at") + len(updated_text)
    if profile is not None:
        item["profile"], profile_size = profile
        size += len("profile") + profile_size
    return item, size


def sized_item(user: User, migrated_at: datetime) -> tuple[Item, int]:
    """The DynamoDB item of a valid user and its size; optional attributes that are null are omitted."""
    try:
        profile = storable_profile(user.profile)
    except LookCloser:  # e.g. a float given in process: valid, but only the general walk converts it
        assert not isinstance(user.profile, UnreadableValue)
        profile = sized_attribute_value(user.profile)
    return _sized_item(user, migrated_at, profile)


def to_item(user: User, migrated_at: datetime) -> Item:
    """The DynamoDB item of a valid user; optional attributes that are null are omitted."""
    return sized_item(user, migrated_at)[0]


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


def _within_size_limit(user_id: int, item: Item, size: int) -> UserItem | Rejection:
    if size > MAX_ITEM_BYTES:
        return Rejection(user_id, (f"Item too large: {size} bytes (limit {MAX_ITEM_BYTES})",))
    return UserItem(user_id, item)


def prepare_user(user: User, migrated_at: datetime) -> UserItem | Rejection:
    """Validate a source user and, when it passes, convert it into the item to write."""
    problems = field_problems(user)
    if not problems:
        # Most users pass: one walk of the profile checks and converts it.
        try:
            profile = storable_profile(user.profile)
        except LookCloser:
            pass
        else:
            return _within_size_limit(user.id, *_sized_item(user, migrated_at, profile))
    problems += profile_problems(user.profile)
    if problems:
        return Rejection(user.id, tuple(problems))
    return _within_size_limit(user.id, *sized_item(user, migrated_at))
