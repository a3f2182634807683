"""The migration use cases, written against the ports only."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from user_migration.domain.convert.rules import UserPreparer
from user_migration.domain.errors import SetupError, UserNotFound
from user_migration.domain.keys import KeyKind, UserId
from user_migration.domain.migrate.report import BatchOutcome, MigrationReport, MigrationStats
from user_migration.domain.migrate.request import BatchRequest, MigrationRequest, SingleUserRequest
from user_migration.domain.model import (
    ChangeCursor,
    SourceUser,
)
from user_migration.domain.observe.source_count import SourceCounter
from user_migration.domain.observe.statistics import Statistics
from user_migration.domain.write.ledger import Attempt, Closing, Fence, WriteLedger, no_fence, write_failures
from user_migration.ports.migration_state import MigrationState
from user_migration.ports.user_source import UserSource
from user_migration.ports.user_target import UserTarget


def _utc_now() -> datetime:
    return datetime.now(UTC)


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
        ledger: WriteLedger | None = None,
        clock: Callable[[], datetime] = _utc_now,
        preparer: UserPreparer | None = None,
        offline: bool = False,
    ) -> None:
        # The offline mode: an existence check, then unconditional batch writes. Faster where
        # every request costs, but safe only while nothing else writes the table.
        self._offline = offline
        # Whether the target held no item at all when this process looked (`look_whether_target_empty`).
        self._empty_when_looked = False
        self._preparer = preparer if preparer is not None else UserPreparer()
        self._source = source
        self._target = target
        self._state = state
        self._clock = clock
        # Every write goes through the ledger (over the same target and state; one of its own
        # when none is given), sharing its range locks and writes in flight with whoever shares it.
        self._ledger = ledger if ledger is not None else WriteLedger(target, state)
        self._in_flight = self._ledger.in_flight

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

    async def look_whether_target_empty(self) -> None:
        """In the offline mode, look (once, before writing anything) whether the target holds no item
        at all. If it does not, a page whose users no hold of the state was ever taken on (the
        holds' `untouched`) needs no existence check: nothing else writes the table during an
        offline run, and every write of the project's own goes through a hold."""
        if self._offline:
            self._empty_when_looked = await self._target.holds_no_items()

    async def statistics(self) -> MigrationStats:
        """Totals on both sides, the source counted exactly now (`domain.observe.statistics.Statistics`,
        wired in the container, keeps the count instead)."""
        return await Statistics(SourceCounter(self._source, self._clock), self._state).read()

    async def migrate_users(
        self,
        users: Sequence[SourceUser],
        dry_run: bool,
        rewrite: bool = False,
        fence: Fence = no_fence,
        closing: Closing | None = None,
    ) -> BatchOutcome:
        """Validate, prepare, check existence and write (unless `dry_run`) the given users;
        with `rewrite`, users already stored are rewritten where the migration may. `fence` is
        asked right before the writes, and stops them by raising (a worker whose lease ran out);
        `closing` makes the settle of writes none of which failed (`domain.write.ledger.Closing`)."""
        failures, prepared = self._preparer.prepare_all(users, self._clock())
        if not prepared:
            if not dry_run and failures:
                await self._ledger.note_failing(failures)
            return BatchOutcome(read=len(users), failures=failures)
        user_ids = [user.user_id for user in prepared]
        if dry_run:
            existing = await self._target.existing_user_ids(user_ids)
            return BatchOutcome(len(users), len(prepared) - len(existing), len(existing), failures)
        attempt = Attempt(user_ids, dict(failures))
        # On a table found empty, an untouched hold's take also records the intent (see below).
        known_absent_if_untouched = user_ids if self._offline and self._empty_when_looked else []
        async with self._ledger.hold([*user_ids, *attempt.invalid], known_absent_if_untouched) as step:
            if self._offline:
                known_absent = self._empty_when_looked and step.untouched
                existing = set() if known_absent else await self._target.existing_user_ids(user_ids)
                to_write = [user for user in prepared if user.user_id not in existing]
                written = await step.write_over(to_write, attempt, fence, closing)
            else:
                written, existing = await step.write_new(prepared, attempt, fence, closing)
            to_rewrite = [user for user in prepared if user.user_id in existing] if rewrite else []
            # Rewritten items were counted when first written: they are never intended or settled.
            rewritten = await self._in_flight.run(self._target.rewrite_users(to_rewrite)) if to_rewrite else None
        failures.update(write_failures(written.failed))
        write_failed = set(written.failed)
        if rewritten is None:
            return BatchOutcome(len(users), len(written.written), len(existing), failures, frozenset(write_failed))
        failures.update(write_failures(rewritten.failed))
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
