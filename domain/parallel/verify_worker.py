"""A worker of a verify pass: `verify --workers` processes (on this machine or several) share one
pass over the whole id space, segment by segment, under leases of their own (not the migration's).

A segment's work is its rows, compared with their items, and one part of a parallel scan of the
target (part i of as many parts as there are segments), for items whose row does not exist: so
both searches split the same way, and each stored id is looked at by one segment's worker. The
segment's differences are kept until it is done, and only then handed on (to `--out`) and counted:
a worker whose lease ran out meanwhile drops them, and the segment's next owner verifies it again,
so each difference of the pass is reported once. A segment's counts are recorded when it is done
(`ports.verify_results`), so any worker that ends with the pass finished tells the pass's verdict,
also one that joined after the others had verified everything. Repairs need no fence: each is a conditional
write under the rule that never overwrites newer data, so two workers repairing the same item
both leave it right.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Awaitable, Callable

import attrs

from user_migration.domain.parallel.lease_loop import SegmentOutcome, under_lease, work_leases
from user_migration.domain.parallel.leases import OwnLease
from user_migration.domain.parallel.migrate_worker import DEFAULT_LEASE_SECONDS
from user_migration.domain.parallel.segments import ScanPart
from user_migration.domain.verify.differences import Difference, VerifyCounts, VerifyProgress, VerifySummary
from user_migration.domain.verify.verification import DifferenceCallback, Verification, VerifyProgressCallback
from user_migration.ports.segment_leases import SegmentLeases
from user_migration.ports.verify_results import VerifyResults


@attrs.frozen
class VerifyWorkerSummary:
    """What one worker verified (the segments it finished), and its leases."""

    worker: str
    verify_pass: int
    summary: VerifySummary
    segments_done: int
    lease_takes: int
    lease_steals: int
    leases_lost: int
    unfinished_segments: int  # of the pass, when this worker stopped
    # The whole pass's counts (every segment's recorded result) once it is finished; else None.
    pass_counts: VerifyCounts | None = None

    @property
    def clean(self) -> bool:
        """Whether the pass is finished and found nothing failing (after a repair: nothing remains)."""
        if self.pass_counts is None:
            return False
        return (self.pass_counts.not_repaired if self.summary.repair else self.pass_counts.failing) == 0


class VerifyWorker:
    """Verifies the pass's segments until none is left (or `stop`)."""

    def __init__(
        self,
        verification: Verification,
        leases: SegmentLeases,
        results: VerifyResults,
        worker: str | None = None,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._verification = verification
        self._leases = leases
        self._results = results
        self.worker = worker if worker is not None else uuid.uuid4().hex[:12]
        self._lease_seconds = lease_seconds
        self._clock = clock
        self._rng = random.Random()

    async def run(
        self,
        batch_size: int,
        repair: bool = False,
        on_difference: DifferenceCallback | None = None,
        on_progress: VerifyProgressCallback | None = None,
        stop: asyncio.Event | None = None,
        restart: bool = False,
    ) -> VerifyWorkerSummary:
        """Take and verify segments until the pass is finished; `restart` begins a new pass."""
        started = time.perf_counter()
        total = VerifyCounts()
        segments = len(await self._leases.plan())

        def progress_of(unit: VerifyProgress) -> None:
            if on_progress is not None:
                on_progress(
                    VerifyProgress(
                        total.checked + unit.rows_checked,
                        unit.items_scanned,
                        total.failing + unit.differences,
                        time.perf_counter() - started,
                    )
                )

        async def work(own: OwnLease) -> SegmentOutcome:
            found: list[Difference] = []
            outcome, counts = await self._verify_segment(own, segments, batch_size, repair, found, progress_of, stop)
            if outcome == "done":
                total.include(counts)
                if on_difference is not None:
                    for difference in found:
                        on_difference(difference)
            return outcome

        leased = await work_leases(
            self._leases, self.worker, self._lease_seconds, self._clock, work, restart, stop, self._rng
        )
        summary = VerifySummary(total, repair, time.perf_counter() - started, leased.stopped_early(stop))
        finished = leased.unfinished_segments == 0
        pass_counts = await self._pass_counts(leased.run, segments) if finished else None
        self._verification.record_latest(pass_counts if pass_counts is not None else total)
        return VerifyWorkerSummary(
            self.worker,
            leased.run,
            summary,
            leased.segments_done,
            leased.lease_takes,
            leased.lease_steals,
            leased.leases_lost,
            leased.unfinished_segments,
            pass_counts,
        )

    async def _pass_counts(self, verify_pass: int, segments: int) -> VerifyCounts | None:
        """The sum of every segment's result in the pass; None when one is missing (not expected:
        a segment's result is recorded before it is marked done; the verdict is then unknown)."""
        results = await self._results.read(verify_pass)
        if len(results) < segments:
            return None
        return VerifyCounts.sum_of(results.values())

    async def _verify_segment(
        self,
        own: OwnLease,
        segments: int,
        batch_size: int,
        repair: bool,
        found: list[Difference],
        on_progress: VerifyProgressCallback,
        stop: asyncio.Event | None,
    ) -> tuple[SegmentOutcome, VerifyCounts]:
        """Verify the segment's rows and its part of the scan; its lease renewed meanwhile."""
        segment = own.lease.segment

        def verify(segment_stop: asyncio.Event) -> Awaitable[VerifySummary]:
            return self._verification.verify(
                segment.lowest,
                segment.highest,
                batch_size,
                repair,
                found.append,
                on_progress,
                segment_stop,
                extras_in=ScanPart(segment.index, segments),
            )

        summary, lost = await under_lease(self._leases, own, self._lease_seconds, self._clock, stop, verify)
        if lost:
            return "lost", summary.counts
        if summary.stopped_early:
            await self._leases.release(own.lease)
            return "stopped", summary.counts
        # The result first, under the lease, then the segment done: whoever sees every segment done
        # finds every result.
        if not await self._results.record(own.lease, summary.counts):
            return "lost", summary.counts
        finished = await self._leases.checkpoint(own.lease, segment.highest, done=True)
        return ("done" if finished is not None else "lost"), summary.counts
