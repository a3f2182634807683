"""Workers of a pass of `sync --workers` on the in-memory adapters: together they carry what one
`sync` carries, each change and delete once, the pass's cursor and count recorded once; a worker
whose lease ran out claims nothing of that segment; a failed write leaves the pass unfinished."""

from __future__ import annotations

import asyncio

import pytest

from tests.factories import from_item, valid_user
from tests.unit.test_sync import LATER, NOW, World, backfilled, make_world
from user_migration.adapters.memory.leases import InMemorySegmentLeases
from user_migration.adapters.memory.sync_passes import InMemorySyncPasses
from user_migration.domain.parallel.leased_pass import LeasedPass
from user_migration.domain.parallel.sync_worker import SyncWorker
from user_migration.domain.sync.request import FollowRequest, SyncRequest


@pytest.fixture
def world() -> World:
    return make_world()


async def pass_over(w: World, segments: int) -> tuple[InMemorySegmentLeases, InMemorySyncPasses]:
    async def propose():
        return await w.source.segment_boundaries(segments)

    leases = InMemorySegmentLeases(propose)
    assert len(await leases.plan()) == segments
    return leases, InMemorySyncPasses(leases)


def sync_worker(w: World, leases, passes, name: str, **lease_options) -> SyncWorker:
    return SyncWorker(w.sync, w.source, w.state, passes, LeasedPass(leases, name, **lease_options), now=lambda: NOW)


def changes(w: World) -> None:
    w.source.put(valid_user(12, email="changed@example.com", updated_at=LATER))
    w.source.put(valid_user(3))  # inserted below every id so far
    w.source.delete(25)
    w.source.delete(29)


async def test_workers_of_one_pass_carry_each_change_once_and_record_the_cursor_once(world):
    await backfilled(world)
    before = (await world.state.read_progress()).change_cursor
    changes(world)
    leases, passes = await pass_over(world, segments=4)
    workers = [sync_worker(world, leases, passes, name, lease_seconds=1.0) for name in ("a", "b", "c")]
    summaries = await asyncio.gather(*(worker.run_pass(SyncRequest(batch_size=3)) for worker in workers))
    assert sum(s.summary.written for s in summaries) == 2
    assert sum(s.summary.deleted for s in summaries) == 2
    assert sum(s.leases.segments_done for s in summaries) == 4
    assert all(s.number == 1 and s.leases.unfinished_segments == 0 for s in summaries)
    assert all(s.whole_pass == 4 and s.summary.caught_up for s in summaries)
    assert sorted(world.target.items) == [3, *range(10, 25), *range(26, 29)]
    progress = await world.state.read_progress()
    assert progress.changes_applied == 4  # once, though three workers saw the pass finished
    assert progress.migrated_users == 19
    assert progress.change_cursor is not None
    assert progress.change_cursor != before
    assert await leases.run_number() == 1  # the next pass is begun by the next worker to come
    # The next pass goes on from the recorded cursor: nothing more to carry.
    again = await sync_worker(world, leases, passes, "d").run_pass(SyncRequest(batch_size=3))
    assert (again.number, again.summary.changes_seen, again.whole_pass) == (2, 0, 0)
    assert not again.summary.full_pass


async def test_without_a_recorded_cursor_the_pass_reads_every_row(world):
    leases, passes = await pass_over(world, segments=3)
    summary = await sync_worker(world, leases, passes, "a").run_pass(SyncRequest(batch_size=4))
    assert summary.summary.full_pass
    assert (summary.summary.written, summary.whole_pass) == (20, 20)
    assert (await world.state.read_progress()).migrated_users == 20


async def test_a_worker_whose_lease_ran_out_claims_nothing_of_that_segment(world):
    await backfilled(world)
    changes(world)
    leases, passes = await pass_over(world, segments=2)
    now = [0.0]
    worker = sync_worker(world, leases, passes, "w", lease_seconds=10, clock=lambda: now[0])
    original = world.sync.carry
    stalls = [1]

    async def carry_then_stall(*args, **kwargs):
        carried = await original(*args, **kwargs)
        if stalls:  # the first segment: the worker ran past its lease before marking it done
            stalls.pop()
            now[0] += 100
        return carried

    world.sync.carry = carry_then_stall  # type: ignore[method-assign]
    summary = await asyncio.wait_for(worker.run_pass(SyncRequest(batch_size=4)), 10)
    assert (summary.leases.leases_lost, summary.leases.segments_done, summary.leases.unfinished_segments) == (1, 2, 0)
    # The lost segment was carried again; what it wrote the first time is not claimed twice.
    assert summary.summary.written + summary.summary.deleted <= 4
    assert summary.whole_pass == summary.summary.written + summary.summary.deleted
    assert (await world.state.read_progress()).migrated_users == 19
    assert 25 not in world.target.items
    assert 29 not in world.target.items


async def test_a_failed_write_leaves_the_pass_unfinished_and_the_cursor_where_it_was(world):
    await backfilled(world)
    before = (await world.state.read_progress()).change_cursor
    changes(world)
    leases, passes = await pass_over(world, segments=2)
    world.target.refuse[12] = "ProvisionedThroughputExceededException"
    first = await sync_worker(world, leases, passes, "a").run_pass(SyncRequest(batch_size=4))
    assert first.leases.unfinished_segments >= 1
    assert first.whole_pass is None
    assert not first.summary.caught_up
    assert first.summary.failures == {12: first.summary.failures[12]}
    assert (await world.state.read_progress()).change_cursor == before
    del world.target.refuse[12]
    second = await sync_worker(world, leases, passes, "b").run_pass(SyncRequest(batch_size=4))
    assert (second.number, second.leases.unfinished_segments) == (1, 0)
    assert from_item(world.target.items[12]).email == "changed@example.com"
    assert (await world.state.read_progress()).change_cursor != before


async def test_follow_runs_pass_after_pass_until_stopped(world):
    await backfilled(world)
    leases, passes = await pass_over(world, segments=2)
    worker = sync_worker(world, leases, passes, "a")
    stop = asyncio.Event()
    seen = []

    def on_pass(summary):
        seen.append(summary)
        if len(seen) == 1:
            world.source.put(valid_user(40))
        else:
            stop.set()

    total = await asyncio.wait_for(worker.follow(FollowRequest(0.01, stop, batch_size=5, on_pass=on_pass)), 10)
    assert [s.number for s in seen] == [1, 2]
    assert (total.summary.passes, total.summary.written, total.leases.segments_done) == (2, 1, 4)
    assert 40 in world.target.items
