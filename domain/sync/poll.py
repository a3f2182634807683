"""`sync`: carry every change committed in the source since the last pass into the target.

One pass, on the page engine (`domain.engine.pump`):
1. The source's change cursor is taken first: every change committed before it is caught now,
   every later one by the next pass (a row may be carried twice; its version decides, so that is
   harmless).
2. The rows changed since the recorded cursor (all rows when none is recorded: a full pass) are
   read in keyset pages and carried over by `ChangeWrites.apply`: written where the item is
   absent (and counted), replacing an item only when it is older than its row.
3. Deletes, which the source does not tell: the stored ids are scanned page by page, and an item
   whose row is gone is deleted only if the migration wrote it and nobody changed it since
   (`ChangeWrites.remove`); an item the application wrote is kept and reported.
4. Only then, and only if no valid row failed to be written or deleted, the new cursor is
   recorded. A pass that is killed or fails is simply done again by the next one: nothing is
   lost, and the holds' accounting counts nothing twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Protocol, Self, TypeVar

import attrs

from user_migration.domain.convert.rules import Reason, reason_code
from user_migration.domain.counts import counts_added
from user_migration.domain.engine.pump import PagePump, next_scanned_page
from user_migration.domain.errors import DependencyUnavailable, SetupError
from user_migration.domain.keys import UserId
from user_migration.domain.migrate.migration import next_start_after
from user_migration.domain.migrate.report import ChangeOutcome
from user_migration.domain.migrate.request import MAX_BATCH_SIZE, check_batch_size
from user_migration.domain.model import ChangeCursor, DeleteOutcome, SourceUser
from user_migration.domain.parallel.segments import ScanPart
from user_migration.domain.sync.request import FollowRequest, SyncRequest
from user_migration.domain.write.changes import ChangeWrites
from user_migration.ports.migration_state import MigrationState
from user_migration.ports.user_source import UserSource
from user_migration.ports.user_target import UserTarget

DEFAULT_SYNC_PAGES_IN_FLIGHT = 2


def _utc_now() -> datetime:
    return datetime.now(UTC)


@attrs.frozen
class SyncProgress:
    """Where a pass stands: rows and items looked at, and what was done so far."""

    changes_seen: int
    written: int
    deleted: int
    failed: int
    elapsed_seconds: float


_RETRIED = frozenset({"write_failed", "delete_failed"})


def _invalid_rows(failures: dict[UserId, tuple[str, ...]]) -> dict[UserId, tuple[str, ...]]:
    return {
        user_id: reasons
        for user_id, reasons in failures.items()
        if not any(reason_code(reason) in _RETRIED for reason in reasons)
    }


@attrs.frozen
class SyncSummary:
    """What one or more passes did. `lag_seconds`: how old the latest change cursor the target
    has caught up to is, when the summary is made (None: it never caught up)."""

    changes_seen: int
    written: int
    deleted: int
    skipped_newer: int
    unchanged: int
    failures: dict[UserId, tuple[str, ...]]
    not_deleted: dict[UserId, str]
    lag_seconds: float | None
    elapsed_seconds: float
    full_pass: bool = False
    caught_up: bool = False
    stopped_early: bool = False
    passes: int = 1
    # Of `written`: rows whose version had not moved, carried because their content had.
    same_version_written: int = 0

    @property
    def failed(self) -> int:
        """How many users could not be carried over."""
        return len(self.failures)

    def then(self, later: SyncSummary) -> SyncSummary:
        """This summary followed by a later pass's (for `--follow`'s totals)."""
        return counts_added(
            self,
            later,
            # A write or delete that failed is tried again by the next pass (the cursor stayed), so
            # only the later pass tells whether it still fails; an invalid row is not read again.
            failures={**_invalid_rows(self.failures), **later.failures},
            not_deleted={**self.not_deleted, **later.not_deleted},
            lag_seconds=later.lag_seconds if later.lag_seconds is not None else self.lag_seconds,
            elapsed_seconds=self.elapsed_seconds + later.elapsed_seconds,
            full_pass=self.full_pass or later.full_pass,
        )


@attrs.define
class SyncTally:
    """What carrying changes over did so far (a pass of `sync`, or a stream)."""

    started: float = attrs.Factory(time.perf_counter)
    changes_seen: int = 0
    written: int = 0
    deleted: int = 0
    skipped_newer: int = 0
    unchanged: int = 0
    same_version_written: int = 0
    failures: dict[UserId, tuple[str, ...]] = attrs.Factory(dict)
    not_deleted: dict[UserId, str] = attrs.Factory(dict)
    # Valid users that could not be written or deleted: the cursor must not move past them.
    unfinished: int = 0

    def add_changes(self, outcome: ChangeOutcome) -> None:
        self.changes_seen += outcome.read
        self.written += outcome.written
        self.same_version_written += outcome.same_version_written
        self.unchanged += outcome.unchanged
        self.skipped_newer += len(outcome.kept)
        self.failures.update(outcome.failures)
        self.unfinished += len(outcome.write_failed)

    def add_deletes(self, outcome: DeleteOutcome) -> None:
        self.changes_seen += len(outcome.deleted) + len(outcome.kept) + len(outcome.failed)
        self.deleted += len(outcome.deleted)
        self.not_deleted.update(outcome.kept)
        for user_id, reason in outcome.failed.items():
            self.failures[user_id] = (Reason("delete_failed", f"Delete failed: {reason}"),)
        self.unfinished += len(outcome.failed)

    def include(self, other: SyncTally) -> None:
        """Add what `other` did (a segment of a pass, to its worker's totals)."""
        self.changes_seen += other.changes_seen
        self.written += other.written
        self.deleted += other.deleted
        self.skipped_newer += other.skipped_newer
        self.unchanged += other.unchanged
        self.same_version_written += other.same_version_written
        self.failures.update(other.failures)
        self.not_deleted.update(other.not_deleted)
        self.unfinished += other.unfinished

    def progress(self) -> SyncProgress:
        return SyncProgress(
            self.changes_seen, self.written, self.deleted, len(self.failures), time.perf_counter() - self.started
        )

    def summary(self, lag: float | None, full_pass: bool, caught_up: bool, stopped: bool) -> SyncSummary:
        return SyncSummary(
            self.changes_seen,
            self.written,
            self.deleted,
            self.skipped_newer,
            self.unchanged,
            {user_id: self.failures[user_id] for user_id in sorted(self.failures)},
            {user_id: self.not_deleted[user_id] for user_id in sorted(self.not_deleted)},
            lag,
            time.perf_counter() - self.started,
            full_pass=full_pass,
            caught_up=caught_up,
            stopped_early=stopped,
            same_version_written=self.same_version_written,
        )


SyncProgressCallback = Callable[[SyncProgress], None]


@attrs.define(eq=False, slots=False)
class ChangeSync:
    """Carries the source's changes into the target, pass after pass; see the module's docstring."""

    _source: UserSource
    _target: UserTarget
    _state: MigrationState
    _changes: ChangeWrites
    # Without a version, an item could never be told older than its row.
    _versioned: bool = True
    _clock: Callable[[], datetime] = _utc_now
    _pages_in_flight: int = DEFAULT_SYNC_PAGES_IN_FLIGHT

    def check_versioned(self) -> None:
        """Raise `SetupError` when the mapping has no version (sync cannot tell newer from older)."""
        if not self._versioned:
            raise SetupError(
                [
                    "[source] version: sync needs the column that grows whenever a row changes "
                    "(a timestamp such as updated_at, or an integer); the mapping names none"
                ],
                "sync needs a version column",
            )

    async def catch_up(self, request: SyncRequest) -> SyncSummary:
        """One pass: every change committed before it started is in the target when it returns
        (unless `stop` ended it early, or some users failed: then the cursor stays, and the next
        pass does their work again)."""
        check_batch_size(request.batch_size)
        self.check_versioned()
        recorded = (await self._state.read_progress()).change_cursor
        position = await self._source.change_cursor()
        cursor = ChangeCursor(position, self._clock())
        since = recorded.position if recorded is not None else None
        tally, stopped = await self.carry(since, None, request.batch_size, request.stop, request.on_progress)
        caught_up = not stopped and tally.unfinished == 0
        if caught_up:
            await self._state.record_change_cursor(cursor, applied=tally.written + tally.deleted)
        latest = cursor if caught_up else recorded
        lag = (self._clock() - latest.taken_at).total_seconds() if latest is not None else None
        return tally.summary(lag, full_pass=recorded is None, caught_up=caught_up, stopped=stopped)

    async def backfill(
        self,
        version: int,
        batch_size: int = MAX_BATCH_SIZE,
        stop: asyncio.Event | None = None,
        on_progress: SyncProgressCallback | None = None,
    ) -> SyncSummary:
        """Every row carried over as of `version` (a change stream's position: every row is read
        after it, so its state is at least that new), and the migration's items whose rows are
        gone deleted; no change cursor is recorded (the stream is the cursor). `caught_up` when
        nothing is left to do again."""
        check_batch_size(batch_size)
        tally, stopped = await self.carry(None, version, batch_size, stop, on_progress)
        caught_up = not stopped and tally.unfinished == 0
        return tally.summary(None, full_pass=True, caught_up=caught_up, stopped=stopped)

    async def carry(
        self,
        since: str | None,
        version: int | None,
        batch_size: int,
        stop: asyncio.Event | None,
        on_progress: SyncProgressCallback | None,
        lowest: UserId | None = None,
        highest: UserId | None = None,
        deletes_in: ScanPart | None = None,
    ) -> tuple[SyncTally, bool]:
        """The rows with ids in lowest..highest changed since `since` (all for None), as of
        `version` when given, then the deletes (among every stored id, or that part of a scan of
        them); the tally, and whether `stop` ended it early. A pass's segment is one range and
        one part (`domain.parallel.sync_worker`), so each stored id is looked at by one segment."""
        tally = SyncTally()

        def report() -> None:
            if on_progress is not None:
                on_progress(tally.progress())

        async def read_changed(start: UserId) -> tuple[list[SourceUser], UserId | None]:
            page = list(await self._source.read_changed_page(since, start, batch_size, highest))
            following = next_start_after(page, batch_size, self._source.key_kind)
            if version is not None:
                page = [attrs.evolve(user, version=version) for user in page]
            return page, following

        async def finish_changes(page: list[SourceUser], outcome: ChangeOutcome) -> None:
            tally.add_changes(outcome)
            report()

        changes: PagePump[UserId, list[SourceUser], Any] = PagePump(
            read_changed, self._changes.apply, finish_changes, in_flight=self._pages_in_flight
        )
        first = self._source.key_kind.first if lowest is None else lowest
        stopped = (await changes.run(first, stop)).stopped_early
        if not stopped:
            stopped = await self._remove_deleted(batch_size, tally, report, stop, deletes_in)
        return tally, stopped

    async def _remove_deleted(
        self,
        batch_size: int,
        tally: SyncTally,
        report: Callable[[], None],
        stop: asyncio.Event | None,
        part: ScanPart | None,
    ) -> bool:
        """Delete the items whose rows are gone (the migration's own, unchanged ones); True when
        `stop` ended it early."""
        kind = self._source.key_kind
        pages = self._target.scan_user_ids(kind.first, kind.last, page_size=batch_size, part=part)

        async def remove_gone(stored: list[UserId]) -> DeleteOutcome:
            if not stored:
                return DeleteOutcome()
            gone = set(stored) - await self._source.existing_user_ids(stored)
            return await self._changes.remove(gone) if gone else DeleteOutcome()

        async def finish_deletes(page: list[UserId], outcome: DeleteOutcome) -> None:
            tally.add_deletes(outcome)
            report()

        # One scan, read in order: a single page in flight at the reader, deletes side by side.
        deletes = PagePump(next_scanned_page, remove_gone, finish_deletes, prefetch=1, in_flight=self._pages_in_flight)
        return (await deletes.run(pages, stop)).stopped_early

    async def follow(self, request: FollowRequest[SyncSummary]) -> SyncSummary:
        """Pass after pass, `interval_seconds` apart, until `stop` is set; the totals of all (a bad
        `batch_size` is an `InvalidParameter` of the first pass). A
        pass that finds PostgreSQL or DynamoDB unavailable is told to `on_unavailable` and tried
        again after the interval (the cursor stayed, so nothing is lost); the operator's mistakes
        (a `SetupError`) end it."""
        return await follow_passes(lambda: self.catch_up(request.each_pass()), request)


class Pass(Protocol):
    """What `follow_passes` adds up: a pass's summary."""

    def then(self, later: Self) -> Self: ...


Summary = TypeVar("Summary", bound=Pass)


async def follow_passes(one_pass: Callable[[], Awaitable[Summary]], request: FollowRequest[Summary]) -> Summary:
    """`one_pass` after another, `interval_seconds` apart, until `stop` is set; the totals of
    all (`Summary.then`). A pass that finds PostgreSQL or DynamoDB unavailable is told to
    `on_unavailable` and tried again after the interval; any other error ends it."""
    stop, on_pass, on_unavailable = request.stop, request.on_pass, request.on_unavailable
    total: Summary | None = None
    last_error: DependencyUnavailable | None = None
    while True:
        try:
            summary = await one_pass()
        except DependencyUnavailable as error:
            if on_unavailable is None:
                raise
            on_unavailable(error)
            last_error = error
        else:
            total = summary if total is None else total.then(summary)
            if on_pass is not None:
                on_pass(summary)
        if not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=request.interval_seconds)
        if stop.is_set():
            if total is None:  # stopped before any pass got through: that is how it ended
                assert last_error is not None
                raise last_error
            return total
