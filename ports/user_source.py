"""Where users come from (PostgreSQL in production)."""

from __future__ import annotations

import abc
from collections.abc import Collection, Sequence

from domain.model import User


class UserSource(abc.ABC):
    """Reads users by id; never loads the whole table."""

    @abc.abstractmethod
    async def read_page(self, start_user_id: int, limit: int) -> Sequence[User]:
        """Up to `limit` users with `id >= start_user_id`, in ascending id order (keyset page)."""

    @abc.abstractmethod
    async def read_user(self, user_id: int) -> User | None:
        """The user with this id, or None when there is none."""

    @abc.abstractmethod
    async def read_users(self, user_ids: Collection[int]) -> Sequence[User]:
        """The users with these ids that exist, in ascending id order."""

    @abc.abstractmethod
    async def count_users(self, start_user_id: int = 0) -> int:
        """How many users the source holds with `id >= start_user_id`."""

    @abc.abstractmethod
    async def check_ready(self) -> None:
        """Raise a `DependencyUnavailable` error naming what is missing when this cannot be used now."""
