"""Where users come from (PostgreSQL in production)."""

from __future__ import annotations

import abc
from collections.abc import Collection, Sequence

from user_migration.domain.convert.mapping import SourcePlan
from user_migration.domain.keys import KeyKind, UserId
from user_migration.domain.model import SourceUser


class UserSource(abc.ABC):
    """Reads users by id through a mapping; never loads the whole table.

    Every read returns `SourceUser`s whose values are keyed by target attribute name: the
    mapping's attributes in its order, then the carried columns in the table's order.
    """

    @property
    def key_kind(self) -> KeyKind:
        """The kind of the source's key (its ids are ints for an integer key, strs otherwise)."""
        return KeyKind.INTEGER

    @abc.abstractmethod
    async def read_page(self, start_user_id: UserId, limit: int, highest: UserId | None = None) -> Sequence[SourceUser]:
        """Up to `limit` users with `start_user_id <= id <= highest` (no upper bound for None), in ascending
        id order under the key's order (keyset page)."""

    @abc.abstractmethod
    async def segment_boundaries(self, segments: int) -> list[UserId]:
        """Ids that split the source's users into about `segments` equal parts, ascending (from
        all ids or from a sample of them: an even split matters, exactness does not)."""

    @abc.abstractmethod
    async def read_user(self, user_id: UserId) -> SourceUser | None:
        """The user with this id, or None when there is none."""

    @abc.abstractmethod
    async def read_users(self, user_ids: Collection[UserId]) -> Sequence[SourceUser]:
        """The users with these ids that exist, in ascending id order."""

    @abc.abstractmethod
    async def existing_user_ids(self, user_ids: Collection[UserId]) -> set[UserId]:
        """The subset of `user_ids` the source holds."""

    @abc.abstractmethod
    async def change_cursor(self) -> str:
        """The source's position in its history of changes now (opaque to the caller): every
        change committed before this call is behind it. Raises a `SetupError` naming why when
        the source cannot tell its changes (for PostgreSQL: a view, not a table)."""

    @abc.abstractmethod
    async def read_changed_page(
        self, since: str | None, start_user_id: UserId, limit: int, highest: UserId | None = None
    ) -> Sequence[SourceUser]:
        """Up to `limit` users with `start_user_id <= id <= highest`, in ascending id order, among the rows
        inserted or changed at or after the cursor `since` (every row when None, or when the
        cursor is too old to tell). A row may come again in a later call (harmless: its version
        decides); none changed after `since` is ever left out. Deleted rows are not told."""

    @abc.abstractmethod
    async def count_users(self, start_user_id: UserId | None = None) -> int:
        """How many users the source holds with `id >= start_user_id` (every user for None)."""

    @abc.abstractmethod
    async def estimate_user_count(self) -> int:
        """About how many users the source holds (what `count_users()` would say), answered in
        about constant time whatever its size: from the source's own statistics where it keeps
        them (for PostgreSQL, the planner's), an exact count only where that is as cheap."""

    @abc.abstractmethod
    async def check_ready(self) -> None:
        """Raise a `DependencyUnavailable` error when the source cannot be reached now, and a
        `MappingError` naming every problem when the mapping does not fit the source."""

    @abc.abstractmethod
    async def describe(self) -> SourcePlan:
        """Every source column with the attribute and type it becomes (checks the mapping as
        `check_ready` does)."""
