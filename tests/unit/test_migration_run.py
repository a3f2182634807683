"""Whole runs over the source, on the in-memory adapters."""

from __future__ import annotations

import asyncio

import pytest

from adapters.memory import InMemoryMigrationState, InMemoryUserSource, InMemoryUserTarget
from domain.errors import InvalidParameter, SourceUnavailable
from domain.migration import Migration
from domain.migration_run import NOT_IN_SOURCE, MigrationRun
from tests.factories import valid_user


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
    summary = await run.migrate_all(batch_size=7, on_progress=seen.append)
    assert (summary.users_read, summary.migrated, summary.skipped, summary.failed) == (100, 98, 0, 2)
    assert summary.failures == {10: ("Missing required field 'username'",), 55: ("Invalid status 'gone'",)}
    assert len(target.items) == 98
    assert [p.users_read for p in seen] == [*range(7, 100, 7), 100]
    assert summary.resume_from_user_id == 101
    assert (await state.read_progress()).resume_from_user_id == 101


async def test_a_dry_run_writes_nothing_and_records_no_checkpoint():
    run, _, target, state = wired([valid_user(i) for i in range(1, 11)])
    summary = await run.migrate_all(batch_size=3, dry_run=True)
    assert (summary.migrated, summary.dry_run, summary.resume_from_user_id) == (10, True, None)
    assert target.items == {}
    assert (await state.read_progress()).resume_from_user_id is None


async def test_the_checkpoint_never_passes_a_user_that_was_not_written():
    target = InMemoryUserTarget()
    target.refuse = {5: "throttled"}
    run, _, _, state = wired([valid_user(i) for i in range(1, 21)], target=target)
    summary = await run.migrate_all(batch_size=4)
    assert summary.failures == {5: ("Write failed: throttled",)}
    assert summary.resume_from_user_id == 5
    target.refuse = {}
    resumed = await run.migrate_all(start_user_id=await run.resume_point(), batch_size=4)
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
        await run.migrate_all(batch_size=4)
    assert await run.resume_point() == 13
    assert sorted(target.items) == list(range(1, 13))
    source.fail_from = None
    summary = await run.migrate_all(start_user_id=await run.resume_point(), batch_size=4)
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
    run = MigrationRun(source, state, Migration(source, target, state), prefetch_pages=2)
    reads_when_page_done = []
    await run.migrate_all(batch_size=10, on_progress=lambda _: reads_when_page_done.append(source.reads))
    # While page n is written, the reader is ahead by at most prefetch (2) + the one being read.
    assert all(reads - done <= 3 for done, reads in enumerate(reads_when_page_done, start=1))
    assert max(reads - done for done, reads in enumerate(reads_when_page_done, start=1)) >= 1


async def test_retry_migrates_exactly_the_given_users():
    users = [valid_user(i) for i in range(1, 11)]
    users[2] = valid_user(3, email="broken")
    run, source, target, _ = wired(users)
    first = await run.migrate_all(batch_size=100)
    assert list(first.failures) == [3]
    source.put(valid_user(3))
    retried = await run.retry([3, 4, 999], batch_size=2)
    assert (retried.migrated, retried.skipped) == (1, 1)
    assert retried.failures == {999: (NOT_IN_SOURCE,)}
    assert from_item_ok(target, 3)


def from_item_ok(target, user_id):
    from domain.conversion import from_item

    return from_item(target.items[user_id]) == valid_user(user_id)


async def test_bad_run_parameters_are_refused():
    run, *_ = wired([])
    with pytest.raises(InvalidParameter, match="batch_size"):
        await run.migrate_all(batch_size=0)
