"""The records the migration talks about: a source user, a DynamoDB item, outcomes of writes."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeAlias

import attrs

from user_migration.domain.convert.versions import version_of
from user_migration.domain.keys import UserId

# A JSON document as the migration holds it: numbers stay exact (int or Decimal, never float
# on the way in from the source), objects are dicts with string keys.
JsonValue: TypeAlias = bool | int | float | Decimal | str | list["JsonValue"] | dict[str, "JsonValue"] | None


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

    id: UserId
    username: str | None = None
    email: str | None = None
    display_name: str | None = None
    status: str | None = "active"
    created_at: datetime | UnreadableValue | None = None
    updated_at: datetime | UnreadableValue | None = None
    profile: JsonValue | UnreadableValue = None


@attrs.frozen
class Json:
    """A value of a json/jsonb column, parsed with exact numbers: it converts as a JSON document
    (a JSON `null` is kept as a null value, where an SQL NULL omits the attribute)."""

    value: JsonValue


# One source value as the source adapter hands it over, by PostgreSQL type: text forms as str,
# integers and numeric as int/Decimal, real/double as float, boolean, bytea as bytes,
# timestamps as datetime, json as `Json`, arrays as lists; None is SQL NULL.
SourceValue: TypeAlias = Any


@attrs.frozen
class SourceUser:
    """One source row through the mapping: its key, and its values by target attribute name
    (mapped attributes first, in the mapping's order, then the carried columns)."""

    id: UserId
    values: Mapping[str, SourceValue] = attrs.field(repr=False)
    # The row's version (`[source] version`) as a number (`domain.convert.versions`); None when the
    # mapping names no version or the row has none.
    version: int | None = None


# A value ready for any target: str, bool, int or Decimal (exact numbers), bytes, None (a null
# inside a list or map), list, dict with str keys. Valid, and sized by the target's limits.
PreparedValue: TypeAlias = Any


@attrs.frozen
class PreparedUser:
    """A valid user, its attributes ready to be written (target-neutral), and its size by the
    target's item-size rules (the key attribute included)."""

    user_id: UserId
    attributes: dict[str, PreparedValue] = attrs.field(eq=False, repr=False)
    size: int = attrs.field(default=0, eq=False)
    # The source row's version (see `SourceUser.version`), stored beside the attributes.
    version: int | None = attrs.field(default=None, eq=False)


def documented_values(user: User) -> dict[str, SourceValue]:
    """A `User` of the documented layout as a source row's values."""
    profile = user.profile
    return {
        "username": user.username,
        "email": user.email,
        "display_name": user.display_name,
        "created_at": user.created_at,
        "updated_at": user.updated_at,
        "status": user.status,
        "profile": profile if isinstance(profile, UnreadableValue) or profile is None else Json(profile),
    }


def as_source_user(user: User | SourceUser) -> SourceUser:
    """Either kind of user as a `SourceUser`."""
    if isinstance(user, SourceUser):
        return user
    updated = user.updated_at
    return SourceUser(user.id, documented_values(user), version_of(updated))


@attrs.frozen
class WriteOutcome:
    """What a write to the target did: the ids it stored, and why the others were not stored."""

    written: tuple[UserId, ...] = ()
    failed: Mapping[UserId, str] = attrs.field(factory=dict)


class WriteRule(enum.Enum):
    """When the migration may write a user's item (the rule that never overwrites newer data)."""

    # Only where no item exists: the backfill (batch, single user, `migrate --all`, retries).
    ABSENT = "absent"
    # Also over the migration's item of an older version of the row: `sync`.
    OLDER = "older"


@attrs.frozen
class ConditionalWriteOutcome:
    """What a conditional write did: the ids it stored (`created`: those that had no item before),
    the ids whose stored item the rule kept (present, newer, or someone else's), and failures."""

    written: tuple[UserId, ...] = ()
    created: frozenset[UserId] = frozenset()
    refused: frozenset[UserId] = frozenset()
    failed: Mapping[UserId, str] = attrs.field(factory=dict)

    def joined(self, other: ConditionalWriteOutcome) -> ConditionalWriteOutcome:
        """This outcome and `other`'s, of other users, as one."""
        return ConditionalWriteOutcome(
            self.written + other.written,
            self.created | other.created,
            self.refused | other.refused,
            {**self.failed, **other.failed},
        )


@attrs.frozen
class DeleteOutcome:
    """What deleting items did: the ids deleted, the items kept (with the reason: someone else's,
    changed since written) and failures."""

    deleted: tuple[UserId, ...] = ()
    kept: Mapping[UserId, str] = attrs.field(factory=dict)
    failed: Mapping[UserId, str] = attrs.field(factory=dict)


@attrs.frozen
class RewriteOutcome:
    """What a rewrite did: items replaced, items already equal, items kept (someone else's, or
    changed since the migration wrote them) and failures, each with its reason."""

    rewritten: tuple[UserId, ...] = ()
    unchanged: tuple[UserId, ...] = ()
    kept: Mapping[UserId, str] = attrs.field(factory=dict)
    failed: Mapping[UserId, str] = attrs.field(factory=dict)

    def joined(self, other: RewriteOutcome) -> RewriteOutcome:
        """This outcome and `other`'s, of other users, as one."""
        return RewriteOutcome(
            self.rewritten + other.rewritten,
            self.unchanged + other.unchanged,
            {**self.kept, **other.kept},
            {**self.failed, **other.failed},
        )


@attrs.frozen
class StoredUser:
    """What the target holds of a user, in the migration's words: the source version the item was
    written from (None: written without one, or by someone else) and whether the migration wrote it
    (an application's item, or one it rewrote whole, is not the migration's)."""

    version: int | None
    by_migration: bool


@attrs.frozen
class ChangeCursor:
    """A position in the source's history of changes, as the source tells it (opaque to the
    domain), and when it was taken: every change committed before `taken_at` is behind it."""

    position: str
    taken_at: datetime


@attrs.frozen
class MigrationProgress:
    """The migration's own bookkeeping: how many users it wrote, the highest id it wrote, and
    where a whole run may resume (every user below that id was written, skipped or reported)."""

    migrated_users: int = 0
    last_migrated_user_id: UserId | None = None
    resume_from_user_id: UserId | None = None
    # Up to where the source's changes were carried over: set when a whole run starts, moved by `sync`.
    change_cursor: ChangeCursor | None = None
    # Items written or deleted by the `sync` passes that caught up, in all.
    changes_applied: int = 0
    # Users whose latest attempt failed (validation or writing), kept per segment of the id space.
    failed_users: int = 0
