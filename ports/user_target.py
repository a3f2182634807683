"""Where users go (DynamoDB in production)."""

from __future__ import annotations

import abc
from collections.abc import Collection, Sequence

from domain.model import Item, PreparedUser, RewriteOutcome, WriteOutcome


class UserTarget(abc.ABC):
    """Stores prepared users and says which users it already holds.

    Every item the target writes carries a mark of the migration (in DynamoDB a digest of its
    content), so that a later `rewrite_users` can tell its own, unchanged items from items
    someone else wrote or changed.
    """

    @abc.abstractmethod
    async def existing_user_ids(self, user_ids: Collection[int]) -> set[int]:
        """The subset of `user_ids` already stored (duplicates in the input are allowed)."""

    @abc.abstractmethod
    async def write_users(self, users: Sequence[PreparedUser]) -> WriteOutcome:
        """Store the users; every user ends up either in `written` or in `failed` with a reason."""

    @abc.abstractmethod
    async def rewrite_users(self, users: Sequence[PreparedUser]) -> RewriteOutcome:
        """Replace the stored items of these users, each only if the migration wrote it and
        nobody changed it since (checked again by the write itself); the others are kept, with
        the reason. An item whose content would not change is left as it is (`unchanged`)."""

    @abc.abstractmethod
    async def read_item(self, user_id: int) -> Item | None:
        """The stored item of one user, or None."""

    @abc.abstractmethod
    async def count_users(self) -> int:
        """Exact number of stored users. May read the whole table: for checks, not for statistics."""

    @abc.abstractmethod
    async def check_ready(self) -> None:
        """Raise a `DependencyUnavailable` error naming what is missing when this cannot be used now."""
