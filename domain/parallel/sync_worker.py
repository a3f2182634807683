"""A worker of a pass of `sync --workers`: processes (on this machine or several) share one
polling pass over the whole id space, segment by segment, under leases of their own.

Every worker of pass N carries the same changes: the first to begin it stores the recorded
cursor it goes on from (`since`) and the cursor it will record (taken then), and the others
read them (`ports.sync_passes`). A segment's work is its rows changed since `since`, carried
over as `sync` does, and one part of a parallel scan of the target for the deletes (part i of as
many parts as there are segments), so each stored id is looked at by one segment. Writes and
deletes need no fence: each is conditional on versions, and counted through the holds, so a
segment carried twice (its lease lost and taken) counts nothing twice. What a segment applied is
recorded under its lease before it is marked done; a segment with a write or delete that failed
is left undone (the next try carries it again).

When every segment is done, whoever sees it records the pass's cursor and the sum of what its
segments applied once (`MigrationState.record_sync_pass`). The next pass is begun (a conditional
bump of the run) by the next worker to arrive and find the pass finished, after recording it
again (a no-op, unless the worker that finished it was killed first): so the workers of one
`--once` carry one pass together, and a worker never runs on into a pass the others do not know.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeAlias

from user_migration.domain.migrate.request import check_batch_size
from user_migration.domain.model import ChangeCursor
from user_migration.domain.parallel.lease_loop import LeaseTally, SegmentOutcome
from user_migration.domain.parallel.leased_pass import LeasedPass, LeasedPassSummary
from user_migration.domain.parallel.leases import OwnLease
from user_migration.domain.parallel.segments import ScanPart
from user_migration.domain.sync.poll import (
    ChangeSync,
    SyncProgress,
    SyncProgressCallback,
    SyncSummary,
    SyncTally,
    follow_passes,
)
from user_migration.domain.sync.request import FollowRequest, SyncRequest
from user_migration.ports.migration_state import MigrationState
from user_migration.ports.sync_passes import SyncPass, SyncPasses
from user_migration.ports.user_source import UserSource

# What one worker carried (the segments it worked on) in one or more passes, and its leases; the
# whole pass's items written or deleted by all its workers, once that pass is finished.
SyncWorkerSummary: TypeAlias = LeasedPassSummary[SyncSummary, int]


def _wall_clock() -> datetime:
    return datetime.now(UTC)


class SyncWorker:
    """Carries the changes of the passes' segments; see the module's docstring."""

    def __init__(
        self,
        sync: ChangeSync,
        source: UserSource,
        state: MigrationState,
        passes: SyncPasses,
        leased: LeasedPass,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self._sync = sync
        self._source = source
        self._state = state
        self._leases = leased.leases
        self._passes = passes
        self._pass_of_leases = leased
        self.worker = leased.worker
        self._now = now if now is not None else _wall_clock
        self._begun: dict[int, SyncPass] = {}

    async def run_pass(self, request: SyncRequest) -> SyncWorkerSummary:
        """Work the current pass's segments until it is finished (or `stop`); a pass found
        finished on arrival is recorded and the next one worked instead."""
        batch_size, stop, on_progress = request.batch_size, request.stop, request.on_progress
        check_batch_size(batch_size)
        self._sync.check_versioned()
        seen = await self._leases.leases()
        if all(lease.done for lease in seen):
            await self._finish(seen[0].run)
            await self._leases.restart(seen[0].run)
        total = SyncTally()
        segments = len(seen)

        def progress_of(unit: SyncProgress) -> None:
            if on_progress is not None:
                on_progress(
                    SyncProgress(
                        total.changes_seen + unit.changes_seen,
                        total.written + unit.written,
                        total.deleted + unit.deleted,
                        len(total.failures) + unit.failed,
                        time.perf_counter() - total.started,
                    )
                )

        async def work(own: OwnLease) -> SegmentOutcome:
            return await self._carry_segment(own, segments, batch_size, total, progress_of, stop)

        leased = await self._pass_of_leases.work(work, False, stop)
        return await self._summary(leased, total, stop)

    async def follow(self, request: FollowRequest[SyncWorkerSummary]) -> SyncWorkerSummary:
        """Pass after pass, `interval_seconds` apart, until `stop`; the totals (as `ChangeSync.follow`)."""
        return await follow_passes(lambda: self.run_pass(request.each_pass()), request)

    async def _pass(self, number: int) -> SyncPass:
        """Pass `number` as its first worker began it (this one, when it is the first)."""
        if number not in self._begun:
            recorded = await self._state.read_change_cursor()
            cursor = ChangeCursor(await self._source.change_cursor(), self._now())
            since = recorded.position if recorded is not None else None
            self._begun[number] = await self._passes.begin(SyncPass(number, since, cursor))
        return self._begun[number]

    async def _finish(self, number: int) -> int:
        """Record finished pass `number` (unless that was done already); what it applied."""
        finished = await self._pass(number)
        applied = await self._passes.read(number)
        # Every done segment recorded its result first; a missing one (never expected) counts 0.
        total = sum(applied.values())
        if finished.number == number:
            await self._state.record_sync_pass(number, finished.cursor, total)
        return total

    async def _carry_segment(
        self,
        own: OwnLease,
        segments: int,
        batch_size: int,
        total: SyncTally,
        on_progress: SyncProgressCallback,
        stop: asyncio.Event | None,
    ) -> SegmentOutcome:
        """Carry the segment's changes and deletes under its lease; see the module's docstring."""
        segment = own.lease.segment
        current = await self._pass(own.lease.run)
        if current.number != own.lease.run:
            return "lost"  # a later pass began meanwhile: this lease is of a pass gone by

        def carry(segment_stop: asyncio.Event) -> Awaitable[tuple[SyncTally, bool]]:
            return self._sync.carry(
                current.since,
                None,
                batch_size,
                segment_stop,
                on_progress,
                segment.lowest,
                segment.highest,
                ScanPart(segment.index, segments),
            )

        (tally, stopped), lost = await self._pass_of_leases.under_lease(own, stop, carry)
        if lost:
            return "lost"  # the segment's next owner carries it again, and counts it
        total.include(tally)
        if stopped or tally.unfinished:
            await self._leases.release(own.lease)
            return "stopped" if stopped else "failed"
        if not await self._passes.record(own.lease, tally.written + tally.deleted):
            return "lost"
        done = await self._leases.checkpoint(own.lease, segment.highest, done=True)
        return "done" if done is not None else "lost"

    async def _summary(self, leased: LeaseTally, total: SyncTally, stop: asyncio.Event | None) -> SyncWorkerSummary:
        finished = leased.unfinished_segments == 0
        applied = await self._finish(leased.run) if finished else None
        latest = self._begun.get(leased.run)
        caught_up = finished and latest is not None
        taken_at = latest.cursor.taken_at if caught_up and latest is not None else None
        if taken_at is None:
            recorded = await self._state.read_change_cursor()
            taken_at = recorded.taken_at if recorded is not None else None
        lag = (self._now() - taken_at).total_seconds() if taken_at is not None else None
        full_pass = latest is not None and latest.since is None
        summary = total.summary(lag, full_pass=full_pass, caught_up=finished, stopped=leased.stopped_early(stop))
        return self._pass_of_leases.summary(leased, summary, applied)
