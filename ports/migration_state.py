"""The migration's own bookkeeping, kept beside the target."""

from __future__ import annotations

import abc
from collections.abc import Collection, Mapping
from contextlib import AbstractAsyncContextManager
from types import MappingProxyType

from domain.model import ChangeCursor, MigrationProgress

# A failing user's reason codes (`missing_email`, `write_failed`...), by user id.
FailingUsers = Mapping[int, Collection[str]]
NO_FAILURES: FailingUsers = MappingProxyType({})
# The code of a failing user an earlier version noted without its reasons.
UNRECORDED_REASON = "reason_not_recorded"


class UsersHold(abc.ABC):
    """Exclusive hold on a range of user ids, and the exact accounting of what is written in it.

    Writing goes: `intend` (the ids about to be written are recorded first), the write itself,
    then `settle` (the ids that landed are counted, the intent cleared, in one idempotent step).
    A holder that dies between the two leaves its intent behind; the next holder inherits those
    ids (`inherited`), looks which of them landed, and settles them with its own. Deleting goes
    the same way: `intend_removal`, the deletes, then `settle(removed=...)`; what a dead holder
    meant to delete is inherited as `inherited_removals`, for the next holder to look which are gone.
    """

    inherited: frozenset[int]
    inherited_removals: frozenset[int] = frozenset()

    @abc.abstractmethod
    async def intend(self, user_ids: Collection[int]) -> None:
        """Record that these users are about to be written."""

    @abc.abstractmethod
    async def intend_removal(self, user_ids: Collection[int]) -> None:
        """Record that the items of these users are about to be deleted."""

    @abc.abstractmethod
    async def settle(
        self,
        landed: Collection[int],
        unsure: Collection[int] = (),
        removed: Collection[int] = (),
        unsure_removed: Collection[int] = (),
        failed: FailingUsers = NO_FAILURES,
        succeeded: Collection[int] = (),
    ) -> None:
        """Count `landed` (written now, or inherited and found stored) and uncount `removed`
        (deleted now, or inherited and found gone) exactly once, clear the intent, and leave
        `unsure` writes and `unsure_removed` deletes (that failed and may or may not have
        happened) for a later holder to look at. `failed` users (their attempt failed validation
        or writing) are noted as failing with their reason codes (replacing those of an earlier
        attempt), `succeeded` ones no longer."""


class MigrationState(abc.ABC):
    """Counters, the highest migrated id and the resume checkpoint, read in one go; and holds on
    id ranges, so that processes sharing the same tables never write or count a user twice."""

    @abc.abstractmethod
    def hold_users(self, lowest: int, highest: int) -> AbstractAsyncContextManager[UsersHold]:
        """Hold ids lowest..highest against every other holder (other processes included) until
        exit; waits while another holder has any of them. Raises `DependencyUnavailable` when the
        hold cannot be had in reasonable time. Leaving without `settle` (an error) hands what was
        intended to the next holder."""

    @abc.abstractmethod
    async def record_checkpoint(self, resume_from_user_id: int) -> None:
        """Remember where a whole run may resume: every user below this id was handled."""

    @abc.abstractmethod
    async def record_change_cursor(self, cursor: ChangeCursor, applied: int = 0) -> None:
        """Remember up to where the source's changes were carried over (`sync` goes on from here),
        and add `applied` (items written or deleted to get there) to the changes applied so far."""

    @abc.abstractmethod
    async def read_progress(self) -> MigrationProgress:
        """The counters as they stand."""

    async def read_change_cursor(self) -> ChangeCursor | None:
        """Where `sync` goes on from (None before the first backfill marked it); a store that
        keeps it apart from the counters answers without reading them."""
        return (await self.read_progress()).change_cursor

    @abc.abstractmethod
    async def failing_users(self) -> dict[int, tuple[str, ...]]:
        """Every user whose latest attempt failed, with its reason codes (sorted; `UNRECORDED_REASON`
        for one noted by an earlier version, which kept no codes)."""

    @abc.abstractmethod
    async def check_ready(self) -> None:
        """Raise a `DependencyUnavailable` error naming what is missing when this cannot be used now."""
