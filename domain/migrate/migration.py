"""The migration use cases, written against the ports only."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import attrs

from user_migration.domain.convert.mapping import MIGRATION_DIGEST
from user_migration.domain.convert.rules import Reason, Rejection, UserPreparer, reason_code
from user_migration.domain.convert.versions import stored_version
from user_migration.domain.errors import SetupError, UserNotFound
from user_migration.domain.keys import KeyKind, UserId
from user_migration.domain.migrate.report import BatchOutcome, ChangeOutcome, MigrationReport, MigrationStats
from user_migration.domain.migrate.request import BatchRequest, MigrationRequest, SingleUserRequest
from user_migration.domain.model import (
    ChangeCursor,
    ConditionalWriteOutcome,
    DeleteOutcome,
    PreparedUser,
    RewriteOutcome,
    SourceUser,
    WriteOutcome,
    WriteRule,
)
from user_migration.domain.observe.source_count import SourceCounter
from user_migration.domain.observe.statistics import Statistics
from user_migration.domain.write.range_locks import UserRangeLocks
from user_migration.domain.write.writes_in_flight import WritesInFlight
from user_migration.ports.migration_state import MigrationState, UsersHold
from user_migration.ports.user_source import UserSource
from user_migration.ports.user_target import UserTarget


def _utc_now() -> datetime:
    return datetime.now(UTC)


# Why a changed row's item was left as it is.
NEWER_IN_TARGET = "newer in DynamoDB than its row (written after the row was read): left as it is"
UNVERSIONED_ROW = "the row has no version: its item is only written where none exists"
GONE_WHILE_WRITING = "deleted from DynamoDB while it was being written: left to the next pass"


WRITE_FAILED = "write_failed"


def _write_failures(failed: Mapping[UserId, str]) -> dict[UserId, tuple[str, ...]]:
    """Users whose write failed, each with the reason as a report shows it."""
    return {user_id: (Reason(WRITE_FAILED, f"Write failed: {reason}"),) for user_id, reason in failed.items()}


@attrs.frozen
class _Inherited:
    """What an earlier holder that died before settling left: the deletes that happened (looked
    at when the hold is taken, before this holder writes any of those users again); its writes
    to users outside this hold's range that landed (looked at then too: once the hold is taken,
    another holder may write them); and its writes within the range, looked at before settling."""

    removed: set[UserId]
    landed_outside: set[UserId] = attrs.Factory(set)
    inside: frozenset[UserId] = frozenset()


Fence = Callable[[], None]  # raises when the caller may no longer write (e.g. its lease was lost)


def _no_fence() -> None:
    return None


@attrs.frozen
class _Attempt:
    """The users of one step: those prepared for writing, and those that failed validation (with
    their reasons)."""

    user_ids: Sequence[UserId]
    invalid: Mapping[UserId, Collection[str]]

    def failing(self, write_failed: Collection[UserId]) -> dict[str, Any]:
        """`settle`'s `failed` (with reason codes) and `succeeded` once these writes failed."""
        failed = {**failing_codes(self.invalid), **dict.fromkeys(write_failed, (WRITE_FAILED,))}
        return {"failed": failed, "succeeded": set(self.user_ids) - set(failed)}


def failing_codes(failures: Mapping[UserId, Collection[str]]) -> dict[UserId, tuple[str, ...]]:
    """Failed users with the distinct codes of their reasons, sorted (as `settle` notes them)."""
    return {user_id: tuple(sorted({reason_code(r) for r in reasons})) for user_id, reasons in failures.items()}


def next_start_after(page: Sequence[SourceUser], batch_size: int, kind: KeyKind = KeyKind.INTEGER) -> UserId | None:
    """Where the next keyset page starts: the least id after the last of a full page (under the key's
    order); None when the source is exhausted."""
    if len(page) < batch_size:
        return None
    return kind.after(page[-1].id)


class Migration:
    """Moves users from a source to a target: a batch, a single user, or the statistics.

    Existing items are never overwritten: each item is written only where none exists, a rule
    the target checks atomically with the write (so an application writing the same users
    meanwhile keeps its items); users already in the target are skipped, unless a rewrite is asked
    for, and then only items the migration wrote, nobody changed since and no newer than the row
    are replaced. `offline` trades that guarantee for speed (see `__init__`). Work on
    overlapping id ranges is serialized within the process, so no user is written twice and the
    counters stay exact. A dry run reads, validates and checks existence,
    and writes nothing. Users are validated and prepared by the mapping's rules (`preparer`).
    """

    def __init__(
        self,
        source: UserSource,
        target: UserTarget,
        state: MigrationState,
        locks: UserRangeLocks | None = None,
        clock: Callable[[], datetime] = _utc_now,
        in_flight: WritesInFlight | None = None,
        preparer: UserPreparer | None = None,
        offline: bool = False,
    ) -> None:
        # The offline mode: an existence check, then unconditional batch writes. Faster where
        # every request costs, but safe only while nothing else writes the table.
        self._offline = offline
        self._preparer = preparer if preparer is not None else UserPreparer()
        self._source = source
        self._target = target
        self._state = state
        self._locks = locks if locks is not None else UserRangeLocks()
        self._clock = clock
        self._in_flight = in_flight if in_flight is not None else WritesInFlight()

    @property
    def key_kind(self) -> KeyKind:
        """The kind of the source's key (how ids of a request are read)."""
        return self._source.key_kind

    async def run(self, request: MigrationRequest) -> MigrationReport:
        """Carry out a planned request of either kind."""
        if isinstance(request, SingleUserRequest):
            return await self.migrate_user(request)
        return await self.migrate_batch(request)

    async def migrate_batch(self, request: BatchRequest) -> MigrationReport:
        """Migrate one keyset page: `id >= start_user_id ORDER BY id LIMIT batch_size`. The
        first page of a backfill (from id 0) marks where `sync` starts, before it reads."""
        started = time.perf_counter()
        if request.start_user_id == self._source.key_kind.first and not request.dry_run:
            await self.mark_changes_from()
        users = await self._source.read_page(request.start_user_id, request.batch_size)
        outcome = await self.migrate_users(users, request.dry_run, request.rewrite)
        return self._report(
            outcome, next_start_after(users, request.batch_size, self._source.key_kind), request, started
        )

    async def migrate_user(self, request: SingleUserRequest) -> MigrationReport:
        """Migrate one user by id; raises `UserNotFound` when the source has no such user."""
        started = time.perf_counter()
        user = await self._source.read_user(request.user_id)
        if user is None:
            raise UserNotFound(request.user_id)
        outcome = await self.migrate_users([user], request.dry_run, request.rewrite)
        return self._report(outcome, None, request, started)

    async def mark_changes_from(self) -> None:
        """Record where `sync` starts, before a backfill reads anything, so that every change
        committed while it runs reaches the target too. Kept once set (a resumed or second run
        is the same backfill). A source that cannot tell its changes (a view) gets none; `sync`
        names why when it is run."""
        if await self._state.read_change_cursor() is not None:
            return
        try:
            position = await self._source.change_cursor()
        except SetupError:
            return
        await self._state.record_change_cursor(ChangeCursor(position, self._clock()))

    async def statistics(self) -> MigrationStats:
        """Totals on both sides, the source counted exactly now (`domain.observe.statistics.Statistics`,
        wired in the container, keeps the count instead)."""
        return await Statistics(SourceCounter(self._source, self._clock), self._state).read()

    async def migrate_users(
        self, users: Sequence[SourceUser], dry_run: bool, rewrite: bool = False, fence: Fence = _no_fence
    ) -> BatchOutcome:
        """Validate, prepare, check existence and write (unless `dry_run`) the given users;
        with `rewrite`, users already stored are rewritten where the migration may. `fence` is
        asked right before the writes, and stops them by raising (a worker whose lease ran out)."""
        failures, prepared = self._prepare(users, self._clock())
        if not prepared:
            if not dry_run and failures:
                await self._note_failing(failures)
            return BatchOutcome(read=len(users), failures=failures)
        user_ids = [user.user_id for user in prepared]
        if dry_run:
            existing = await self._target.existing_user_ids(user_ids)
            return BatchOutcome(len(users), len(prepared) - len(existing), len(existing), failures)
        invalid = dict(failures)
        async with self._holding([*user_ids, *invalid]) as (hold, before):
            # Once writing starts, the counters must follow the items: a caller that goes away
            # (a cancelled request, a shutdown) does not stop this step half-way.
            if self._offline:
                existing = await self._target.existing_user_ids(user_ids)
                to_write = [user for user in prepared if user.user_id not in existing]
                written = await self._in_flight.run(
                    self._write_and_settle(hold, to_write, before, _Attempt(user_ids, invalid), fence)
                )
            else:
                written, existing = await self._in_flight.run(
                    self._write_new_and_settle(hold, prepared, before, _Attempt(user_ids, invalid), fence)
                )
            to_rewrite = [user for user in prepared if user.user_id in existing] if rewrite else []
            # Rewritten items were counted when first written: they are never intended or settled.
            rewritten = await self._in_flight.run(self._target.rewrite_users(to_rewrite)) if to_rewrite else None
        failures.update(_write_failures(written.failed))
        write_failed = set(written.failed)
        if rewritten is None:
            return BatchOutcome(len(users), len(written.written), len(existing), failures, frozenset(write_failed))
        failures.update(_write_failures(rewritten.failed))
        write_failed.update(rewritten.failed)
        return BatchOutcome(
            len(users),
            len(written.written) + len(rewritten.rewritten),
            len(existing) - len(rewritten.rewritten) - len(rewritten.failed),
            failures,
            frozenset(write_failed),
            rewritten=len(rewritten.rewritten),
            kept=dict(rewritten.kept),
        )

    async def apply_changes(self, users: Sequence[SourceUser], rule: WriteRule = WriteRule.OLDER) -> ChangeOutcome:
        """Carry changed rows over (`sync`, the stream, `verify --repair`): a user without an item
        is written as the backfill writes it (and counted); a stored item is replaced where `rule`
        allows it, a condition the target checks atomically with the write.

        A row whose version did not move (an `update_column`, an admin's SQL) is judged by its
        content: where it converts to something else than the item as new as it holds, and that
        item is the migration's own, unchanged since it wrote it, the item is replaced,
        conditional on exactly what was read (`same_version_written`). The same goes for an item
        the migration wrote without a version (its row had none then). Items holding what their
        row converts to stay (`unchanged`); newer ones, or someone else's, are kept (`kept`,
        with the reason)."""
        failures, prepared = self._prepare(users, self._clock())
        if not prepared:
            if failures:
                await self._note_failing(failures)
            return ChangeOutcome(read=len(users), failures=failures)
        attempt = _Attempt([user.user_id for user in prepared], dict(failures))
        async with self._holding([*attempt.user_ids, *attempt.invalid]) as (hold, before):
            created, replaced = await self._in_flight.run(self._apply_and_settle(hold, prepared, before, rule, attempt))
        refused = sorted(set(replaced.refused))
        stored = await self._target.read_items(refused) if refused else {}
        by_id = {user.user_id: user for user in prepared}
        kept: dict[UserId, str] = {}
        by_content: list[PreparedUser] = []  # as new as their row, or unversioned: the content decides
        for user_id in refused:
            version, row_version = stored_version(stored.get(user_id)), by_id[user_id].version
            if user_id not in stored:
                kept[user_id] = GONE_WHILE_WRITING
            elif version is None or version == row_version:
                by_content.append(by_id[user_id])
            elif row_version is None:
                kept[user_id] = UNVERSIONED_ROW
            else:
                kept[user_id] = NEWER_IN_TARGET
        compared = await self._in_flight.run(self._target.rewrite_users(by_content)) if by_content else RewriteOutcome()
        write_failed = {**created.failed, **replaced.failed, **compared.failed}
        failures.update(_write_failures(write_failed))
        kept.update(compared.kept)
        return ChangeOutcome(
            read=len(users),
            written=len(created.written) + len(replaced.written) + len(compared.rewritten),
            unchanged=len(compared.unchanged),
            kept={user_id: kept[user_id] for user_id in sorted(kept)},
            failures=failures,
            write_failed=frozenset(write_failed),
            same_version_written=len(compared.rewritten),
        )

    async def _apply_and_settle(
        self, hold: UsersHold, users: list[PreparedUser], before: _Inherited, rule: WriteRule, attempt: _Attempt
    ) -> tuple[ConditionalWriteOutcome, ConditionalWriteOutcome]:
        stored = await self._target.existing_user_ids([user.user_id for user in users])
        new = [user for user in users if user.user_id not in stored]
        created = ConditionalWriteOutcome()
        if new:
            # Only users without an item are intended: an inherited intent found stored is counted
            # as landed, and an item that existed was counted when it was first written.
            await hold.intend([user.user_id for user in new])
            created = await self._target.write_users_if(new, WriteRule.ABSENT)
        replacing = stored | set(created.refused)  # an application may have written some meanwhile
        replaced = ConditionalWriteOutcome()
        if replacing:
            older = [user for user in users if user.user_id in replacing]
            replaced = await self._target.write_users_if(older, rule)
        # An item deleted since the existence check is created by the second write: counted too.
        landed = await self._inherited_landed(before) | set(created.written) | set(replaced.created)
        await hold.settle(
            landed,
            unsure=created.failed.keys(),
            removed=before.removed,
            **attempt.failing({**created.failed, **replaced.failed}),
        )
        return created, replaced

    async def remove_users(self, user_ids: Collection[UserId]) -> DeleteOutcome:
        """Delete the items of these users that the migration wrote and nobody changed since
        (checked by the delete itself), and take them off the counters; the others are kept,
        with the reason (e.g. an item the application wrote)."""
        wanted = sorted(set(user_ids))
        if not wanted:
            return DeleteOutcome()
        async with self._holding(wanted) as (hold, before):
            return await self._in_flight.run(self._remove_and_settle(hold, wanted, before))

    async def _remove_and_settle(self, hold: UsersHold, user_ids: list[UserId], before: _Inherited) -> DeleteOutcome:
        await hold.intend_removal(user_ids)
        outcome = await self._target.delete_unchanged(user_ids)
        removed = before.removed | set(outcome.deleted)
        landed = await self._inherited_landed(before)
        # A user deleted from the source is no longer failing.
        await hold.settle(landed, removed=removed, unsure_removed=outcome.failed.keys(), succeeded=outcome.deleted)
        return outcome

    @asynccontextmanager
    async def _holding(self, user_ids: Sequence[UserId]) -> AsyncIterator[tuple[UsersHold, _Inherited]]:
        """Hold the range of these ids (in-process range locks first, they are cheap, then the
        hold other processes respect too), with what an earlier holder left to settle."""
        lowest, highest = min(user_ids), max(user_ids)
        async with self._locks.hold(lowest, highest), self._state.hold_users(lowest, highest) as hold:
            removals = hold.inherited_removals
            removed = set(removals) - await self._target.existing_user_ids(removals) if removals else set()
            inside = frozenset(
                user_id
                for user_id in hold.inherited
                if lowest <= user_id <= highest  # type: ignore[operator]  # ids of one kind
            )
            yield hold, _Inherited(removed, await self._landed(hold.inherited - inside), inside)

    async def _inherited_landed(self, before: _Inherited) -> set[UserId]:
        """Of the writes an earlier holder left unsettled, those that landed. Those within this
        hold's range are looked at just before it settles, after its own writes, so that a late
        write of a holder that stalled (rather than died) is counted too, once; no other holder
        can write them meanwhile."""
        return before.landed_outside | await self._landed(before.inside)

    async def _landed(self, user_ids: Collection[UserId]) -> set[UserId]:
        # Landed means stored *and* written by the migration: an application may have written a
        # user whose put here failed without an answer.
        stored = await self._target.read_items(user_ids) if user_ids else {}
        return {user_id for user_id, item in stored.items() if MIGRATION_DIGEST in item}

    async def _note_failing(self, failures: Mapping[UserId, Collection[str]]) -> None:
        """Note users that failed validation (a page with nobody to write)."""
        async with self._holding(list(failures)) as (hold, before):
            await self._in_flight.run(
                hold.settle(
                    await self._inherited_landed(before), removed=before.removed, failed=failing_codes(failures)
                )
            )

    def _prepare(
        self, users: Sequence[SourceUser], migrated_at: datetime
    ) -> tuple[dict[UserId, tuple[str, ...]], list[PreparedUser]]:
        failures: dict[UserId, tuple[str, ...]] = {}
        prepared: list[PreparedUser] = []
        for user in users:
            outcome = self._preparer.prepare(user, migrated_at)
            if isinstance(outcome, Rejection):
                failures[user.id] = outcome.reasons
            else:
                prepared.append(outcome)
        return failures, prepared

    async def _write_and_settle(
        self, hold: UsersHold, users: list[PreparedUser], before: _Inherited, attempt: _Attempt, fence: Fence
    ) -> WriteOutcome:
        written = WriteOutcome()
        if users:
            await hold.intend([user.user_id for user in users])
            fence()
            written = await self._target.write_users(users)
        landed = await self._inherited_landed(before) | set(written.written)
        await hold.settle(
            landed, unsure=written.failed.keys(), removed=before.removed, **attempt.failing(written.failed)
        )
        return written

    async def _write_new_and_settle(
        self, hold: UsersHold, users: list[PreparedUser], before: _Inherited, attempt: _Attempt, fence: Fence
    ) -> tuple[WriteOutcome, set[UserId]]:
        """The live-safe write: each item only where none exists, decided by the target itself, so
        an item an application writes meanwhile is never replaced. Returns what was written and
        the users found stored already.

        Only the users not stored yet are intended: whoever inherits the intent of a holder that
        died counts those of them it then finds stored, which must not be users counted before."""
        stored = await self._target.existing_user_ids([user.user_id for user in users])
        absent = [user for user in users if user.user_id not in stored]
        outcome = ConditionalWriteOutcome()
        if absent:
            await hold.intend([user.user_id for user in absent])
            fence()
            outcome = await self._target.write_users_if(absent, WriteRule.ABSENT)
        landed = await self._inherited_landed(before) | set(outcome.written)
        await hold.settle(
            landed, unsure=outcome.failed.keys(), removed=before.removed, **attempt.failing(outcome.failed)
        )
        return WriteOutcome(outcome.written, outcome.failed), stored | set(outcome.refused)

    @staticmethod
    def _report(
        outcome: BatchOutcome, next_start: UserId | None, request: BatchRequest | SingleUserRequest, started: float
    ) -> MigrationReport:
        failed_ids = sorted(outcome.failures)
        return MigrationReport(
            migrated_count=outcome.migrated,
            skipped_count=outcome.skipped,
            failed_count=len(failed_ids),
            failed_user_ids=failed_ids,
            errors=outcome.error_texts(),
            next_start_user_id=next_start,
            dry_run=request.dry_run,
            processing_time_ms=round((time.perf_counter() - started) * 1000),
            rewrite=outcome.kept_report() if request.rewrite else None,
            reason_codes=outcome.reason_codes(),
        )
