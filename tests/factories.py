"""Users for tests: one valid user, and variations of it."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import attrs

from user_migration.domain.model import User

CREATED = datetime(2021, 3, 4, 5, 6, 7, 890123, tzinfo=UTC)
UPDATED = datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=UTC)


def valid_user(user_id: int = 1, **changes: Any) -> User:
    """A user that passes every rule; `changes` override single fields."""
    user = User(
        id=user_id,
        username=f"user_{user_id}",
        email=f"user{user_id}@example.com",
        display_name=f"User {user_id}",
        status="active",
        created_at=CREATED,
        updated_at=UPDATED,
        profile={"plan": "pro", "score": Decimal("12.50"), "tags": ["a", "b"], "nested": {"x": 1}},
    )
    return attrs.evolve(user, **changes)


def to_item(user: User, migrated_at: datetime, key_attribute: str = "user_id") -> dict[str, Any]:
    """The DynamoDB item the migration writes for a valid user of the documented layout."""
    from user_migration.adapters.dynamodb.codec import encode_user
    from user_migration.domain.convert.rules import prepare_user
    from user_migration.domain.model import PreparedUser

    prepared = prepare_user(user, migrated_at)
    assert isinstance(prepared, PreparedUser), prepared
    return encode_user(prepared, key_attribute)


def from_item(item: dict[str, Any]) -> User:
    """The documented-layout user an item was written for (`migrated_at` and the digest dropped)."""
    from user_migration.adapters.dynamodb.codec import decode_item
    from user_migration.domain.convert.timestamps import parse_timestamp

    values = decode_item(item)
    updated = values.get("updated_at")
    return User(
        id=int(values["user_id"]),
        username=values["username"],
        email=values["email"],
        display_name=values.get("display_name"),
        status=values["status"],
        created_at=parse_timestamp(values["created_at"]),
        updated_at=parse_timestamp(updated) if updated is not None else None,
        profile=values.get("profile"),
    )


def prepared_user(user_id: int = 1, migrated_at: datetime = CREATED, **changes: Any) -> Any:
    """`valid_user(user_id, **changes)` prepared for writing (a `PreparedUser`)."""
    from user_migration.domain.convert.rules import prepare_user
    from user_migration.domain.model import PreparedUser

    prepared = prepare_user(valid_user(user_id, **changes), migrated_at)
    assert isinstance(prepared, PreparedUser), prepared
    return prepared
