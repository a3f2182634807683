"""A segment's lease while a job works on it (`HeldLease`): the one way every job keeps its lease."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import attrs

from user_migration.domain.parallel.held_lease import HeldLease
from user_migration.domain.parallel.leases import OwnLease
from user_migration.domain.parallel.segments import Segment, SegmentLease

LEASE = SegmentLease(Segment(0, 0, 99), run=1, owner="w1", counter=1)


class SlowRenews:
    """A lease table whose renews answer only when the test lets them; they bump the counter."""

    def __init__(self, refuse: bool = False) -> None:
        self.refuse = refuse
        self.renew_sent = asyncio.Event()
        self.answer = asyncio.Event()
        self.renews = 0

    async def renew(self, lease: SegmentLease) -> SegmentLease | None:
        self.renew_sent.set()
        await self.answer.wait()
        self.renews += 1
        return None if self.refuse else attrs.evolve(lease, counter=lease.counter + 1)

    async def checkpoint(self, lease: SegmentLease, next_user_id: int, done: bool = False) -> SegmentLease | None:
        return attrs.evolve(lease, counter=lease.counter + 1, checkpoint=next_user_id, done=done)


def held(table: Any, lease_seconds: float = 0.3) -> HeldLease:
    own = OwnLease(LEASE, lease_seconds)
    own.renewed(LEASE, time.monotonic())
    return HeldLease(table, own, lease_seconds, time.monotonic)


async def test_a_job_ending_during_a_renew_waits_for_it_so_its_last_step_starts_from_the_lease_the_table_holds():
    table = SlowRenews()
    lease = held(table, lease_seconds=1.5)  # long enough that a loaded machine's pauses do not expire it
    async with lease.kept(None):
        await asyncio.wait_for(table.renew_sent.wait(), 5)  # a third of a lease after the take
        asyncio.get_running_loop().call_later(0.05, table.answer.set)
    assert table.renews == 1
    assert lease.own.lease.counter == 2  # the renew's answer was taken in, not cancelled away
    assert await lease.change(lambda current: table.checkpoint(current, 99, done=True))
    assert lease.own.lease.done


async def test_a_refused_renew_loses_the_lease_and_stops_the_job():
    table = SlowRenews(refuse=True)
    table.answer.set()
    lease = held(table)
    async with lease.kept(None):
        await asyncio.wait_for(lease.segment_stop.wait(), 5)
    assert lease.lost.is_set()
    assert not lease.still_valid()
    assert not await lease.change(lambda current: table.checkpoint(current, 99, done=True))


async def test_checkpoints_renew_the_lease_so_no_renew_of_its_own_is_sent():
    table = SlowRenews()
    lease = held(table, lease_seconds=3.0)  # a renew of its own would go after 1 s: far beyond these steps
    async with lease.kept(None):
        for position in range(10, 60, 10):
            await asyncio.sleep(0.05)
            assert await lease.change(lambda current, at=position: table.checkpoint(current, at))
    assert (table.renew_sent.is_set(), lease.own.lease.checkpoint, lease.still_valid()) == (False, 50, True)


async def test_a_lease_marked_done_is_not_renewed_while_the_job_ends():
    # The segment's last settle carried its done mark, and the job takes longer than a renew period
    # to end: a renew of the done lease (nobody's now) would be refused and the lease taken for lost.
    table = SlowRenews()
    table.answer.set()
    lease = held(table, lease_seconds=0.3)  # a renew would go out after 0.1 s
    async with lease.kept(None):
        assert await lease.change(lambda current: table.checkpoint(current, 99, done=True))
        await asyncio.sleep(0.5)
    assert (table.renew_sent.is_set(), lease.lost.is_set(), lease.own.lease.done) == (False, False, True)
    # A renew that waited for the done mark's change to end (its turn after it) is not sent either.
    assert not await lease.change(table.renew)
    assert (table.renew_sent.is_set(), lease.lost.is_set()) == (False, False)


async def test_stop_stops_the_job_without_losing_the_lease():
    stop = asyncio.Event()
    lease = held(SlowRenews(), lease_seconds=5.0)
    async with lease.kept(stop):
        stop.set()
        await asyncio.wait_for(lease.segment_stop.wait(), 5)
    assert not lease.lost.is_set()
