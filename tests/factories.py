"""Users for tests: one valid user, and variations of it."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import attrs

from domain.model import User

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
