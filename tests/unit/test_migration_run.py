"""Whole runs over the source, on the in-memory adapters."""

from __future__ import annotations

import asyncio

import pytest

from tests.factories import valid_user
from user_migration.adapters.memory.harness import InMemoryMigrationState, InMemoryUserSource, InMemoryUserTarget
from user_migration.domain.errors import InvalidParameter, SourceUnavailable, TargetUnavailable
from user_migration.domain.migrate.migration import Migration
from user_migration.domain.migrate.request import RunRequest
from user_migration.domain.migrate.run import NOT_IN_SOURCE, MigrationRun


def wired(users, target=None, state=None, source_class=InMemoryUserSource):
    source = source_class(users)
    target = target or InMemoryUserTarget()
    state = state or InMemoryMigrationState()
    return MigrationRun(source, state, Migration(source, target, state)), source, target, state


async def test_a_whole_run_migrates_every_page_and_reports_every_failure():
    users = [valid_user(i) for i in range(1, 101)]
    users[9] = valid_user(10, username=None)
    users[54] = valid_user(55, status="gone")
    run, _, target, state = wired(users)
    seen = []
    summary = await run.migrate_all(RunRequest(batch_size=7, on_progress=seen.append))
    assert (summary.users_read, summary.migrated, summary.skipped, summary.failed) == (100, 98, 0, 2)
    assert summary.failures == {10: ("Missing required field 'username'",), 55: ("Invalid status 'gone'",)}
    assert len(target.items) == 98
    assert [p.users_read for p in seen] == [*range(7, 100, 7), 100]
    assert summary.resume_from_user_id == 101
    assert (await state.read_progress()).resume_from_user_id == 101


async def test_a_dry_run_writes_nothing_and_records_no_checkpoint():
    run, _, target, state = wired([valid_user(i) for i in range(1, 11)])
    summary = await run.migrate_all(RunRequest(batch_size=3, dry_run=True))
    assert (summary.migrated, summary.dry_run, summary.resume_from_user_id) == (10, True, None)
    assert target.items == {}
    assert (await state.read_progress()).resume_from_user_id is None


async def test_the_checkpoint_never_passes_a_user_that_was_not_written():
    target = InMemoryUserTarget()
    target.refuse = {5: "throttled"}
    run, _, _, state = wired([valid_user(i) for i in range(1, 21)], target=target)
    summary = await run.migrate_all(RunRequest(batch_size=4))
    assert summary.failures == {5: ("Write failed: throttled",)}
    assert summary.resume_from_user_id == 5
    target.refuse = {}
    resumed = await run.migrate_all(RunRequest(start_user_id=await run.resume_point(), batch_size=4))
    assert (resumed.migrated, resumed.skipped) == (1, 15)
    assert sorted(target.items) == list(range(1, 21))
    assert (await state.read_progress()).resume_from_user_id == 21


async def test_an_interrupted_run_resumes_where_it_stopped():
    class FailingSource(InMemoryUserSource):
        fail_from: int | None = None

        async def read_page(self, start_user_id, limit):
            if self.fail_from is not None and start_user_id >= self.fail_from:
                raise SourceUnavailable("PostgreSQL is unavailable")
            return await super().read_page(start_user_id, limit)

    run, source, target, state = wired([valid_user(i) for i in range(1, 31)], source_class=FailingSource)
    source.fail_from = 13
    with pytest.raises(SourceUnavailable):
        await run.migrate_all(RunRequest(batch_size=4))
    assert await run.resume_point() == 13
    assert sorted(target.items) == list(range(1, 13))
    source.fail_from = None
    summary = await run.migrate_all(RunRequest(start_user_id=await run.resume_point(), batch_size=4))
    assert summary.migrated == 18
    assert sorted(target.items) == list(range(1, 31))
    assert (await state.read_progress()).migrated_users == 30


async def test_pages_are_read_ahead_but_only_a_bounded_number():
    class CountingSource(InMemoryUserSource):
        reads = 0

        async def read_page(self, start_user_id, limit):
            self.reads += 1
            return await super().read_page(start_user_id, limit)

    class SlowTarget(InMemoryUserTarget):
        async def write_users(self, items):
            await asyncio.sleep(0.02)
            return await super().write_users(items)

    source = CountingSource([valid_user(i) for i in range(1, 101)])
    state = InMemoryMigrationState()
    target = SlowTarget()
    run = MigrationRun(source, state, Migration(source, target, state), prefetch_pages=2, pages_in_flight=2)
    reads_when_page_done = []
    await run.migrate_all(RunRequest(batch_size=10, on_progress=lambda _: reads_when_page_done.append(source.reads)))
    # When page n is done, the reader is ahead by at most the other page in flight (1), the
    # pages waiting (prefetch, 2) and the one being read (1).
    assert all(reads - done <= 4 for done, reads in enumerate(reads_when_page_done, start=1))
    assert max(reads - done for done, reads in enumerate(reads_when_page_done, start=1)) >= 1


async def test_retry_migrates_exactly_the_given_users():
    users = [valid_user(i) for i in range(1, 11)]
    users[2] = valid_user(3, email="broken")
    run, source, target, _ = wired(users)
    first = await run.migrate_all(RunRequest(batch_size=100))
    assert list(first.failures) == [3]
    source.put(valid_user(3))
    retried = await run.retry([3, 4, 999], batch_size=2)
    assert (retried.migrated, retried.skipped) == (1, 1)
    assert retried.failures == {999: (NOT_IN_SOURCE,)}
    assert from_item_ok(target, 3)


def from_item_ok(target, user_id):
    from tests.factories import from_item

    return from_item(target.items[user_id]) == valid_user(user_id)


async def test_bad_run_parameters_are_refused():
    run, *_ = wired([])
    with pytest.raises(InvalidParameter, match="batch_size"):
        await run.migrate_all(RunRequest(batch_size=0))


class _PacedTarget(InMemoryUserTarget):
    """Writes that take a while (the first page's longest), noting how many run at once."""

    def __init__(self, fail_page_of: int | None = None) -> None:
        super().__init__()
        self.running = 0
        self.most_at_once = 0
        self.fail_page_of = fail_page_of

    async def write_users_if(self, items, rule):
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        try:
            first = min(item.user_id for item in items)
            await asyncio.sleep(0.05 if first == 1 else 0.01)
            if self.fail_page_of is not None and any(item.user_id == self.fail_page_of for item in items):
                raise TargetUnavailable("DynamoDB is unavailable")
            return await super().write_users_if(items, rule)
        finally:
            self.running -= 1


async def test_pages_are_migrated_side_by_side_and_taken_in_page_order():
    target = _PacedTarget()
    source = InMemoryUserSource([valid_user(i) for i in range(1, 36)])
    state = InMemoryMigrationState()
    run = MigrationRun(source, state, Migration(source, target, state), pages_in_flight=3)
    seen = []
    checkpoints = []
    original = state.record_checkpoint

    async def record(resume_from_user_id):
        checkpoints.append(resume_from_user_id)
        await original(resume_from_user_id)

    state.record_checkpoint = record
    summary = await run.migrate_all(
        RunRequest(batch_size=10, on_progress=lambda progress: seen.append(progress.users_read))
    )
    assert target.most_at_once == 3
    assert seen == [10, 20, 30, 35]  # the slow first page is reported first all the same
    assert checkpoints == [11, 21, 31, 36]
    assert (summary.migrated, summary.resume_from_user_id) == (35, 36)


async def test_a_page_that_fails_stops_the_run_and_the_checkpoint_stays_before_it():
    target = _PacedTarget(fail_page_of=25)
    run, _, _, state = wired([valid_user(i) for i in range(1, 61)], target=target)
    with pytest.raises(TargetUnavailable):
        await run.migrate_all(RunRequest(batch_size=10))
    assert await run.resume_point() == 21
    assert set(range(1, 21)) <= set(target.items)
    assert not set(range(21, 31)) & set(target.items)
    target.fail_page_of = None
    resumed = await run.migrate_all(RunRequest(start_user_id=await run.resume_point(), batch_size=10))
    assert sorted(target.items) == list(range(1, 61))
    assert resumed.migrated + resumed.skipped == 40
    assert (await state.read_progress()).migrated_users == 60  # pages written past the failure counted once


async def test_a_stop_finishes_the_pages_in_hand_and_starts_no_more():
    target = _PacedTarget()
    run, *_ = wired([valid_user(i) for i in range(1, 101)], target=target)
    stop = asyncio.Event()
    summary = await run.migrate_all(RunRequest(batch_size=10, stop=stop, on_progress=lambda _: stop.set()))
    assert summary.stopped_early
    # Set when page 1 was reported: pages 2 and 3 had started by then (two in flight), no more.
    assert summary.users_read == 30
    assert sorted(target.items) == list(range(1, 31))
    assert summary.resume_from_user_id == 31 == await run.resume_point()
