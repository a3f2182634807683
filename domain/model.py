"""The records the migration talks about: a source user, a DynamoDB item, outcomes of writes."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeAlias

import attrs

# A JSON document as the migration holds it: numbers stay exact (int or Decimal, never float
# on the way in from the source), objects are dicts with string keys.
JsonValue: TypeAlias = bool | int | float | Decimal | str | list["JsonValue"] | dict[str, "JsonValue"] | None

# One DynamoDB attribute value in the low-level wire format, e.g. {"S": "alice"} or {"N": "42"}.
AttributeValue: TypeAlias = dict[str, Any]
Item: TypeAlias = dict[str, AttributeValue]


@attrs.frozen
class UnreadableValue:
    """A source value the migration cannot represent (e.g. a timestamp of 'infinity').

    The source adapter hands it over instead of failing the whole page, so that validation can
    report the one user it belongs to.
    """

    raw: str
    reason: str


@attrs.frozen
class User:
    """A user as read from PostgreSQL: every column may be missing, since source data is dirty."""

    id: int
    username: str | None = None
    email: str | None = None
    display_name: str | None = None
    status: str | None = "active"
    created_at: datetime | UnreadableValue | None = None
    updated_at: datetime | UnreadableValue | None = None
    profile: JsonValue | UnreadableValue = None


@attrs.frozen
class UserItem:
    """A valid user converted into the DynamoDB item that will be written for it."""

    user_id: int
    attributes: Item = attrs.field(eq=False, repr=False)


@attrs.frozen
class WriteOutcome:
    """What a write to the target did: the ids it stored, and why the others were not stored."""

    written: tuple[int, ...] = ()
    failed: Mapping[int, str] = attrs.field(factory=dict)


@attrs.frozen
class MigrationProgress:
    """The migration's own bookkeeping: how many users it wrote, the highest id it wrote, and
    where a whole run may resume (every user below that id was written, skipped or reported)."""

    migrated_users: int = 0
    last_migrated_user_id: int | None = None
    resume_from_user_id: int | None = None
