"""The migration use case, told as stories on the in-memory adapters."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from tests.factories import from_item, to_item, valid_user
from user_migration.adapters.memory.harness import InMemoryMigrationState, InMemoryUserSource, InMemoryUserTarget
from user_migration.domain.errors import UserNotFound
from user_migration.domain.migrate.migration import Migration
from user_migration.domain.migrate.report import MigrationStats
from user_migration.domain.migrate.request import BatchRequest, SingleUserRequest

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.fixture
def source():
    return InMemoryUserSource(valid_user(i) for i in range(1, 11))


@pytest.fixture
def target():
    return InMemoryUserTarget()


@pytest.fixture
def state():
    return InMemoryMigrationState()


@pytest.fixture
def migration(source, target, state):
    return Migration(source, target, state, clock=lambda: NOW)


async def test_a_batch_is_written_and_recorded(migration, target, state):
    report = await migration.migrate_batch(BatchRequest(start_user_id=1, batch_size=4))
    assert (report.migrated_count, report.skipped_count, report.failed_count) == (4, 0, 0)
    assert report.next_start_user_id == 5
    assert report.dry_run is False
    assert report.processing_time_ms >= 0
    assert sorted(target.items) == [1, 2, 3, 4]
    assert from_item(target.items[3]) == valid_user(3)
    assert target.items[3]["migrated_at"] == {"S": "2026-11-25T12:00:00.000000Z"}
    progress = await state.read_progress()
    assert (progress.migrated_users, progress.last_migrated_user_id) == (4, 4)


async def test_pages_follow_next_start_user_id_to_the_end(migration, target):
    start, pages = 0, 0
    while start is not None:
        report = await migration.migrate_batch(BatchRequest(start_user_id=start, batch_size=3))
        start = report.next_start_user_id
        pages += 1
    assert pages == 4  # 3 + 3 + 3 + 1
    assert sorted(target.items) == list(range(1, 11))


async def test_a_full_last_page_points_past_it_and_the_next_page_is_empty(migration):
    report = await migration.migrate_batch(BatchRequest(start_user_id=1, batch_size=10))
    assert report.next_start_user_id == 11
    empty = await migration.migrate_batch(BatchRequest(start_user_id=11, batch_size=10))
    assert (empty.migrated_count, empty.failed_count, empty.next_start_user_id) == (0, 0, None)


async def test_a_page_holding_the_highest_possible_id_has_no_next_page(target, state):
    top = 2**63 - 1
    source = InMemoryUserSource([valid_user(top)])
    report = await Migration(source, target, state).migrate_batch(BatchRequest(start_user_id=top, batch_size=1))
    assert report.migrated_count == 1
    assert report.next_start_user_id is None


async def test_existing_users_are_skipped_and_never_overwritten(source, state):
    foreign = to_item(valid_user(2, username="someone_else"), NOW)
    target = InMemoryUserTarget([foreign])
    migration = Migration(source, target, state)
    report = await migration.migrate_batch(BatchRequest(start_user_id=1, batch_size=3))
    assert (report.migrated_count, report.skipped_count) == (2, 1)
    assert target.items[2] == foreign
    assert (await state.read_progress()).migrated_users == 2


async def test_a_second_run_skips_everything(migration, target, state):
    await migration.migrate_batch(BatchRequest(batch_size=10))
    before = {user_id: dict(item) for user_id, item in target.items.items()}
    again = await migration.migrate_batch(BatchRequest(batch_size=10))
    assert (again.migrated_count, again.skipped_count, again.failed_count) == (0, 10, 0)
    assert target.items == before  # not one item written again (their migrated_at would differ)
    assert (await state.read_progress()).migrated_users == 10


async def test_invalid_users_are_reported_and_the_rest_migrate(target, state):
    source = InMemoryUserSource(
        [valid_user(1), valid_user(2, username="no"), valid_user(3), valid_user(4, email=None, status="x")]
    )
    report = await Migration(source, target, state).migrate_batch(BatchRequest(batch_size=10))
    assert report.migrated_count == 2
    assert report.failed_count == 2
    assert report.failed_user_ids == [2, 4]
    assert report.errors == [
        "User 2: Invalid username format",
        "User 4: Missing required field 'email'; Invalid status 'x'",
    ]
    assert sorted(target.items) == [1, 3]
    assert report.next_start_user_id is None
    assert await state.failing_users() == {2: ("invalid_username",), 4: ("invalid_status", "missing_email")}


async def test_write_failures_are_reported_per_user_and_not_counted(source, target, state):
    target.refuse = {3: "still unprocessed after 8 attempts"}
    report = await Migration(source, target, state).migrate_batch(BatchRequest(batch_size=5))
    assert report.migrated_count == 4
    assert report.failed_user_ids == [3]
    assert report.errors == ["User 3: Write failed: still unprocessed after 8 attempts"]
    progress = await state.read_progress()
    assert (progress.migrated_users, progress.last_migrated_user_id) == (4, 5)
    assert await state.failing_users() == {3: ("write_failed",)}


async def test_dry_run_reads_validates_and_checks_but_writes_nothing(target, state):
    source = InMemoryUserSource([valid_user(1), valid_user(2), valid_user(3, username=None)])
    target.items[2] = to_item(valid_user(2), NOW)
    report = await Migration(source, target, state).migrate_batch(BatchRequest(batch_size=10, dry_run=True))
    assert report.dry_run is True
    assert (report.migrated_count, report.skipped_count, report.failed_count) == (1, 1, 1)
    assert report.errors == ["User 3: Missing required field 'username'"]
    assert sorted(target.items) == [2]
    assert target.write_calls == 0
    assert (await state.read_progress()).migrated_users == 0


async def test_single_user_mode(migration, target):
    report = await migration.migrate_user(SingleUserRequest(user_id=7))
    assert (report.migrated_count, report.next_start_user_id) == (1, None)
    assert list(target.items) == [7]


async def test_single_user_that_does_not_exist(migration):
    with pytest.raises(UserNotFound) as raised:
        await migration.migrate_user(SingleUserRequest(user_id=999))
    assert raised.value.user_id == 999


async def test_retrying_a_failed_user_after_fixing_its_row(target, state):
    source = InMemoryUserSource([valid_user(1, email="broken")])
    migration = Migration(source, target, state)
    first = await migration.run(SingleUserRequest(user_id=1))
    assert first.failed_user_ids == [1]
    source.put(valid_user(1))
    retry = await migration.run(SingleUserRequest(user_id=1))
    assert (retry.migrated_count, retry.failed_count) == (1, 0)
    assert from_item(target.items[1]) == valid_user(1)


async def test_statistics(migration, state):
    assert await migration.statistics() == MigrationStats(10, 0, 10, None, NOW, True, 0)
    await migration.migrate_batch(BatchRequest(start_user_id=3, batch_size=4))
    assert await migration.statistics() == MigrationStats(10, 4, 6, 6, NOW, True, 0)


async def test_pending_never_goes_below_zero(target, state):
    state.count([10, 20, 30, 40, 50])
    stats = await Migration(InMemoryUserSource([valid_user(1)]), target, state).statistics()
    assert stats.pending_migration == 0


async def test_overlapping_concurrent_batches_write_each_user_once(source, state):
    class SlowTarget(InMemoryUserTarget):
        written_ids: list[int]

        async def write_users_if(self, items, rule):
            await asyncio.sleep(0.01)
            outcome = await super().write_users_if(items, rule)
            self.written_ids = [*getattr(self, "written_ids", []), *outcome.written]
            return outcome

    target = SlowTarget()
    migration = Migration(source, target, state)
    reports = await asyncio.gather(
        *(migration.migrate_batch(BatchRequest(start_user_id=start, batch_size=5)) for start in (1, 3, 1, 4, 6))
    )
    assert sorted(target.written_ids) == list(range(1, 11))
    assert sum(report.migrated_count for report in reports) == 10
    assert (await state.read_progress()).migrated_users == 10
