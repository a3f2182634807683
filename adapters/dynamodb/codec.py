"""Prepared users to DynamoDB items (low-level attribute values) and back, and the digest by which
the migration recognises an item it wrote and that nobody changed since.

Numbers travel as their exact decimal text and never pass through float. The digest covers every
attribute but `migrated_at` and itself, with numbers compared by value (DynamoDB may give back
`12.5` for the `12.50` it was sent), maps by key, binary by its bytes, so it reads the same from
what was sent and from what DynamoDB returns.
"""

from __future__ import annotations

import base64
import hashlib
import json
from decimal import Decimal
from typing import Any

from user_migration.adapters.dynamodb.item_size import AttributeValue, Item
from user_migration.adapters.dynamodb.json_text import c_encoder
from user_migration.domain.convert.mapping import MIGRATED_AT, MIGRATION_DIGEST, MIGRATION_VERSION
from user_migration.domain.keys import KeyKind, UserId
from user_migration.domain.model import PreparedUser, PreparedValue, StoredUser

# The migration's own bookkeeping: not content, so neither digested nor compared by `verify`.
BOOKKEEPING = frozenset({MIGRATED_AT, MIGRATION_DIGEST, MIGRATION_VERSION})
_NOT_DIGESTED = BOOKKEEPING
# Why a rewrite kept an item as it is.
NOT_WRITTEN_BY_MIGRATION = "not written by the migration (no migration_digest): left as it is"
CHANGED_SINCE_WRITTEN = "changed in DynamoDB since the migration wrote it: left as it is"
NO_LONGER_STORED = "no longer in DynamoDB: not written again by a rewrite"
NEWER_IN_DYNAMODB = "newer in DynamoDB than the source row: left as it is"


def encode_value(value: PreparedValue) -> AttributeValue:
    """One prepared value as a DynamoDB attribute value."""
    kind = type(value)
    if kind is str:
        return {"S": value}
    if kind is dict:
        return {"M": {key: _member(element) for key, element in value.items()}}
    if kind is int or kind is Decimal:
        return {"N": str(value)}
    if kind is bool:
        return {"BOOL": value}
    if value is None:
        return {"NULL": True}
    if kind is list:
        return {"L": [_member(element) for element in value]}
    if kind is bytes:
        return {"B": value}
    raise TypeError(f"not a prepared value: {kind.__name__}")


def _member(value: PreparedValue) -> AttributeValue:
    # A map's or list's member: text, numbers and booleans, the most common ones, without a
    # second call (a profile holds a dozen).
    kind = type(value)
    if kind is str:
        return {"S": value}
    if kind is int:
        return {"N": str(value)}
    if kind is bool:
        return {"BOOL": value}
    return encode_value(value)


def number_from_text(text: str) -> int | Decimal:
    """An N value as int when it is written as an integer, otherwise as an exact Decimal."""
    if "." not in text and "e" not in text and "E" not in text:
        return int(text)
    return Decimal(text)


def decode_value(value: AttributeValue) -> PreparedValue:
    """Reverse of `encode_value`."""
    ((kind, payload),) = value.items()
    if kind == "S":
        return str(payload)
    if kind == "N":
        return number_from_text(payload)
    if kind == "BOOL":
        return bool(payload)
    if kind == "NULL":
        return None
    if kind == "B":
        return base64.b64decode(payload) if isinstance(payload, str) else bytes(payload)
    if kind == "M":
        return {key: decode_value(element) for key, element in payload.items()}
    if kind == "L":
        return [decode_value(element) for element in payload]
    raise ValueError(f"unsupported attribute type {kind!r}")


def decode_item(item: Item) -> dict[str, PreparedValue]:
    """An item's attributes as plain values (the key attribute included)."""
    return {name: decode_value(value) for name, value in item.items()}


def _canonical(value: object) -> object:
    # Called by json.dumps for what JSON has no form of. A number is compared by value: an
    # integral one as the integer it is (DynamoDB may give back `5` for the `5.0` it was sent),
    # any other by its digits and exponent with trailing zeros trimmed (`12.50` and `12.5`).
    if isinstance(value, Decimal):
        text = str(value)
        if "E" not in text and value.is_finite():
            return _plain_canonical(value, text)
        sign, digits, exponent = value.as_tuple()
        assert isinstance(exponent, int)  # the domain never prepares NaN or Infinity
        if not any(digits):
            return 0  # -0.00 and 0E+5 are the 0 DynamoDB gives back
        end = len(digits)
        while end > 1 and digits[end - 1] == 0:
            end -= 1
        exponent += len(digits) - end
        if exponent >= 0:
            return int(value)
        return ["\u0000N", f"{'-' if sign else ''}{''.join(map(str, digits[:end]))}e{exponent}"]
    if isinstance(value, (bytes, bytearray, memoryview)):
        return ["\u0000B", bytes(value).hex()]
    raise TypeError(f"not a prepared value: {type(value).__name__}")


def _plain_canonical(value: Decimal, text: str) -> object:
    # `_canonical` of a number written without exponent ("-23.550520"), from its text: its
    # digits are the coefficient's (with leading zeros), its exponent minus the fraction's length.
    negative = text[0] == "-"
    whole, _, fraction = (text[1:] if negative else text).partition(".")
    digits = (whole + fraction).lstrip("0")
    if not digits:
        return 0
    trimmed = digits.rstrip("0")
    exponent = len(digits) - len(trimmed) - len(fraction)
    if exponent >= 0:
        return int(value)
    return ["\u0000N", f"{'-' if negative else ''}{trimmed}e{exponent}"]


_DIGEST_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=_canonical)
# The same encoder's C core, made once: `JSONEncoder.encode` builds it again at every call (about
# 1.5 µs of a digest's 8). No check for circular values, which prepared values never are.
_DIGEST_TEXT = c_encoder(_canonical)


def digest_text(content: dict[str, PreparedValue]) -> str:
    """The canonical JSON text that the digest hashes: exactly `_DIGEST_ENCODER.encode(content)`."""
    return "".join(_DIGEST_TEXT(content, 0)) if _DIGEST_TEXT is not None else _DIGEST_ENCODER.encode(content)


def _content_digest(values: dict[str, PreparedValue]) -> str:
    content = {name: value for name, value in values.items() if name not in _NOT_DIGESTED}
    return hashlib.blake2b(digest_text(content).encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def item_digest(item: Item) -> str:
    """The digest of an item's content: every attribute but the migration's bookkeeping."""
    return _content_digest({name: decode_value(value) for name, value in item.items() if name not in _NOT_DIGESTED})


def encode_user(user: PreparedUser, key_attribute: str) -> Item:
    """The item to write for a prepared user, its digest included."""
    item: Item = key_of(user.user_id, key_attribute)
    for name, value in user.attributes.items():
        item[name] = {"S": value} if type(value) is str else encode_value(value)  # text without a call
    # The digest of what is sent, from the prepared values (one C-speed json.dumps, not a walk
    # of the item); `item_digest` of the item DynamoDB gives back reads the same.
    item[MIGRATION_DIGEST] = {"S": _content_digest({key_attribute: user.user_id, **user.attributes})}
    if user.version is not None:
        item[MIGRATION_VERSION] = {"N": str(user.version)}
    return item


def written_by_migration(item: Item) -> bool:
    """Whether the item carries the migration's digest (it was written by this tool)."""
    return MIGRATION_DIGEST in item


def unchanged_since_written(item: Item) -> bool:
    """Whether the item is still exactly what the migration wrote (its digest still fits)."""
    digest = item.get(MIGRATION_DIGEST, {}).get("S")
    return digest is not None and digest == item_digest(item)


def is_own_write(current: Item | None, sent: Item) -> bool:
    """Whether the stored item is the very item this process sent: its digest and the moment of
    its write, not the whole item (DynamoDB normalises numbers)."""
    return current is not None and all(current.get(name) == sent.get(name) for name in (MIGRATION_DIGEST, MIGRATED_AT))


def why_not_rewritten(current: Item | None, version: int | None = None) -> str | None:
    """Why a rewrite (from a row of `version`) must leave the stored item as it is; None when the
    migration may replace it."""
    if current is None:
        return NO_LONGER_STORED
    if not written_by_migration(current):
        return NOT_WRITTEN_BY_MIGRATION
    if not unchanged_since_written(current):
        return CHANGED_SINCE_WRITTEN
    stored = stored_version(current)
    if stored is not None and version is not None and stored > version:
        return NEWER_IN_DYNAMODB
    return None


def same_content(item: Item, current: Item) -> bool:
    """Whether `current` stores what the new `item` would: judged by content (the digest of what
    is stored, whoever wrote it, against the new item's), never by version alone."""
    return item[MIGRATION_DIGEST].get("S") == item_digest(current)


REPLACE = "replace"


def rewrite_choice(current: Item | None, item: Item, version: int | None = None) -> tuple[str, str]:
    """What a rewrite of `current` by the new `item` (from a row of `version`) does: "unchanged"
    where both hold the same content (whoever wrote the stored one), ("kept", why) where the
    migration must leave it as it is, `REPLACE` where it may replace it."""
    if current is None:
        return "kept", NO_LONGER_STORED
    if same_content(item, current):
        return "unchanged", ""
    if (why := why_not_rewritten(current, version)) is not None:
        return "kept", why
    return REPLACE, ""


def key_attribute_type(kind: KeyKind) -> str:
    """The DynamoDB type of the key attribute for a source key of this kind: N for integers, S otherwise."""
    return "N" if kind is KeyKind.INTEGER else "S"


def key_value(user_id: UserId) -> AttributeValue:
    """A user id as the key attribute's value: an integer as N, a uuid or text as S."""
    return {"N": str(user_id)} if isinstance(user_id, int) else {"S": user_id}


def key_of(user_id: UserId, key_attribute: str) -> dict[str, Any]:
    """The key of one user's item."""
    return {key_attribute: key_value(user_id)}


def decode_key(value: AttributeValue) -> UserId:
    """A key attribute's value as a user id (N as int, S as it is); ValueError for another type."""
    if "N" in value:
        return int(value["N"])
    if "S" in value:
        return str(value["S"])
    raise ValueError(f"not a user id: {value!r}")


def stored_version(item: Item | None) -> int | None:
    """The source version a stored item was written from (its `migration_version`, in DynamoDB's
    wire format); None when it has none (written by someone else, or absent)."""
    if item is None:
        return None
    value = item.get(MIGRATION_VERSION)
    if value is None or "N" not in value:
        return None
    try:
        return int(value["N"])
    except ValueError:
        return None


def stored_user(item: Item) -> StoredUser:
    """A stored item in the migration's words: its version, and whether the migration wrote it."""
    return StoredUser(stored_version(item), MIGRATION_DIGEST in item)
