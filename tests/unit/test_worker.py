"""Workers of one run sharing the segments, on the in-memory adapters."""

from __future__ import annotations

import asyncio

import attrs
import pytest

from tests.factories import valid_user
from user_migration.adapters.memory.harness import InMemoryMigrationState, InMemoryUserSource, InMemoryUserTarget
from user_migration.adapters.memory.leases import InMemorySegmentLeases
from user_migration.domain.errors import TargetUnavailable
from user_migration.domain.migrate.migration import Migration
from user_migration.domain.parallel.leased_pass import LeasedPass
from user_migration.domain.parallel.leases import LeaseObserver, OwnLease, choose_lease
from user_migration.domain.parallel.migrate_worker import SegmentWorker
from user_migration.domain.parallel.segments import (
    SegmentLease,
    SegmentPlan,
    quantile_boundaries,
    resume_point,
    segments_for,
)
from user_migration.entrypoints.cli.main import build_parser
from user_migration.entrypoints.cli.workers import is_worker_run
from user_migration.entrypoints.http.segment_metrics import SegmentsCollector


class CountingSource(InMemoryUserSource):
    def __init__(self, users):
        super().__init__(users)
        self.reads: list[int] = []

    async def read_page(self, start_user_id, limit, highest=2**63 - 1):
        page = await super().read_page(start_user_id, limit, highest)
        self.reads.extend(user.id for user in page)
        return page


def wired(user_ids, segments=16):
    source = CountingSource([valid_user(i) for i in user_ids])
    target, state = InMemoryUserTarget(), InMemoryMigrationState()

    async def propose():
        return await source.segment_boundaries(segments)

    leases = InMemorySegmentLeases(propose)
    migration = Migration(source, target, state)
    return source, target, state, leases, migration


def test_a_plan_covers_every_id_once_and_splits_skewed_ids_evenly():
    ids = sorted({3**k for k in range(1, 39)} | set(range(1, 200)))  # dense low ids, sparse huge ones
    plan = SegmentPlan.from_boundaries(quantile_boundaries(ids, 8))
    sizes = [sum(1 for i in ids if i in segment) for segment in plan]
    assert sum(sizes) == len(ids)
    assert max(sizes) - min(sizes) <= 2
    assert plan[0].lowest == 0
    assert plan[len(plan) - 1].highest == 2**63 - 1
    assert all(plan[i].highest + 1 == plan[i + 1].lowest for i in range(len(plan) - 1))
    assert plan.covering(plan[2].lowest, plan[4].lowest) == [plan[2], plan[3], plan[4]]
    assert segments_for(0) == 1
    assert segments_for(2_000) == 4
    assert segments_for(100_000) == 16
    assert segments_for(10_000_000) == 200
    assert segments_for(10**9) == 1024
    # A smaller floor (SEGMENT_MIN_USERS) splits a small source into more segments, never more than 16.
    assert segments_for(2_000, 100) == 16
    assert segments_for(400, 100) == 4
    assert segments_for(99, 100) == 1
    assert segments_for(10**9, 1) == 1024


async def test_four_workers_read_each_user_once_and_count_exactly():
    user_ids = [*range(1, 3001), *(2**40 + 7 * k for k in range(500))]
    source, target, state, leases, migration = wired(user_ids)
    workers = [SegmentWorker(source, migration, LeasedPass(leases, worker=f"w{n}")) for n in range(4)]
    summaries = await asyncio.gather(*(w.run(batch_size=100) for w in workers))
    assert sorted(source.reads) == sorted(user_ids)
    assert sum(s.summary.users_read for s in summaries) == len(user_ids)
    assert sum(s.summary.migrated for s in summaries) == len(user_ids) == len(target.items)
    assert (await state.read_progress()).migrated_users == len(user_ids)
    assert sum(s.leases.segments_done for s in summaries) == 16
    assert all(s.leases.unfinished_segments == 0 for s in summaries)
    assert all(lease.done for lease in await leases.leases())


class SegmentsInFlight:
    """Wraps `migrate_users` to count the segments whose pages are being migrated at once."""

    def __init__(self, migration: Migration, leases: InMemorySegmentLeases) -> None:
        self.now: dict[int, int] = {}
        self.most = 0
        self.most_pages = 0
        self._migrate = migration.migrate_users
        self._leases = leases
        migration.migrate_users = self.migrate  # type: ignore[method-assign]

    async def migrate(self, users, dry_run, rewrite=False, fence=lambda: None, closing=None):
        if not users:
            return await self._migrate(users, dry_run, rewrite, fence, closing)
        plan = SegmentPlan.from_boundaries([lease.segment.lowest for lease in await self._leases.leases()])
        (index,) = {plan.index_of(user.id) for user in users}
        self.now[index] = self.now.get(index, 0) + 1
        self.most = max(self.most, len(self.now))
        self.most_pages = max(self.most_pages, sum(self.now.values()))
        try:
            await asyncio.sleep(0.01)  # long enough for the other lanes to take their segments
            return await self._migrate(users, dry_run, rewrite, fence, closing)
        finally:
            self.now[index] -= 1
            if not self.now[index]:
                del self.now[index]


@pytest.mark.parametrize("lanes", [1, 3])
async def test_a_worker_migrates_up_to_its_segments_in_flight_side_by_side_each_once(lanes: int):
    user_ids = list(range(1, 1601))
    source, target, state, leases, migration = wired(user_ids, segments=8)
    seen = SegmentsInFlight(migration, leases)
    worker = SegmentWorker(source, migration, LeasedPass(leases, worker="w"), segments_in_flight=lanes)
    summary = await asyncio.wait_for(worker.run(batch_size=50), 10)
    assert seen.most == lanes
    # The worker's pages in flight (2 by default) are shared by its segments, one each at least.
    assert seen.most_pages == max(2, lanes)
    assert sorted(source.reads) == user_ids  # each page read once: no segment taken twice
    assert summary.summary.migrated == len(user_ids) == len(target.items)
    assert (await state.read_progress()).migrated_users == len(user_ids)
    assert (summary.leases.segments_done, summary.leases.lease_takes, summary.leases.unfinished_segments) == (8, 8, 0)
    assert all(lease.done for lease in await leases.leases())


async def test_segments_in_flight_hold_no_more_pages_read_and_unmigrated_than_the_worker_s_turns():
    """A worker's memory does not grow with its segments in flight: the pages it has read and not
    yet migrated are at most its pages in flight and read ahead (2 + 2), whatever the segments."""
    source, target, _state, leases, migration = wired(range(1, 4001), segments=8)
    unmigrated, most = [0], [0]
    real_read, real_migrate = source.read_page, migration.migrate_users

    async def read_page(start_user_id, limit, highest=2**63 - 1):
        page = await real_read(start_user_id, limit, highest)
        unmigrated[0] += 1
        most[0] = max(most[0], unmigrated[0])
        return page

    async def slow_migrate(users, dry_run, rewrite=False, fence=lambda: None, closing=None):
        try:
            await asyncio.sleep(0.005)
            return await real_migrate(users, dry_run, rewrite, fence, closing)
        finally:
            unmigrated[0] -= 1

    source.read_page = read_page  # type: ignore[method-assign]
    migration.migrate_users = slow_migrate  # type: ignore[method-assign]
    worker = SegmentWorker(
        source, migration, LeasedPass(leases), segments_in_flight=4, prefetch_pages=2, pages_in_flight=2
    )
    summary = await asyncio.wait_for(worker.run(batch_size=50), 20)
    assert summary.summary.migrated == 4000 == len(target.items)
    assert most[0] == 4


async def test_a_failure_in_one_segment_in_flight_stops_the_others_and_is_raised():
    source, target, _state, leases, migration = wired(range(1, 801), segments=4)
    real_migrate = migration.migrate_users
    started = asyncio.Event()
    cancelled = []

    async def fail_one(users, dry_run, rewrite=False, fence=lambda: None, closing=None):
        if users[0].id == 1:
            await started.wait()
            raise TargetUnavailable("DynamoDB is unavailable")
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.append(users[0].id)
            raise
        return await real_migrate(users, dry_run, rewrite, fence, closing)

    migration.migrate_users = fail_one  # type: ignore[method-assign]
    # Turns enough that the three segments held up cannot take every one before the failing one reads.
    worker = SegmentWorker(
        source, migration, LeasedPass(leases), segments_in_flight=4, prefetch_pages=8, pages_in_flight=8
    )
    with pytest.raises(TargetUnavailable):
        await asyncio.wait_for(worker.run(batch_size=50), 10)
    assert cancelled  # the other lanes did not go on after the failure
    assert not target.items
    assert not any(lease.done for lease in await leases.leases())


async def test_a_finished_run_is_not_walked_again_unless_restarted():
    source, _target, state, leases, migration = wired(range(1, 501))
    await SegmentWorker(source, migration, LeasedPass(leases)).run(batch_size=50)
    again = await SegmentWorker(source, migration, LeasedPass(leases)).run(batch_size=50)
    assert again.summary.users_read == 0
    assert again.number == 1
    restarted = await SegmentWorker(source, migration, LeasedPass(leases)).run(batch_size=50, restart=True)
    assert (restarted.number, restarted.summary.users_read, restarted.summary.skipped) == (2, 500, 500)
    assert (await state.read_progress()).migrated_users == 500


async def test_a_worker_that_lost_its_lease_writes_nothing_more_and_claims_only_its_checkpoints():
    source, target, state, leases, migration = wired(range(1, 201), segments=1)
    now = [0.0]
    worker = SegmentWorker(
        source, migration, LeasedPass(leases, worker="stale", lease_seconds=10, clock=lambda: now[0])
    )
    pages = 0
    real_migrate = migration.migrate_users

    async def migrate_then_pause(users, dry_run, rewrite=False, fence=lambda: None, closing=None):
        nonlocal pages
        pages += 1
        if pages == 3:
            now[0] += 60  # paused past its lease before the third page's write
        return await real_migrate(users, dry_run, rewrite, fence, closing)

    migration.migrate_users = migrate_then_pause  # type: ignore[method-assign]
    result = await asyncio.wait_for(worker.run(batch_size=20), 5)
    # Pages 1 and 2 were written and checkpointed; page 3 was fenced off before its write (40
    # items when the lease was found lost); the worker then took the segment again through the
    # lease table, like any other worker would, and finished it from its checkpoint, once.
    assert (result.leases.leases_lost, result.leases.lease_takes, result.leases.segments_done) == (1, 2, 1)
    assert result.summary.migrated == 200 == len(target.items)
    assert (await state.read_progress()).migrated_users == 200


async def test_a_worker_paused_after_its_writes_claims_them_and_the_summaries_add_up():
    """Paused (SIGSTOP) after a page's writes landed and were settled, past its lease: the page
    is not checkpointed, and the next holder reads it again and finds the users stored. The
    paused worker's summary still claims what it wrote, so the summaries add up to the users moved."""
    source, target, state, leases, migration = wired(range(1, 201), segments=1)
    now = [0.0]
    stale = SegmentWorker(source, migration, LeasedPass(leases, worker="stale", lease_seconds=10, clock=lambda: now[0]))
    pages = 0
    real_migrate = migration.migrate_users

    async def write_then_pause(users, dry_run, rewrite=False, fence=lambda: None, closing=None):
        nonlocal pages
        pages += 1
        page = pages
        outcome = await real_migrate(users, dry_run, rewrite, fence, closing)
        if page == 3:
            now[0] += 60  # paused past its lease after the third page's write and settle
        return outcome

    migration.migrate_users = write_then_pause  # type: ignore[method-assign]
    result = await asyncio.wait_for(stale.run(batch_size=20), 5)
    assert result.leases.leases_lost == 1
    assert result.summary.skipped > 0  # the pages read again found what the lost lease wrote
    assert result.summary.migrated == 200 == len(target.items)
    assert (await state.read_progress()).migrated_users == 200


async def test_a_page_that_fails_after_the_lease_ran_out_is_left_to_the_next_holder():
    """Stalled so long that its hold expired too: the page's failure is not this worker's to
    report (the segment is someone else's now); the page is done again, once, by the next holder."""
    source, target, state, leases, migration = wired(range(1, 201), segments=1)
    now = [0.0]
    stale = SegmentWorker(source, migration, LeasedPass(leases, worker="stale", lease_seconds=10, clock=lambda: now[0]))
    calls = 0
    real_migrate = migration.migrate_users

    async def stall_then_fail(users, dry_run, rewrite=False, fence=lambda: None, closing=None):
        nonlocal calls
        calls += 1
        if calls == 3:
            now[0] += 60
            raise TargetUnavailable("the hold on these users expired before writing; nothing was written")
        return await real_migrate(users, dry_run, rewrite, fence, closing)

    migration.migrate_users = stall_then_fail  # type: ignore[method-assign]
    result = await asyncio.wait_for(stale.run(batch_size=20), 5)
    assert result.leases.leases_lost == 1
    assert result.summary.migrated == 200 == len(target.items)
    assert (await state.read_progress()).migrated_users == 200
    # The same failure while the lease is valid is an outage: raised, as ever.
    source, target, state, leases, migration = wired(range(1, 201), segments=1)
    calls = 0
    real_migrate = migration.migrate_users

    async def fail(users, dry_run, rewrite=False, fence=lambda: None, closing=None):
        raise TargetUnavailable("DynamoDB is unavailable")

    migration.migrate_users = fail  # type: ignore[method-assign]
    with pytest.raises(TargetUnavailable):
        await SegmentWorker(source, migration, LeasedPass(leases, clock=lambda: now[0])).run(batch_size=20)


async def test_a_segment_marked_done_under_its_lease_is_done_even_when_the_answer_came_late():
    """The table accepted the done mark (it checks the lease is still this worker's), but its
    answer came after the lease's time here: the segment is done, and said so, not lost."""
    source, _target, _state, leases, migration = wired(range(1, 101), segments=1)
    now = [0.0]
    real_checkpoint = leases.checkpoint

    async def late_done(lease, position, done=False):
        changed = await real_checkpoint(lease, position, done=done)
        if done:
            now[0] += 60  # the answer to the done mark arrives after the lease's time
        return changed

    leases.checkpoint = late_done  # type: ignore[method-assign]
    worker = SegmentWorker(source, migration, LeasedPass(leases, lease_seconds=10, clock=lambda: now[0]))
    result = await asyncio.wait_for(worker.run(batch_size=20), 5)
    assert (result.leases.segments_done, result.leases.leases_lost, result.leases.unfinished_segments) == (1, 0, 0)
    assert result.summary.migrated == 100


def test_only_free_or_expired_leases_of_others_are_chosen():
    plan = SegmentPlan.from_boundaries([10, 20])
    observer = LeaseObserver(lease_seconds=10)
    busy = [SegmentLease(plan[i], 1, "other", 5) for i in range(3)]
    observer.observe(busy, now=0)
    rng = __import__("random").Random(1)
    assert choose_lease(busy, observer, "me", now=9.9, rng=rng) is None
    assert choose_lease(busy, observer, "me", now=10, rng=rng) in busy
    renewed = [attrs.evolve(busy[0], counter=6), *busy[1:]]
    observer.observe(renewed, now=10)
    assert choose_lease(renewed, observer, "me", now=15, rng=rng) in renewed[1:]
    own = OwnLease(busy[0], lease_seconds=10)
    own.renewed(busy[0], sent_at=100)
    assert own.valid(107)
    assert not own.valid(107.5)


async def test_the_metrics_show_segments_by_state_and_the_lease_takes_and_steals():
    source, _target, _state, leases, migration = wired(range(1, 1001), segments=4)
    collector = SegmentsCollector()
    await collector.refresh(leases)
    assert metric_values(collector)["user_migration_segments"] == {"pending": 4, "leased": 0, "done": 0}
    plan = await leases.plan()
    dead = await leases.take((await leases.leases())[0], "dead")  # a worker that then died
    assert dead is not None
    assert dead.segment == plan[0]
    now = [0.0]

    async def later() -> None:
        # Once: the dead worker's lease expires (a clock that kept jumping would expire the
        # survivor's own leases too, in every page that takes longer than a tick, as on a busy machine).
        now[0] = 100.0

    survivor = SegmentWorker(
        source, migration, LeasedPass(leases, worker="survivor", lease_seconds=10, clock=lambda: now[0])
    )
    ticking = asyncio.create_task(tick(later))
    try:
        summary = await asyncio.wait_for(survivor.run(batch_size=100), 5)
    finally:
        ticking.cancel()
    assert (summary.leases.lease_steals, summary.leases.segments_done) == (1, 4)
    await collector.refresh(leases)
    values = metric_values(collector)
    assert values["user_migration_segments"] == {"pending": 0, "leased": 0, "done": 4}
    # The dead worker's take, and the survivor's (a lease of its own that ran out at the jump included).
    assert values["user_migration_lease_takes"] == 1 + summary.leases.lease_takes
    assert values["user_migration_lease_steals"] == 1
    assert values["user_migration_run"] == 1


async def tick(step) -> None:
    while True:
        await asyncio.sleep(0.01)
        await step()


def metric_values(collector: SegmentsCollector) -> dict:
    values: dict = {}
    for family in collector.collect():
        for sample in family.samples:
            if "state" in sample.labels:
                values.setdefault(family.name, {})[sample.labels["state"]] = sample.value
            elif not sample.name.endswith("_created"):
                values[family.name] = sample.value
    return values


@pytest.mark.parametrize(
    ("arguments", "worker"),
    [
        (["--all"], True),
        (["--all", "--resume"], True),
        (["--all", "--workers", "3"], True),
        (["--all", "--restart"], True),
        (["--all", "--dry-run"], False),
        (["--all", "--rewrite"], False),
        (["--all", "--start-user-id", "5"], False),
        (["--user-id", "5"], False),
    ],
)
def test_every_migrate_all_is_a_worker_of_the_run_but_the_walks_of_its_own(arguments: list[str], worker: bool):
    assert is_worker_run(build_parser().parse_args(["migrate", *arguments])) is worker


def test_the_resume_point_is_the_lowest_checkpoint_of_an_unfinished_segment():
    plan = SegmentPlan.from_boundaries([100, 200])
    done, halfway, untouched = (SegmentLease(segment, 1) for segment in plan)
    leases = [attrs.evolve(done, checkpoint=100, done=True), attrs.evolve(halfway, checkpoint=150), untouched]
    assert resume_point(leases) == 150
    assert resume_point([leases[0], attrs.evolve(halfway, checkpoint=200, done=True)]) is None


async def test_a_segment_s_last_page_checkpoint_is_its_done_mark():
    # About 295 users a segment: 3 pages each, the last one short (a full last page is known to be
    # the last only when the next read finds nothing, and the done mark then goes on its own).
    source, target, state, leases, migration = wired(range(1, 1181), segments=4)
    checkpoints: list[tuple[int, bool]] = []
    real_checkpoint = leases.checkpoint

    async def checkpoint(lease, next_user_id, done=False):
        checkpoints.append((lease.segment.index, done))
        return await real_checkpoint(lease, next_user_id, done)

    leases.checkpoint = checkpoint  # type: ignore[method-assign]
    summary = await SegmentWorker(source, migration, LeasedPass(leases), segments_in_flight=2).run(batch_size=100)
    assert summary.leases.segments_done == 4
    assert sorted(checkpoints) == sorted(
        [(i, False) for i in range(4) for _ in range(2)] + [(i, True) for i in range(4)]
    )
    assert all(lease.done and lease.owner is None for lease in await leases.leases())
    assert (await state.read_progress()).migrated_users == 1180 == len(target.items)


async def test_a_segment_whose_last_page_failed_is_released_not_done():
    source, target, _state, leases, migration = wired(range(1, 401), segments=2)
    target.refuse[400] = "throttled"
    summary = await SegmentWorker(source, migration, LeasedPass(leases)).run(batch_size=100)
    assert summary.leases.segments_done == 1
    last = (await leases.leases())[1]
    assert (last.done, last.owner, last.checkpoint) == (False, None, 400)
