"""`sync`, told as stories on the in-memory adapters: changes, inserts at low ids, deletes,
items the application wrote, failures that keep the cursor, and the counters."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import attrs
import pytest

from tests.factories import UPDATED, from_item, to_item, valid_user
from user_migration.adapters.memory.harness import InMemoryMigrationState, InMemoryUserSource, InMemoryUserTarget
from user_migration.domain.errors import InvalidParameter, SetupError, SourceUnavailable
from user_migration.domain.migrate.migration import Migration
from user_migration.domain.migrate.request import BatchRequest, RunRequest
from user_migration.domain.migrate.run import MigrationRun
from user_migration.domain.sync.poll import ChangeSync
from user_migration.domain.sync.request import FollowRequest, SyncRequest
from user_migration.domain.write.changes import ChangeWrites
from user_migration.domain.write.ledger import WriteLedger

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
LATER = UPDATED + timedelta(days=1)


@attrs.define
class World:
    source: InMemoryUserSource
    target: InMemoryUserTarget
    state: InMemoryMigrationState
    migration: Migration
    run: MigrationRun
    sync: ChangeSync


def make_world() -> World:
    """Twenty valid users in the source; an empty target and state."""
    source = InMemoryUserSource(valid_user(i) for i in range(10, 30))
    target = InMemoryUserTarget()
    state = InMemoryMigrationState()
    migration = Migration(source, target, state, clock=lambda: NOW)
    run = MigrationRun(source, state, migration)
    return World(
        source,
        target,
        state,
        migration,
        run,
        ChangeSync(
            source, target, state, ChangeWrites(WriteLedger(target, state), clock=lambda: NOW), clock=lambda: NOW
        ),
    )


@pytest.fixture
def world() -> World:
    return make_world()


async def backfilled(world: World) -> World:
    summary = await world.run.migrate_all(RunRequest(batch_size=7))
    assert summary.migrated == 20
    return world


async def test_the_backfill_records_where_sync_starts(world):
    assert (await world.state.read_progress()).change_cursor is None
    await backfilled(world)
    cursor = (await world.state.read_progress()).change_cursor
    assert cursor is not None
    assert cursor.taken_at == NOW
    summary = await world.sync.catch_up(SyncRequest())
    assert (summary.changes_seen, summary.written, summary.deleted, summary.failed) == (0, 0, 0, 0)
    assert summary.caught_up
    assert not summary.full_pass
    assert summary.lag_seconds == 0.0


async def test_updates_inserts_at_low_ids_and_deletes_reach_the_target(world):
    await backfilled(world)
    world.source.put(valid_user(12, email="changed@example.com", updated_at=LATER))
    world.source.put(valid_user(3))  # below every id the backfill saw
    world.source.delete(25)
    summary = await world.sync.catch_up(SyncRequest(batch_size=2))
    assert (summary.written, summary.deleted, summary.failed) == (2, 1, 0)
    assert summary.changes_seen == 3
    assert from_item(world.target.items[12]).email == "changed@example.com"
    assert 3 in world.target.items
    assert 25 not in world.target.items
    assert (await world.state.read_progress()).migrated_users == 20  # +1 inserted, -1 deleted
    again = await world.sync.catch_up(SyncRequest())
    assert (again.changes_seen, again.written, again.deleted) == (0, 0, 0)


async def test_an_item_newer_than_its_row_is_kept(world):
    await backfilled(world)
    newer = to_item(valid_user(14, email="app@example.com", updated_at=LATER + timedelta(days=1)), NOW)
    world.target.items[14] = newer
    world.source.put(valid_user(14, email="row@example.com", updated_at=LATER))
    summary = await world.sync.catch_up(SyncRequest())
    assert (summary.written, summary.skipped_newer) == (0, 1)
    assert world.target.items[14] == newer


async def test_a_row_changed_again_to_the_stored_version_is_unchanged_not_newer(world):
    await backfilled(world)
    world.source.put(valid_user(15))  # the same version as the item the backfill wrote
    summary = await world.sync.catch_up(SyncRequest())
    assert (summary.written, summary.unchanged, summary.skipped_newer) == (0, 1, 0)


async def test_a_row_changed_without_a_new_version_is_carried_by_its_content(world):
    """`update_column`, `update_all`, an admin's SQL: the row changes, its version does not. The
    item the backfill wrote is replaced, counted as written (and as such), never `unchanged`."""
    await backfilled(world)
    world.source.put(valid_user(15, display_name="Renamed"))  # updated_at as the backfill saw it
    world.source.put(valid_user(16))  # touched, same content
    summary = await world.sync.catch_up(SyncRequest())
    assert (summary.written, summary.same_version_written, summary.unchanged) == (1, 1, 1)
    assert from_item(world.target.items[15]).display_name == "Renamed"
    assert (await world.state.read_progress()).migrated_users == 20  # a replacement, not a new user


async def test_an_item_changed_in_dynamodb_is_kept_when_its_row_changes_without_a_new_version(world):
    """The migration's item someone changed, or an application's item, of the row's version: kept
    with the reason, whatever the row now holds."""
    await backfilled(world)
    world.target.items[15]["display_name"] = {"S": "Edited in DynamoDB"}
    app_item = to_item(valid_user(16, display_name="The app's"), NOW)
    del app_item["migration_digest"]
    world.target.items[16] = app_item
    world.source.put(valid_user(15, display_name="Renamed"))
    world.source.put(valid_user(16, display_name="Renamed"))
    summary = await world.sync.catch_up(SyncRequest())
    assert (summary.written, summary.unchanged, summary.skipped_newer) == (0, 0, 2)
    assert world.target.items[15]["display_name"] == {"S": "Edited in DynamoDB"}
    assert world.target.items[16] == app_item


async def test_an_item_the_application_wrote_for_a_deleted_row_is_reported_not_deleted(world):
    await backfilled(world)
    app_item = to_item(valid_user(16, email="app@example.com"), NOW)
    del app_item["migration_digest"]  # written by the application, not by the migration
    world.target.items[16] = app_item
    world.source.delete(16)
    world.source.delete(17)
    summary = await world.sync.catch_up(SyncRequest())
    assert summary.deleted == 1
    assert 17 not in world.target.items
    assert list(summary.not_deleted) == [16]
    assert world.target.items[16] == app_item


async def test_without_a_recorded_cursor_the_first_pass_reads_every_row(world):
    await world.migration.migrate_users(await world.source.read_page(0, 5), dry_run=False)  # no whole run
    summary = await world.sync.catch_up(SyncRequest())
    assert summary.full_pass
    assert summary.written == 15
    assert (await world.state.read_progress()).change_cursor is not None
    assert not (await world.sync.catch_up(SyncRequest())).full_pass


async def test_a_failed_write_keeps_the_cursor_so_the_next_pass_retries_it(world):
    await backfilled(world)
    world.source.put(valid_user(11, email="new@example.com", updated_at=LATER))
    world.target.refuse[11] = "throttled"
    before = (await world.state.read_progress()).change_cursor
    failed = await world.sync.catch_up(SyncRequest())
    assert list(failed.failures) == [11]
    assert not failed.caught_up
    assert (await world.state.read_progress()).change_cursor == before
    del world.target.refuse[11]
    retried = await world.sync.catch_up(SyncRequest())
    assert (retried.written, retried.failed, retried.caught_up) == (1, 0, True)
    assert from_item(world.target.items[11]).email == "new@example.com"


async def test_an_invalid_row_is_reported_and_the_cursor_moves_on(world):
    await backfilled(world)
    world.source.put(valid_user(13, email="not-an-email", updated_at=LATER))
    summary = await world.sync.catch_up(SyncRequest())
    assert list(summary.failures) == [13]
    assert summary.caught_up
    assert from_item(world.target.items[13]).email == "user13@example.com"
    assert (await world.sync.catch_up(SyncRequest())).failed == 0  # the row did not change again


async def test_a_delete_whose_holder_died_is_counted_by_the_next_holder(world):
    await backfilled(world)
    async with world.state.hold_users(20, 20) as hold:
        await hold.intend_removal([20])
        await world.target.delete_unchanged([20])
        # dies here: no settle
    assert (await world.state.read_progress()).migrated_users == 20
    # The next holder of user 20's range (here a page of users 19 and 21) finds it gone.
    await world.migration.migrate_users(await world.source.read_users([19, 21]), dry_run=False)
    assert (await world.state.read_progress()).migrated_users == 19


async def test_follow_passes_until_stopped(world):
    await backfilled(world)
    stop = asyncio.Event()
    passes = []

    def on_pass(summary):
        passes.append(summary)
        if len(passes) == 1:
            world.source.put(valid_user(40))
        else:
            stop.set()

    total = await world.sync.follow(FollowRequest(0.01, stop, on_pass=on_pass))
    assert total.passes == 2
    assert total.written == 1
    assert 40 in world.target.items


async def test_sync_needs_a_version(world):
    unversioned = ChangeSync(
        world.source, world.target, world.state, ChangeWrites(WriteLedger(world.target, world.state)), versioned=False
    )
    with pytest.raises(SetupError, match=r"\[source\] version"):
        await unversioned.catch_up(SyncRequest())


async def test_the_first_batch_of_an_http_backfill_records_the_cursor_too(world):
    await world.migration.migrate_batch(BatchRequest(start_user_id=0, batch_size=5, dry_run=True))
    assert (await world.state.read_progress()).change_cursor is None  # a dry run records nothing
    await world.migration.migrate_batch(BatchRequest(start_user_id=0, batch_size=5))
    first = (await world.state.read_progress()).change_cursor
    assert first is not None
    world.source.put(valid_user(40))
    await world.migration.migrate_batch(BatchRequest(start_user_id=0, batch_size=5))
    assert (await world.state.read_progress()).change_cursor == first  # kept: the same backfill


async def test_an_item_migrated_from_a_row_without_a_version_is_replaced_when_the_row_changes(world):
    world.source.put(valid_user(50, updated_at=None))
    assert (await world.run.migrate_all(RunRequest())).migrated == 21
    assert "migration_version" not in world.target.items[50]
    world.source.put(valid_user(50, email="later@example.com", updated_at=LATER))
    app_item = to_item(valid_user(51, email="app@example.com"), NOW)
    del app_item["migration_digest"], app_item["migration_version"]  # the application's, no version
    world.target.items[51] = app_item
    world.source.put(valid_user(51, email="row@example.com", updated_at=LATER))
    summary = await world.sync.catch_up(SyncRequest())
    assert summary.written == 1
    assert from_item(world.target.items[50]).email == "later@example.com"
    assert summary.skipped_newer == 1
    assert world.target.items[51] == app_item


async def test_follow_goes_on_after_an_outage_and_an_outage_alone_ends_it_with_the_error(world):
    await backfilled(world)
    real_read = world.source.read_changed_page
    outages = 0

    async def flaky(since, start, limit, highest):
        nonlocal outages
        if outages < 2:
            outages += 1
            raise SourceUnavailable("PostgreSQL is unavailable at db:5432: connection refused")
        return await real_read(since, start, limit, highest)

    world.source.read_changed_page = flaky
    world.source.put(valid_user(41))
    stop = asyncio.Event()
    told = []

    def on_pass(summary):
        stop.set()

    total = await world.sync.follow(FollowRequest(0.01, stop, on_pass=on_pass, on_unavailable=told.append))
    assert len(told) == 2
    assert total.written == 1
    assert 41 in world.target.items

    outages = 0
    stop = asyncio.Event()

    def stop_now(error):
        stop.set()

    with pytest.raises(SourceUnavailable):
        await world.sync.follow(FollowRequest(0.01, stop, on_unavailable=stop_now))


async def test_a_bad_batch_size_is_an_invalid_parameter_before_anything_is_read(world):
    with pytest.raises(InvalidParameter, match="batch_size"):
        await world.sync.catch_up(SyncRequest(batch_size=0))
    with pytest.raises(InvalidParameter, match="batch_size"):
        await world.sync.follow(FollowRequest(0.01, asyncio.Event(), batch_size=1001))
