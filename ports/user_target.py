"""Where users go (DynamoDB in production)."""

from __future__ import annotations

import abc
from collections.abc import Collection, Sequence

from domain.model import Item, UserItem, WriteOutcome


class UserTarget(abc.ABC):
    """Stores converted user items and says which users it already holds."""

    @abc.abstractmethod
    async def existing_user_ids(self, user_ids: Collection[int]) -> set[int]:
        """The subset of `user_ids` already stored (duplicates in the input are allowed)."""

    @abc.abstractmethod
    async def write_users(self, items: Sequence[UserItem]) -> WriteOutcome:
        """Store the items; every item ends up either in `written` or in `failed` with a reason."""

    @abc.abstractmethod
    async def read_item(self, user_id: int) -> Item | None:
        """The stored item of one user, or None."""

    @abc.abstractmethod
    async def count_users(self) -> int:
        """Exact number of stored users. May read the whole table: for checks, not for statistics."""

    @abc.abstractmethod
    async def check_ready(self) -> None:
        """Raise a `DependencyUnavailable` error naming what is missing when this cannot be used now."""
