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
import time
from collections.abc import Awaitable
from typing import TypeAlias

import attrs

from user_migration.domain.errors import InvalidParameter
from user_migration.domain.parallel.lease_loop import SegmentOutcome
from user_migration.domain.parallel.leased_pass import LeasedPass, LeasedPassSummary
from user_migration.domain.parallel.leases import OwnLease
from user_migration.domain.parallel.segments import ScanPart
from user_migration.domain.verify.differences import Difference, VerifyCounts, VerifyProgress, VerifySummary
from user_migration.domain.verify.request import VerifyRequest
from user_migration.domain.verify.verification import Verification, VerifyProgressCallback
from user_migration.ports.verify_results import VerifyResults

# What one worker verified (the segments it finished), and its leases; the whole pass's counts
# (every segment's recorded result) once it is finished.
VerifyWorkerSummary: TypeAlias = LeasedPassSummary[VerifySummary, VerifyCounts]


def is_clean(worked: VerifyWorkerSummary) -> bool:
    """Whether the pass is finished and found nothing failing (after a repair: nothing remains)."""
    if worked.whole_pass is None:
        return False
    return (worked.whole_pass.not_repaired if worked.summary.repair else worked.whole_pass.failing) == 0


class VerifyWorker:
    """Verifies the pass's segments until none is left (or `stop`)."""

    def __init__(
        self,
        verification: Verification,
        results: VerifyResults,
        leased: LeasedPass,
    ) -> None:
        self._verification = verification
        self._results = results
        self._pass = leased
        self._leases = leased.leases
        self.worker = leased.worker

    async def run(self, request: VerifyRequest, restart: bool = False) -> VerifyWorkerSummary:
        """Take and verify segments until the pass is finished; `restart` begins a new pass. The
        segments are the id ranges: a request for a range of its own is refused."""
        if request.start_user_id is not None or request.end_user_id is not None:
            raise InvalidParameter("start_user_id", "a verify pass's workers verify the whole id space")
        on_difference, on_progress, stop = request.on_difference, request.on_progress, request.stop
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
            outcome, counts = await self._verify_segment(own, segments, request, found, progress_of)
            if outcome == "done":
                total.include(counts)
                if on_difference is not None:
                    for difference in found:
                        on_difference(difference)
            return outcome

        leased = await self._pass.work(work, restart, stop)
        summary = VerifySummary(total, request.repair, time.perf_counter() - started, leased.stopped_early(stop))
        finished = leased.unfinished_segments == 0
        pass_counts = await self._pass_counts(leased.run, segments) if finished else None
        self._verification.record_latest(pass_counts if pass_counts is not None else total)
        return self._pass.summary(leased, summary, pass_counts)

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
        request: VerifyRequest,
        found: list[Difference],
        on_progress: VerifyProgressCallback,
    ) -> tuple[SegmentOutcome, VerifyCounts]:
        """Verify the segment's rows and its part of the scan; its lease renewed meanwhile."""
        segment = own.lease.segment

        def verify(segment_stop: asyncio.Event) -> Awaitable[VerifySummary]:
            segment_request = attrs.evolve(
                request,
                start_user_id=segment.lowest,
                end_user_id=segment.highest,
                on_difference=found.append,
                on_progress=on_progress,
                stop=segment_stop,
            )
            return self._verification.verify(segment_request, extras_in=ScanPart(segment.index, segments))

        summary, lost = await self._pass.under_lease(own, request.stop, verify)
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
