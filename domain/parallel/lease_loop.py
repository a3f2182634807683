"""The loop every worker of a run (or pass) goes through: look at the leases, take a free or
expired one, work its segment, and again, until every segment is done (see `ports.segment_leases`).

As the Kinesis Client Library's lease taker, a worker reads the lease table once and takes from
that list, reading it again only when the list has nothing more to offer it, a take failed (someone
else changed that lease), or one of its segments ended other than done. A list read a while ago is
safe to take from: every take is conditional on the counter seen, so a lease changed since fails
its take; and an expiry is judged from when this worker read the counter, never from the list's
age.

What "work" means is the caller's: migrating the segment's pages (`domain.parallel.migrate_worker`), or verifying
its rows and its part of the scan for extra items (`domain.parallel.verify_worker`).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import Literal, TypeVar

import attrs

from user_migration.domain.parallel.held_lease import HeldLease, sleep_or_stop
from user_migration.domain.parallel.lease_list import LeaseList
from user_migration.domain.parallel.leases import LeaseObserver, OwnLease, choose_lease
from user_migration.domain.parallel.segments import SegmentLease
from user_migration.ports.segment_leases import SegmentLeases

# How working a segment ended: finished; stopped on request; its lease lost; or its writes failed
# (the worker leaves that segment to the others, or to a later run of the command).
SegmentOutcome = Literal["done", "stopped", "lost", "failed"]

Done = TypeVar("Done")


@attrs.frozen
class LeaseTally:
    """What one worker's loop did with the leases, and what was left of the run when it ended."""

    run: int
    segments_done: int
    lease_takes: int
    lease_steals: int  # of those, taken after another worker's lease expired
    leases_lost: int
    at_end: list[SegmentLease]

    @property
    def unfinished_segments(self) -> int:
        return sum(not lease.done for lease in self.at_end)

    def stopped_early(self, stop: asyncio.Event | None) -> bool:
        """Whether `stop` ended the loop with segments of the run still to do."""
        return stop is not None and stop.is_set() and self.unfinished_segments > 0


async def work_leases(
    leases: SegmentLeases,
    worker: str,
    lease_seconds: float,
    clock: Callable[[], float],
    work: Callable[[OwnLease], Awaitable[SegmentOutcome]],
    restart: bool = False,
    stop: asyncio.Event | None = None,
    rng: random.Random | None = None,
    lanes: int = 1,
) -> LeaseTally:
    """Take and `work` segments until the run is finished, or `stop`; segments whose work failed
    in this worker are not tried again by it. Up to `lanes` segments are worked side by side, each
    under its own lease (a segment this worker is working on is never taken again by it); when one
    of them fails, the others are cancelled and the failure is raised."""
    run = await leases.run_number()
    if restart:
        run = await leases.restart(run)
    chance = rng if rng is not None else random.Random()
    observer = LeaseObserver(lease_seconds)
    counts = {"done": 0, "takes": 0, "steals": 0, "lost": 0}
    failed_here: set[int] = set()
    working: dict[asyncio.Task[SegmentOutcome], int] = {}
    listed = LeaseList()
    at_end: list[SegmentLease] | None = None

    async def one_ended() -> None:
        ended, _ = await asyncio.wait(working, return_when=asyncio.FIRST_COMPLETED)
        for task in ended:
            index = working.pop(task)
            outcome = task.result()
            listed.ended(index, outcome)
            if outcome == "done":
                counts["done"] += 1
            elif outcome == "lost":
                counts["lost"] += 1
            elif outcome == "failed":
                failed_here.add(index)

    try:
        while stop is None or not stop.is_set():
            if len(working) >= lanes:
                await one_ended()
                continue
            busy = set(working.values())
            if listed.leases is None:
                listed.read(await leases.leases())
                observer.observe(listed.leases or [], clock())
            seen = [lease for lease in listed.leases or [] if lease.segment.index not in failed_here | busy]
            now = clock()
            finished = all(lease.done for lease in seen)
            chosen = None if finished else choose_lease(seen, observer, worker, now, chance)
            if chosen is None:
                if working:
                    await one_ended()  # what is left may be this worker's own segments' to finish
                    if listed.pending_besides(busy | failed_here):
                        listed.forget()  # others' leases to look at again (finished, or expired)
                elif finished and listed.fresh:
                    at_end = listed.leases  # read just now, every segment done: the run as it ended
                    break
                elif finished:
                    listed.forget()  # done as far as this worker knows: make sure, from the table
                else:
                    # Only live leases of other workers: wait for them to finish (or to expire).
                    await sleep_or_stop(lease_seconds / 3, stop)
                    listed.forget()
                continue
            sent = clock()
            taken = await leases.take(chosen, worker)
            if taken is None:
                listed.forget()  # another worker was quicker: read the leases again
                continue
            listed.taken(taken)
            counts["takes"] += 1
            counts["steals"] += chosen.owner not in (None, worker)
            own = OwnLease(taken, lease_seconds)
            own.renewed(taken, sent)
            working[asyncio.ensure_future(work(own))] = taken.segment.index
        while working:
            await one_ended()
    finally:
        for task in working:
            task.cancel()
        await asyncio.gather(*working, return_exceptions=True)
    if at_end is None:
        at_end = await leases.leases()
    return LeaseTally(run, counts["done"], counts["takes"], counts["steals"], counts["lost"], at_end)


async def under_lease(
    leases: SegmentLeases,
    own: OwnLease,
    lease_seconds: float,
    clock: Callable[[], float],
    stop: asyncio.Event | None,
    job: Callable[[asyncio.Event], Awaitable[Done]],
) -> tuple[Done, bool]:
    """Run `job(segment_stop)` on the segment of `own` while its lease is kept (`HeldLease`);
    `segment_stop` is set when the lease is lost (the job must stop writing) or when `stop` is.
    What the job returned, and whether the lease was lost meanwhile (or is too old now, by this
    worker's clock, to be relied on)."""
    held = HeldLease(leases, own, lease_seconds, clock)
    async with held.kept(stop):
        result = await job(held.segment_stop)
    return result, not held.still_valid()
