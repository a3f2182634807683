"""One leased pass, whatever its job: the worker's name, its lease period and clock, the loop that
takes and works segments, and the one summary every job's worker returns.

Migrate, sync and verify are three jobs of the same machinery (`parallel.migrate_worker`,
`parallel.sync_worker`, `parallel.verify_worker`): each says only what working one segment means
and what its summary holds; the leases, their renewals and the counting of takes, steals and
losses are here, once.
"""

from __future__ import annotations

import asyncio
import functools
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, Protocol, Self, TypeVar

import attrs

from user_migration.domain.counts import counts_added
from user_migration.domain.parallel.lease_loop import LeaseTally, SegmentOutcome, under_lease, work_leases
from user_migration.domain.parallel.leases import OwnLease
from user_migration.ports.segment_leases import SegmentLeases

DEFAULT_LEASE_SECONDS = 10.0  # the KCL's failover time

JobSummary = TypeVar("JobSummary")
WholePass = TypeVar("WholePass")
Done = TypeVar("Done")


class Joinable(Protocol):
    """A job summary that a later pass's can follow (`sync --follow`'s totals)."""

    def then(self, later: Self) -> Self: ...


Joined = TypeVar("Joined", bound=Joinable)


@attrs.frozen
class LeaseCounts:
    """What one worker did with the leases, and how much of its pass was left when it stopped."""

    segments_done: int = 0
    lease_takes: int = 0
    lease_steals: int = 0  # of those, taken after another worker's lease expired
    leases_lost: int = 0
    unfinished_segments: int = 0  # of the pass, when this worker stopped

    @classmethod
    def of(cls, tally: LeaseTally) -> LeaseCounts:
        return cls(
            tally.segments_done, tally.lease_takes, tally.lease_steals, tally.leases_lost, tally.unfinished_segments
        )

    def then(self, later: LeaseCounts) -> LeaseCounts:
        """These leases followed by a later pass's: the counts added, the later pass's remainder."""
        return counts_added(self, later, unfinished_segments=later.unfinished_segments)

    @classmethod
    def added_up(cls, workers: Sequence[LeaseCounts]) -> LeaseCounts:
        """Several workers' counts of the same pass: added, with the remainder seen by the worker
        that saw the fewest unfinished segments (it looked last, so its view is the newest)."""
        total = functools.reduce(counts_added, workers, cls())
        return attrs.evolve(
            total, unfinished_segments=min((counts.unfinished_segments for counts in workers), default=0)
        )


@attrs.frozen
class LeasedPassSummary(Generic[JobSummary, WholePass]):
    """What one worker of a leased pass did: its job's summary of the segments it worked, its
    leases, and (once the pass is finished) the whole pass's result as its job records it."""

    worker: str
    number: int  # the migration's run, or the sync or verify pass
    summary: JobSummary
    leases: LeaseCounts
    whole_pass: WholePass | None = None

    def then(
        self: LeasedPassSummary[Joined, WholePass], later: LeasedPassSummary[Joined, WholePass]
    ) -> LeasedPassSummary[Joined, WholePass]:
        """This worker's passes followed by a later one."""
        return LeasedPassSummary(
            self.worker,
            later.number,
            self.summary.then(later.summary),
            self.leases.then(later.leases),
            later.whole_pass,
        )


class LeasedPass:
    """A worker's side of a leased pass: who it is, how long its leases last, and its loop."""

    def __init__(
        self,
        leases: SegmentLeases,
        worker: str | None = None,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.leases = leases
        self.worker = worker if worker is not None else uuid.uuid4().hex[:12]
        self.lease_seconds = lease_seconds
        self.clock = clock
        self._rng = random.Random()

    async def work(
        self,
        work: Callable[[OwnLease], Awaitable[SegmentOutcome]],
        restart: bool = False,
        stop: asyncio.Event | None = None,
        lanes: int = 1,
    ) -> LeaseTally:
        """Take and `work` segments until the pass is finished (or `stop`), up to `lanes` at once."""
        return await work_leases(
            self.leases, self.worker, self.lease_seconds, self.clock, work, restart, stop, self._rng, lanes
        )

    async def under_lease(
        self, own: OwnLease, stop: asyncio.Event | None, job: Callable[[asyncio.Event], Awaitable[Done]]
    ) -> tuple[Done, bool]:
        """`job` on the segment of `own`, its lease renewed meanwhile (`lease_loop.under_lease`)."""
        return await under_lease(self.leases, own, self.lease_seconds, self.clock, stop, job)

    def summary(
        self, tally: LeaseTally, summary: JobSummary, whole_pass: WholePass | None = None
    ) -> LeasedPassSummary[JobSummary, WholePass]:
        """This worker's summary of the pass `tally` ended."""
        return LeasedPassSummary(self.worker, tally.run, summary, LeaseCounts.of(tally), whole_pass)
