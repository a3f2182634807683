"""`sync --follow --changes logical`, told as stories on the in-memory adapters: the backfill
once, then transactions in commit order, acknowledged only once stored, delivered again after a
crash without writing anything twice."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import attrs
import pytest

from tests.factories import from_item, valid_user
from user_migration.adapters.dynamodb.codec import stored_version
from user_migration.adapters.memory.changes import InMemoryChangeStream
from user_migration.adapters.memory.harness import InMemoryMigrationState, InMemoryUserSource, InMemoryUserTarget
from user_migration.domain.errors import ChangeStreamInUse, DependencyUnavailable, SourceUnavailable
from user_migration.domain.migrate.migration import Migration
from user_migration.domain.migrate.request import RunRequest
from user_migration.domain.migrate.run import MigrationRun
from user_migration.domain.model import ChangeCursor
from user_migration.domain.sync.poll import ChangeSync
from user_migration.domain.sync.request import StreamRequest
from user_migration.domain.sync.row_changes import (
    STREAM_VERSION_BASE,
    ChangeBatch,
    CommittedChanges,
    RowChange,
    net_changes,
    stream_version,
)
from user_migration.domain.sync.stream import StreamProgress, StreamSummary, StreamSync, backfilled_mark
from user_migration.domain.write.changes import ChangeWrites
from user_migration.domain.write.ledger import WriteLedger

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


@attrs.define
class World:
    source: InMemoryUserSource
    target: InMemoryUserTarget
    state: InMemoryMigrationState
    stream: InMemoryChangeStream
    sync: StreamSync
    migration: Migration

    def change(self, user_id: int, **values: object) -> int:
        """The application updates (or inserts) a row, in a transaction of its own."""
        self.source.put(valid_user(user_id, **values))
        return self.stream.commit([RowChange(user_id)])

    def delete(self, user_id: int) -> int:
        self.source.delete(user_id)
        return self.stream.commit([RowChange(user_id, deleted=True)])

    def matches_source(self) -> None:
        stored = {user_id: from_item(item) for user_id, item in self.target.items.items()}
        assert set(stored) == set(self.source._users)
        for user_id, user in stored.items():
            source_user = self.source._users[user_id]
            assert user.email == source_user.values["email"], user_id


@pytest.fixture
def world() -> World:
    source = InMemoryUserSource(valid_user(i) for i in range(1, 21))
    target = InMemoryUserTarget()
    state = InMemoryMigrationState()
    stream = InMemoryChangeStream()
    migration = Migration(source, target, state, clock=lambda: NOW)
    changes = ChangeWrites(WriteLedger(target, state), clock=lambda: NOW)
    change_sync = ChangeSync(source, target, state, changes, clock=lambda: NOW)
    sync = StreamSync(
        stream, "slot", source, target, state, changes, change_sync, clock=lambda: NOW, retry_seconds=0.01
    )
    return World(source, target, state, stream, sync, migration)


def world_changes(world: World) -> ChangeWrites:
    """The writes of changed and deleted rows on the world's target and state."""
    return ChangeWrites(WriteLedger(world.target, world.state), clock=lambda: NOW)


async def follow_until(world: World, done: Callable[[StreamProgress], bool], **options: Any) -> StreamSummary:
    """Follow until `done` says so of a progress report (or fail after 5 s)."""
    stop = asyncio.Event()

    def watch(progress: StreamProgress) -> None:
        if done(progress):
            stop.set()

    return await asyncio.wait_for(
        world.sync.follow(StreamRequest(stop, batch_size=7, on_progress=watch, **options)), 5.0
    )


def acknowledged_through(position: int) -> Callable[[StreamProgress], bool]:
    return lambda progress: progress.acknowledged >= position


def test_a_batch_comes_to_the_last_change_of_each_user_at_its_position() -> None:
    net = net_changes(
        [
            CommittedChanges(100, NOW, (RowChange(1), RowChange(2), RowChange(3, deleted=True))),
            CommittedChanges(200, NOW, (RowChange(2, deleted=True), RowChange(3))),
            CommittedChanges(300, NOW, (RowChange(1),)),
        ]
    )
    assert net.upserts == {3: 200, 1: 300}
    assert net.deletes == {2: 200}


def test_stream_versions_are_above_every_timestamp_version() -> None:
    year_9999 = int(datetime(9999, 12, 31, tzinfo=UTC).timestamp() * 1_000_000)
    assert stream_version(0) > year_9999
    assert stream_version(5) - stream_version(4) == 1
    assert len(str(stream_version(2**64 - 1))) <= 38  # a DynamoDB number
    assert stream_version(0) == STREAM_VERSION_BASE


async def test_the_backfill_then_the_stream_leave_the_target_equal_to_the_source(world: World) -> None:
    # Changes committed after the slot exists and before the sync starts: the backfill reads their
    # rows already, and the stream carries them again with their own (higher) versions.
    world.change(3, email="three@example.com")
    world.delete(4)
    summary = await follow_until(world, acknowledged_through(world.stream.commit_elsewhere()))
    assert summary.backfill is not None
    assert summary.backfill.written == 19
    world.matches_source()
    assert await world.state.read_change_cursor() == ChangeCursor(backfilled_mark("slot"), NOW)
    assert (await world.state.read_progress()).migrated_users == 19

    # A second follow does not backfill again: only the stream's transactions.
    inserted = world.change(30)
    world.change(5, email="five@example.com")
    world.delete(6)
    last = world.change(5, email="five-again@example.com")
    summary = await follow_until(world, acknowledged_through(last))
    assert summary.backfill is None
    assert (summary.transactions, summary.tally.written, summary.tally.deleted) == (4, 2, 1)
    world.matches_source()
    assert stored_version(world.target.items[5]) == stream_version(last)
    assert stored_version(world.target.items[30]) == stream_version(inserted)
    assert (await world.state.read_progress()).migrated_users == 19 + 1 - 1


async def test_nothing_is_acknowledged_before_it_is_stored_and_a_refused_write_is_tried_again(world: World) -> None:
    await follow_until(world, acknowledged_through(world.stream.commit_elsewhere()))
    before = list(world.stream.acknowledgements)
    world.target.refuse[7] = "throttled"
    changed = world.change(7, email="seven@example.com")
    problems: list[str] = []

    def unavailable(error: Exception) -> None:
        problems.append(str(error))
        assert world.stream.acknowledgements[-1] < changed  # not acknowledged meanwhile
        world.target.refuse.clear()  # DynamoDB is back

    summary = await follow_until(world, acknowledged_through(changed), on_unavailable=unavailable)
    assert problems == ["1 change(s) could not be stored; not acknowledged"]
    # Acknowledged only once, after the write landed.
    assert [position for position in world.stream.acknowledgements[len(before) :] if position >= changed] == [changed]
    assert world.target.items[7]["email"] == {"S": "seven@example.com"}
    assert summary.tally.written == 1


async def test_a_crash_before_the_acknowledgement_delivers_again_and_writes_nothing_twice(world: World) -> None:
    await follow_until(world, acknowledged_through(world.stream.commit_elsewhere()))
    changes = [world.change(8, email="eight@example.com"), world.delete(9), world.change(40)]
    # Stored but not acknowledged (the process died just before): apply the same batch directly.
    batch = await _deliver(world)
    assert batch.transactions
    applied = await world.sync._apply(batch)
    assert applied.finished
    items = {user_id: dict(item) for user_id, item in world.target.items.items()}
    migrated = (await world.state.read_progress()).migrated_users
    # Restarted: delivered again from the last acknowledged position.
    summary = await follow_until(world, acknowledged_through(changes[-1]))
    assert summary.transactions == 3
    assert (summary.tally.written, summary.tally.deleted, summary.tally.unchanged) == (0, 0, 2)
    assert world.target.items == items  # refused by their versions: not one item written again
    assert (await world.state.read_progress()).migrated_users == migrated
    world.matches_source()


async def _deliver(world: World) -> ChangeBatch:
    await world.stream.open()
    try:
        return await world.stream.read(100, 0.01)
    finally:
        await world.stream.close()


async def test_a_delete_delivered_again_keeps_the_newer_item_of_a_user_inserted_again(world: World) -> None:
    await follow_until(world, acknowledged_through(world.stream.commit_elsewhere()))
    world.delete(10)
    world.change(10, email="back@example.com")
    batch = await _deliver(world)
    # The process stored the re-insert, died, and is delivered the delete alone again.
    await world.sync._apply(batch)
    delete_only = attrs.evolve(batch, transactions=batch.transactions[:1])
    applied = await world.sync._apply(delete_only)
    assert not applied.deletes.deleted
    assert world.target.items[10]["email"] == {"S": "back@example.com"}


async def test_a_backfill_cut_short_is_done_again_and_a_polling_item_is_replaced(world: World) -> None:
    # An earlier polling backfill wrote every user with its row's timestamp version.
    await MigrationRun(world.source, world.state, world.migration).migrate_all(RunRequest(batch_size=5))
    stop = asyncio.Event()
    stop.set()
    summary = await world.sync.follow(StreamRequest(stop))
    assert summary.backfill is not None
    assert not summary.backfill.caught_up
    assert await world.sync.needs_backfill()
    world.change(11, email="eleven@example.com")
    await follow_until(world, acknowledged_through(world.stream.commit_elsewhere()))
    assert not await world.sync.needs_backfill()
    assert world.target.items[11]["email"] == {"S": "eleven@example.com"}
    versions = {stored_version(item) for item in world.target.items.values()}
    assert all(version is not None and version > STREAM_VERSION_BASE for version in versions)


async def test_retained_wal_past_the_limit_is_told(world: World) -> None:
    reports: list[StreamProgress] = []

    def done(progress: StreamProgress) -> bool:
        reports.append(progress)
        return progress.health is not None

    world.stream.held_wal = 5_000
    await follow_until(world, done, max_retained_wal=4_999)
    assert reports[-1].over_limit
    assert reports[-1].health is not None
    reports.clear()
    await follow_until(world, done, max_retained_wal=10**9)
    assert not reports[-1].over_limit


class _DroppingStream(InMemoryChangeStream):
    """Loses its connection once, at the first read after `drop` is set."""

    drop = False

    async def read(self, max_changes: int, wait_seconds: float) -> ChangeBatch:
        if self.drop:
            self.drop = False
            await self.close()
            raise SourceUnavailable("PostgreSQL is unavailable at db:5432: connection reset")
        return await super().read(max_changes, wait_seconds)


async def test_a_lost_connection_opens_the_stream_again_from_the_acknowledged_position(world: World) -> None:
    stream = _DroppingStream()
    world.stream = stream
    world.sync = StreamSync(
        stream,
        "slot",
        world.source,
        world.target,
        world.state,
        world_changes(world),
        ChangeSync(world.source, world.target, world.state, world_changes(world), clock=lambda: NOW),
        clock=lambda: NOW,
        retry_seconds=0.01,
    )
    await follow_until(world, acknowledged_through(stream.commit_elsewhere()))
    stream.drop = True
    changed = world.change(12, email="twelve@example.com")
    told: list[str] = []
    await follow_until(world, acknowledged_through(changed), on_unavailable=lambda error: told.append(str(error)))
    assert told == ["PostgreSQL is unavailable at db:5432: connection reset"]
    assert world.target.items[12]["email"] == {"S": "twelve@example.com"}


class _HeldStream(InMemoryChangeStream):
    """A stream another consumer holds for the first `held` tries to open it."""

    def __init__(self, held: int) -> None:
        super().__init__()
        self.held = held

    async def open(self) -> None:
        if self.held > 0:
            self.held -= 1
            raise ChangeStreamInUse("replication slot slot is held by PostgreSQL process 4242", holder=4242)
        await super().open()


def _with_stream(world: World, stream: InMemoryChangeStream) -> StreamSync:
    change_sync = ChangeSync(world.source, world.target, world.state, world_changes(world), clock=lambda: NOW)
    return StreamSync(
        stream, "slot", world.source, world.target, world.state, world_changes(world), change_sync, retry_seconds=0.01
    )


async def test_a_stream_another_consumer_holds_is_told_at_once_and_starts_once_it_is_free(world: World) -> None:
    world.stream = stream = _HeldStream(held=3)
    world.sync = _with_stream(world, stream)
    told: list[DependencyUnavailable] = []
    await follow_until(world, acknowledged_through(stream.commit_elsewhere()), on_unavailable=told.append)
    assert [(type(error), error.holder) for error in told] == [(ChangeStreamInUse, 4242)] * 3
    world.matches_source()  # then the backfill ran, as on any first start

    # Without `on_unavailable` (a library call that asked for no retries) it is the caller's to handle.
    world.sync = _with_stream(world, _HeldStream(held=1))
    with pytest.raises(ChangeStreamInUse):
        await world.sync.follow(StreamRequest(asyncio.Event()))
    # A stop while it waits ends the wait.
    held = _HeldStream(held=1_000)
    world.sync = _with_stream(world, held)
    stop = asyncio.Event()
    waiting = asyncio.ensure_future(world.sync.follow(StreamRequest(stop, on_unavailable=lambda error: stop.set())))
    summary = await asyncio.wait_for(waiting, 5.0)
    assert summary.stopped_early
    assert held.held == 999


async def test_an_invalid_row_is_reported_and_the_stream_goes_on(world: World) -> None:
    await follow_until(world, acknowledged_through(world.stream.commit_elsewhere()))
    world.change(13, email="not an email")
    after = world.change(14, email="fourteen@example.com")
    summary = await follow_until(world, acknowledged_through(after))
    assert list(summary.tally.failures) == [13]
    assert "email" in " ".join(summary.tally.failures[13]).lower()
    assert world.target.items[14]["email"] == {"S": "fourteen@example.com"}
    assert world.target.items[13]["email"] == {"S": "user13@example.com"}  # the backfill's, kept
