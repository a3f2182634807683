"""Where users go (DynamoDB in production)."""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Collection, Sequence
from typing import Any

from user_migration.domain.keys import UserId
from user_migration.domain.model import (
    ConditionalWriteOutcome,
    DeleteOutcome,
    PreparedUser,
    RewriteOutcome,
    StoredUser,
    WriteOutcome,
    WriteRule,
)
from user_migration.domain.parallel.segments import ScanPart
from user_migration.domain.verify.differences import StoredComparison


class UserTarget(abc.ABC):
    """Stores prepared users and says which users it already holds.

    Every item the target writes carries a mark of the migration (in DynamoDB a digest of its
    content), so that a later `rewrite_users` can tell its own, unchanged items from items
    someone else wrote or changed.
    """

    @abc.abstractmethod
    async def existing_user_ids(self, user_ids: Collection[UserId]) -> set[UserId]:
        """The subset of `user_ids` already stored (duplicates in the input are allowed)."""

    async def holds_no_items(self) -> bool:
        """Whether the target holds no item at all now (a consistent look at one item at most);
        False where it cannot tell so cheaply."""
        return False

    @abc.abstractmethod
    async def write_users(self, users: Sequence[PreparedUser]) -> WriteOutcome:
        """Store the users whatever is stored (the offline mode: nobody else may write the table, and
        the caller found them absent, so each costs its own item's write units); every user ends up
        either in `written` or in `failed` with a reason."""

    @abc.abstractmethod
    async def write_users_if(self, users: Sequence[PreparedUser], rule: WriteRule) -> ConditionalWriteOutcome:
        """Store each user only where `rule` allows it, decided by the target atomically with the
        write; every user ends up in `written`, `refused` or `failed`."""

    @abc.abstractmethod
    async def delete_unchanged(self, user_ids: Collection[UserId]) -> DeleteOutcome:
        """Delete the items of these users that the migration wrote and nobody changed since
        (checked again by the delete itself); keep the others, with the reason."""

    @abc.abstractmethod
    async def read_stored(self, user_ids: Collection[UserId]) -> dict[UserId, StoredUser]:
        """What is stored of these users (consistent reads), by id: the version each item was written
        from and whether the migration wrote it; absent ones are left out."""

    @abc.abstractmethod
    async def compare_with_stored(self, users: Sequence[PreparedUser]) -> dict[UserId, StoredComparison]:
        """How the stored item of each user compares with what the user would be written as
        (consistent reads), by id: matching, missing, different (the differing attributes named,
        the migration's bookkeeping left out) or newer in the target than the row."""

    @abc.abstractmethod
    def scan_user_ids(
        self, lowest: UserId, highest: UserId, page_size: int = 1000, part: ScanPart | None = None
    ) -> AsyncIterator[list[UserId]]:
        """Every stored user id in lowest..highest, a page at a time (in no particular order);
        memory stays flat at any table size. With `part`, only the ids of that part of the scan
        (the parts of one total split the stored ids between them, each id in exactly one)."""

    @abc.abstractmethod
    async def scan_user_ids_of_small_table(
        self, lowest: UserId, highest: UserId, most_items: int
    ) -> list[UserId] | None:
        """Every stored user id in lowest..highest, found by looking at no more than `most_items`
        stored items (any id counts: DynamoDB applies the range after reading); None when the table
        holds more than that, so the answer would cost a scan of a large table."""

    @abc.abstractmethod
    async def rewrite_users(self, users: Sequence[PreparedUser]) -> RewriteOutcome:
        """Replace the stored items of these users, each only if the migration wrote it and
        nobody changed it since (checked again by the write itself); the others are kept, with
        the reason. An item whose content would not change is left as it is (`unchanged`)."""

    @abc.abstractmethod
    async def read_item(self, user_id: UserId) -> dict[str, Any] | None:
        """The stored item of one user as the target holds it (DynamoDB's attribute values), or None:
        for inspection and tests; the migration itself reads `read_stored`."""

    @abc.abstractmethod
    async def count_users(self) -> int:
        """Exact number of stored users. May read the whole table: for checks, not for statistics."""

    @abc.abstractmethod
    async def check_ready(self) -> None:
        """Raise a `DependencyUnavailable` error naming what is missing when this cannot be used now."""
