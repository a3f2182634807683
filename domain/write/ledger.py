"""The write ledger: the one unit of work every write of users goes through, so that the items and
the counters agree whoever writes, whenever a writer dies.

A step holds the range of its users (in-process range locks first, they are cheap, then the hold
other processes respect too), takes in what an earlier holder that died before settling left,
notes which users it intends to write before it sends anything, asks its fence (a worker whose
lease ran out stops there), writes under the target's condition, looks at what landed, and
settles the counters and the failing users once. The backfill's pages (live-safe or offline), the
batch endpoint, a single user, a retry, sync's and the stream's changes, repairs and deletes are
each one of the ledger's writes:

    async with ledger.hold(user_ids) as held:
        written, stored = await held.write_new(users, attempt, fence)

Once writing starts the counters must follow the items: each write runs to its settle even when its
caller goes away (a cancelled request, a shutdown), through `WritesInFlight`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import attrs

from user_migration.domain.convert.rules import Reason, reason_code
from user_migration.domain.keys import UserId
from user_migration.domain.model import (
    ConditionalWriteOutcome,
    DeleteOutcome,
    PreparedUser,
    WriteOutcome,
    WriteRule,
)
from user_migration.domain.write.range_locks import UserRangeLocks
from user_migration.domain.write.writes_in_flight import WritesInFlight
from user_migration.ports.migration_state import MigrationState, Settlement, UsersHold
from user_migration.ports.segment_leases import LeaseChange
from user_migration.ports.user_target import UserTarget

WRITE_FAILED = "write_failed"

Fence = Callable[[], None]  # raises when the caller may no longer write (e.g. its lease was lost)
# A step's settle, given the settle to make (`settle(change)`: with a change of the segment's lease
# to make in the same write where the state can, or None), which it must make once whatever else
# it does: the migration worker's last page of a segment folds the segment's done mark into it.
Settle = Callable[[LeaseChange | None], Awaitable[None]]
Closing = Callable[[Settle], Awaitable[None]]


def no_fence() -> None:
    return None


def write_failures(failed: Mapping[UserId, str]) -> dict[UserId, tuple[str, ...]]:
    """Users whose write failed, each with the reason as a report shows it."""
    return {user_id: (Reason(WRITE_FAILED, f"Write failed: {reason}"),) for user_id, reason in failed.items()}


def failing_codes(failures: Mapping[UserId, Collection[str]]) -> dict[UserId, tuple[str, ...]]:
    """Failed users with the distinct codes of their reasons, sorted (as `settle` notes them)."""
    return {user_id: tuple(sorted({reason_code(r) for r in reasons})) for user_id, reasons in failures.items()}


@attrs.frozen
class Attempt:
    """The users of one step: those prepared for writing, and those that failed validation (with
    their reasons)."""

    user_ids: Sequence[UserId]
    invalid: Mapping[UserId, Collection[str]]

    def failing(self, write_failed: Collection[UserId]) -> dict[str, Any]:
        """`settle`'s `failed` (with reason codes) and `succeeded` once these writes failed."""
        failed = {**failing_codes(self.invalid), **dict.fromkeys(write_failed, (WRITE_FAILED,))}
        return {"failed": failed, "succeeded": set(self.user_ids) - set(failed)}


@attrs.frozen
class _Inherited:
    """What an earlier holder that died before settling left in this hold's range (a hold inherits
    nothing else: see `UsersHold.inherited`): the deletes that happened (looked at when the hold
    is taken, before this holder writes any of those users again); and its writes, looked at
    before settling."""

    removed: set[UserId]
    inside: frozenset[UserId] = frozenset()


class WriteLedger:
    """Holds ranges of users for one step of writes each; see the module's docstring."""

    def __init__(
        self,
        target: UserTarget,
        state: MigrationState,
        locks: UserRangeLocks | None = None,
        in_flight: WritesInFlight | None = None,
    ) -> None:
        self.target = target
        self._state = state
        self._locks = locks if locks is not None else UserRangeLocks()
        self.in_flight = in_flight if in_flight is not None else WritesInFlight()

    @asynccontextmanager
    async def hold(
        self, user_ids: Sequence[UserId], intend_if_untouched: Collection[UserId] = ()
    ) -> AsyncIterator[LedgerStep]:
        """The range of these ids held, with what an earlier holder left to settle; where the hold
        is untouched, `intend_if_untouched` (users the caller knows are not stored then, if so) is
        intended by the take itself."""
        lowest, highest = min(user_ids), max(user_ids)
        holding = self._state.hold_users(lowest, highest, intend_if_untouched)
        async with self._locks.hold(lowest, highest), holding as hold:
            removals = hold.inherited_removals
            removed = set(removals) - await self.target.existing_user_ids(removals) if removals else set()
            before = _Inherited(removed, hold.inherited)
            yield LedgerStep(self.target, hold, before, self.in_flight)

    async def note_failing(self, failures: Mapping[UserId, Collection[str]]) -> None:
        """Note users that failed validation (a page with nobody to write)."""
        async with self.hold(list(failures)) as step:
            await step.settle_failing(failures)


async def landed(target: UserTarget, user_ids: Collection[UserId]) -> set[UserId]:
    """Of these users, those stored *and* written by the migration: an application may have written
    a user whose write here failed without an answer."""
    stored = await target.read_stored(user_ids) if user_ids else {}
    return {user_id for user_id, user in stored.items() if user.by_migration}


class LedgerStep:
    """One step's writes under its hold: each intended before it is sent, fenced, checked for
    what landed and settled once."""

    def __init__(self, target: UserTarget, hold: UsersHold, before: _Inherited, in_flight: WritesInFlight) -> None:
        self.target = target
        self._hold = hold
        self._before = before
        self._in_flight = in_flight

    @property
    def untouched(self) -> bool:
        """Whether no user of this step's range was ever written under a hold of the state, nor
        is left to settle (`UsersHold.untouched`)."""
        return self._hold.untouched and not self._hold.inherited and not self._hold.inherited_removals

    async def write_new(
        self, users: list[PreparedUser], attempt: Attempt, fence: Fence, closing: Closing | None = None
    ) -> tuple[WriteOutcome, set[UserId]]:
        """The live-safe write: each item only where none exists, decided by the target itself, so
        an item an application writes meanwhile is never replaced. Returns what was written and
        the users found stored already.

        Only the users not stored yet are intended: whoever inherits the intent of a holder that
        died counts those of them it then finds stored, which must not be users counted before."""
        return await self._in_flight.run(self._write_new(users, attempt, fence, closing))

    async def write_over(
        self, users: list[PreparedUser], attempt: Attempt, fence: Fence, closing: Closing | None = None
    ) -> WriteOutcome:
        """The offline write: unconditional, of users the caller found absent. Where no write
        failed, `closing` makes the settle (see `Closing`)."""
        return await self._in_flight.run(self._write_over(users, attempt, fence, closing))

    async def apply(
        self, users: list[PreparedUser], rule: WriteRule, attempt: Attempt
    ) -> tuple[ConditionalWriteOutcome, ConditionalWriteOutcome]:
        """Changed rows: users without an item created as the backfill does (and counted), stored
        items replaced where `rule` allows. What was created, and what was replaced or refused."""
        return await self._in_flight.run(self._apply(users, rule, attempt))

    async def remove(self, user_ids: list[UserId]) -> DeleteOutcome:
        """Delete the items of these users that the migration wrote and nobody changed since."""
        return await self._in_flight.run(self._remove(user_ids))

    async def settle_failing(self, failures: Mapping[UserId, Collection[str]]) -> None:
        """Settle a step with nobody to write: only failing users."""
        await self._in_flight.run(
            self._hold.settle(await self._landed_before(), removed=self._before.removed, failed=failing_codes(failures))
        )

    async def _write_new(
        self, users: list[PreparedUser], attempt: Attempt, fence: Fence, closing: Closing | None
    ) -> tuple[WriteOutcome, set[UserId]]:
        stored = await self.target.existing_user_ids([user.user_id for user in users])
        absent = [user for user in users if user.user_id not in stored]
        outcome = ConditionalWriteOutcome()
        if absent:
            await self._hold.intend([user.user_id for user in absent])
            fence()
            outcome = await self.target.write_users_if(absent, WriteRule.ABSENT)
        await self._settle(set(outcome.written), outcome.failed, attempt, closing=closing)
        return WriteOutcome(outcome.written, outcome.failed), stored | set(outcome.refused)

    async def _write_over(
        self, users: list[PreparedUser], attempt: Attempt, fence: Fence, closing: Closing | None
    ) -> WriteOutcome:
        written = WriteOutcome()
        if users:
            unintended = [user.user_id for user in users if user.user_id not in self._hold.intended_by_take]
            if unintended:
                await self._hold.intend(unintended)
            fence()
            written = await self.target.write_users(users)
        await self._settle(set(written.written), written.failed, attempt, closing=closing)
        return written

    async def _apply(
        self, users: list[PreparedUser], rule: WriteRule, attempt: Attempt
    ) -> tuple[ConditionalWriteOutcome, ConditionalWriteOutcome]:
        stored = await self.target.existing_user_ids([user.user_id for user in users])
        new = [user for user in users if user.user_id not in stored]
        created = ConditionalWriteOutcome()
        if new:
            # Only users without an item are intended: an inherited intent found stored is counted
            # as landed, and an item that existed was counted when it was first written.
            await self._hold.intend([user.user_id for user in new])
            created = await self.target.write_users_if(new, WriteRule.ABSENT)
        replacing = stored | set(created.refused)  # an application may have written some meanwhile
        replaced = ConditionalWriteOutcome()
        if replacing:
            older = [user for user in users if user.user_id in replacing]
            replaced = await self.target.write_users_if(older, rule)
        # An item deleted since the existence check is created by the second write: counted too.
        # Only the first write's failures are unsure: the second replaces items counted before.
        landed_now = set(created.written) | set(replaced.created)
        await self._settle(landed_now, {**created.failed, **replaced.failed}, attempt, unsure=created.failed.keys())
        return created, replaced

    async def _remove(self, user_ids: list[UserId]) -> DeleteOutcome:
        await self._hold.intend_removal(user_ids)
        outcome = await self.target.delete_unchanged(user_ids)
        removed = self._before.removed | set(outcome.deleted)
        # A user deleted from the source is no longer failing.
        await self._hold.settle(
            await self._landed_before(),
            removed=removed,
            unsure_removed=outcome.failed.keys(),
            succeeded=outcome.deleted,
        )
        return outcome

    async def _settle(
        self,
        landed_now: set[UserId],
        failed: Mapping[UserId, str],
        attempt: Attempt,
        unsure: Collection[UserId] | None = None,
        closing: Closing | None = None,
    ) -> None:
        landed = await self._landed_before() | landed_now
        # A user counted now is not left unsure: an inherited write may have landed while this
        # step's own write of the same user got no answer, and the next holder would count it again.
        unsure_now = set(failed.keys() if unsure is None else unsure) - landed
        settlement = Settlement(landed, unsure_now, self._before.removed, **attempt.failing(failed))
        if closing is None or failed:
            await self._hold.apply(settlement)
            return

        async def settle(change: LeaseChange | None) -> None:
            if change is None:
                await self._hold.apply(settlement)
            else:
                await self._hold.apply_with_lease(settlement, change)

        await closing(settle)

    async def _landed_before(self) -> set[UserId]:
        """Of the writes an earlier holder left unsettled in this hold's range, those that landed,
        looked at just before it settles, after its own writes, so that a late write of a holder
        that stalled (rather than died) is counted too, once; no other holder can write them
        meanwhile."""
        return await landed(self.target, self._before.inside)
