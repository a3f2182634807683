"""The migration's own bookkeeping, kept beside the target."""

from __future__ import annotations

import abc
from collections.abc import Collection
from contextlib import AbstractAsyncContextManager

from domain.model import MigrationProgress


class MigrationState(abc.ABC):
    """Counters and the highest migrated id, updated atomically and read in one go; and holds on
    users, so that processes sharing the same tables never write or count a user twice."""

    @abc.abstractmethod
    def hold_users(self, user_ids: Collection[int]) -> AbstractAsyncContextManager[None]:
        """Hold these users against every other holder (other processes included) until exit;
        waits while another holder has any of them. Raises `DependencyUnavailable` when the
        hold cannot be had in reasonable time."""

    @abc.abstractmethod
    async def record_written(self, count: int, highest_user_id: int) -> None:
        """Add `count` newly written users and raise the highest migrated id to at least this one."""

    @abc.abstractmethod
    async def record_checkpoint(self, resume_from_user_id: int) -> None:
        """Remember where a whole run may resume: every user below this id was handled."""

    @abc.abstractmethod
    async def read_progress(self) -> MigrationProgress:
        """The counters as they stand."""

    @abc.abstractmethod
    async def check_ready(self) -> None:
        """Raise a `DependencyUnavailable` error naming what is missing when this cannot be used now."""
