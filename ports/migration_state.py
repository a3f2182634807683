"""The migration's own bookkeeping, kept beside the target."""

from __future__ import annotations

import abc
from collections.abc import Callable, Collection, Hashable, Mapping
from contextlib import AbstractAsyncContextManager
from types import MappingProxyType
from typing import TypeVar

import attrs

from user_migration.domain.keys import UserId
from user_migration.domain.model import ChangeCursor, MigrationProgress
from user_migration.ports.segment_leases import LeaseChange

# A failing user's reason codes (`missing_email`, `write_failed`...), by user id.
FailingUsers = Mapping[UserId, Collection[str]]
NO_FAILURES: FailingUsers = MappingProxyType({})
# The code of a failing user an earlier version noted without its reasons.
UNRECORDED_REASON = "reason_not_recorded"

Part = TypeVar("Part", bound=Hashable)


def _ids(user_ids: Collection[UserId]) -> frozenset[UserId]:
    return frozenset(user_ids)


def _codes(failed: FailingUsers) -> dict[UserId, tuple[str, ...]]:
    return {user_id: tuple(codes) for user_id, codes in failed.items()}


@attrs.frozen
class Settlement:
    """What a hold settles, in one step: see `UsersHold.settle`."""

    landed: frozenset[UserId] = attrs.field(default=frozenset(), converter=_ids)
    unsure: frozenset[UserId] = attrs.field(default=frozenset(), converter=_ids)
    removed: frozenset[UserId] = attrs.field(default=frozenset(), converter=_ids)
    unsure_removed: frozenset[UserId] = attrs.field(default=frozenset(), converter=_ids)
    failed: dict[UserId, tuple[str, ...]] = attrs.field(factory=dict, converter=_codes)
    succeeded: frozenset[UserId] = attrs.field(default=frozenset(), converter=_ids)

    def only(self, keep: Callable[[UserId], bool]) -> Settlement:
        """The part of this settlement about the ids `keep` accepts."""
        return self.split(keep, (True, False))[True]

    def split(self, part_of: Callable[[UserId], Part], parts: Collection[Part]) -> dict[Part, Settlement]:
        """This settlement cut into one per part (every part of `parts` gets one, empty or not).
        An id of no part is an error: dropping it would lose its count."""

        def part(user_id: UserId) -> Part:
            found = part_of(user_id)
            if found not in parts:
                raise ValueError(f"user {user_id} is in {found!r}, which this settlement is not split into")
            return found

        sets = (self.landed, self.unsure, self.removed, self.unsure_removed, self.succeeded)
        grouped: dict[Part, list[list[UserId]]] = {each: [[] for _ in sets] for each in parts}
        for field, ids in enumerate(sets):
            for user_id in ids:
                grouped[part(user_id)][field].append(user_id)
        failing: dict[Part, dict[UserId, tuple[str, ...]]] = {each: {} for each in parts}
        for user_id, codes in self.failed.items():
            failing[part(user_id)][user_id] = codes
        return {
            each: Settlement(
                landed=landed,
                unsure=unsure,
                removed=removed,
                unsure_removed=unsure_removed,
                failed=failing[each],
                succeeded=succeeded,
            )
            for each, (landed, unsure, removed, unsure_removed, succeeded) in grouped.items()
        }


class UsersHold(abc.ABC):
    """Exclusive hold on a range of user ids, and the exact accounting of what is written in it.

    Writing goes: `intend` (the ids about to be written are recorded first), the write itself,
    then `settle` (the ids that landed are counted, the intent cleared, in one idempotent step).
    A holder that dies between the two leaves its intent behind; the next holder of those ids
    inherits them (`inherited`), looks which of them landed, and settles them with its own. Deleting
    goes the same way: `intend_removal`, the deletes, then `settle(removed=...)`; what a dead holder
    meant to delete is inherited as `inherited_removals`, for the next holder to look which are gone.

    A hold inherits only ids of its own range, the others stay left for the holder of theirs: an
    id outside it may be held, written and counted by another holder meanwhile, and passed on
    again (this hold abandoned, or expired) it would be counted a second time by whoever next
    inherited it and found it stored.
    """

    inherited: frozenset[UserId]
    inherited_removals: frozenset[UserId] = frozenset()
    # Whether no user of the range was ever written under a hold of this state (nor is inherited):
    # every hold ever taken on those users' items was this process's own, each on other users.
    # False wherever the state cannot tell; the offline mode then checks which users are stored.
    untouched: bool = False
    # The users an untouched hold recorded as about to be written in the take itself (those the
    # holder asked for: `hold_users`' `intend_if_untouched`); none otherwise.
    intended_by_take: frozenset[UserId] = frozenset()

    @abc.abstractmethod
    async def intend(self, user_ids: Collection[UserId]) -> None:
        """Record that these users are about to be written."""

    @abc.abstractmethod
    async def intend_removal(self, user_ids: Collection[UserId]) -> None:
        """Record that the items of these users are about to be deleted."""

    async def settle(
        self,
        landed: Collection[UserId],
        unsure: Collection[UserId] = (),
        removed: Collection[UserId] = (),
        unsure_removed: Collection[UserId] = (),
        failed: FailingUsers = NO_FAILURES,
        succeeded: Collection[UserId] = (),
    ) -> None:
        """Count `landed` (written now, or inherited and found stored) and uncount `removed`
        (deleted now, or inherited and found gone) exactly once, clear the intent, and leave
        `unsure` writes and `unsure_removed` deletes (that failed and may or may not have
        happened) for a later holder to look at. `failed` users (their attempt failed validation
        or writing) are noted as failing with their reason codes (replacing those of an earlier
        attempt), `succeeded` ones no longer."""
        await self.apply(Settlement(landed, unsure, removed, unsure_removed, failed, succeeded))

    @abc.abstractmethod
    async def apply(self, settlement: Settlement) -> None:
        """Settle, in one idempotent step: see `settle`."""

    async def apply_with_lease(self, settlement: Settlement, change: LeaseChange) -> None:
        """Settle, and make `change` to the lease of this hold's segment in the same write where the
        state can (see `LeaseChange.made`); the settle is made whatever becomes of the change. This
        state cannot: it settles alone and leaves `change.made` None."""
        await self.apply(settlement)


class MigrationState(abc.ABC):
    """Counters, the highest migrated id and the resume checkpoint, read in one go; and holds on
    id ranges, so that processes sharing the same tables never write or count a user twice."""

    @abc.abstractmethod
    def hold_users(
        self, lowest: UserId, highest: UserId, intend_if_untouched: Collection[UserId] = ()
    ) -> AbstractAsyncContextManager[UsersHold]:
        """Hold ids lowest..highest against every other holder (other processes included) until
        exit; waits while another holder has any of them. Raises `DependencyUnavailable` when the
        hold cannot be had in reasonable time. Leaving without `settle` (an error) hands what was
        intended to the next holder. Where the hold is `untouched`, the take itself also intends
        `intend_if_untouched` (which the caller must know not stored then) and says so in `intended_by_take`."""

    @abc.abstractmethod
    async def record_checkpoint(self, resume_from_user_id: UserId) -> None:
        """Remember where a whole run may resume: every user below this id was handled."""

    @abc.abstractmethod
    async def record_change_cursor(self, cursor: ChangeCursor, applied: int = 0) -> None:
        """Remember up to where the source's changes were carried over (`sync` goes on from here),
        and add `applied` (items written or deleted to get there) to the changes applied so far."""

    @abc.abstractmethod
    async def record_sync_pass(self, sync_pass: int, cursor: ChangeCursor, applied: int) -> bool:
        """`record_change_cursor` for a finished pass of `sync --workers`, once per pass: nothing
        is done (False) when pass `sync_pass` or a later one was recorded already (by another of
        its workers, or by this one before a crash)."""

    @abc.abstractmethod
    async def read_progress(self) -> MigrationProgress:
        """The counters as they stand."""

    async def read_change_cursor(self) -> ChangeCursor | None:
        """Where `sync` goes on from (None before the first backfill marked it); a store that
        keeps it apart from the counters answers without reading them."""
        return (await self.read_progress()).change_cursor

    @abc.abstractmethod
    async def failing_users(self) -> dict[UserId, tuple[str, ...]]:
        """Every user whose latest attempt failed, with its reason codes (sorted; `UNRECORDED_REASON`
        for one noted by an earlier version, which kept no codes)."""

    @abc.abstractmethod
    async def check_ready(self) -> None:
        """Raise a `DependencyUnavailable` error naming what is missing when this cannot be used now."""
