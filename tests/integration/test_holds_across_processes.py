"""Holds taken through DynamoDB keep two migrating processes from writing or counting a user twice."""

from __future__ import annotations

import asyncio
import time

from tests.factories import valid_user
from tests.real_adapters import create_dynamodb_tables, create_source_table, insert_users, unique_name
from user_migration.adapters.dynamodb.client import dynamodb_client
from user_migration.adapters.dynamodb.holds import ProgressLedger
from user_migration.adapters.dynamodb.plan import segment_key
from user_migration.adapters.dynamodb.state import DynamoDbMigrationState
from user_migration.adapters.dynamodb.target import DynamoDbUserTarget
from user_migration.adapters.postgres.source import PostgresUserSource, create_pool
from user_migration.domain.convert.mapping import default_mapping
from user_migration.domain.migrate.migration import Migration
from user_migration.domain.migrate.request import BatchRequest


async def test_two_processes_holding_the_same_users_take_turns(dynamodb_endpoint):
    async with (
        dynamodb_client(dynamodb_endpoint, "us-east-1") as first_client,
        dynamodb_client(dynamodb_endpoint, "us-east-1") as second_client,
    ):
        _, state_table = await create_dynamodb_tables(first_client)
        first = DynamoDbMigrationState(first_client, state_table)
        second = DynamoDbMigrationState(second_client, state_table)
        spans: list[tuple[str, float, float]] = []

        async def hold(name: str, state: DynamoDbMigrationState, lowest: int, highest: int) -> None:
            async with state.hold_users(lowest, highest) as held:
                entered = time.monotonic()
                await asyncio.sleep(0.2)
                spans.append((name, entered, time.monotonic()))
                await held.settle([])

        await asyncio.gather(hold("first", first, 10, 20), hold("second", second, 20, 30))
        (_, _, first_out), (_, second_in, _) = sorted(spans, key=lambda span: span[1])
        assert second_in >= first_out  # never both inside


async def test_the_writes_of_a_process_that_died_are_counted_by_the_next_one(dynamodb):
    _, state_table = await create_dynamodb_tables(dynamodb)
    # The state of a table with no plan yet has one segment: its item holds the holds.
    crashed = ProgressLedger(dynamodb, state_table, lease_seconds=0.5, key=segment_key(0))
    survivor = DynamoDbMigrationState(dynamodb, state_table)
    dead = await crashed.take(1, 100)  # a process that took the hold, announced its writes, and died
    await dead.intend([5, 6, 7])
    started = time.monotonic()
    async with survivor.hold_users(5, 150) as hold:  # it inherits the ids of its range
        waited = time.monotonic() - started
        assert hold.inherited == frozenset({5, 6, 7})
        await hold.settle([5, 7])  # what the survivor found stored of them
    assert 0.3 < waited < 5
    progress = await survivor.read_progress()
    assert (progress.migrated_users, progress.last_migrated_user_id) == (2, 7)


async def test_two_processes_migrating_overlapping_pages_write_and_count_each_user_once(
    postgres_dsn, dynamodb_endpoint
):
    table = unique_name("users")
    create_source_table(postgres_dsn, table)
    insert_users(postgres_dsn, table, [valid_user(i) for i in range(1, 301)])
    pools = [await create_pool(postgres_dsn), await create_pool(postgres_dsn)]
    try:
        async with (
            dynamodb_client(dynamodb_endpoint, "us-east-1") as first_client,
            dynamodb_client(dynamodb_endpoint, "us-east-1") as second_client,
        ):
            users_table, state_table = await create_dynamodb_tables(first_client)
            # Two fully separate stacks: no shared range locks, clients, or pools — like two processes.
            processes = [
                Migration(
                    PostgresUserSource(pool, default_mapping(table)),
                    DynamoDbUserTarget(client, users_table),
                    DynamoDbMigrationState(client, state_table),
                )
                for pool, client in zip(pools, (first_client, second_client), strict=True)
            ]
            requests = [
                processes[index % 2].migrate_batch(BatchRequest(start_user_id=start, batch_size=100))
                for index, start in enumerate([1, 1, 50, 51, 100, 120, 150, 200, 201, 1, 250, 260])
            ]
            reports = await asyncio.gather(*requests)
            target = DynamoDbUserTarget(first_client, users_table)
            stored = await target.count_users()
            progress = await DynamoDbMigrationState(first_client, state_table).read_progress()
        assert stored == 300
        assert sum(report.migrated_count for report in reports) == 300
        assert progress.migrated_users == 300
        assert progress.last_migrated_user_id == 300
    finally:
        for pool in pools:
            pool.close()
            await pool.wait_closed()


async def test_a_step_from_a_stale_snapshot_is_refused_and_redone_on_the_item_as_it_stands(dynamodb):
    _, state_table = await create_dynamodb_tables(dynamodb)
    first, second = ProgressLedger(dynamodb, state_table), ProgressLedger(dynamodb, state_table)
    mine = await first.take(1, 10)  # first now holds a snapshot of the item with its hold in it
    theirs = await second.take(11, 20)  # the item moves on behind first's back
    await theirs.intend([11, 12])
    await theirs.settle([11, 12])
    await mine.intend([1, 2, 3])
    item, _ = await second.read()
    assert item["holds"]["M"][mine.hold_id]["M"]["writing"] == {"S": "1..3"}  # ids as compact runs
    await mine.settle([1, 2, 3])
    progress = await DynamoDbMigrationState(dynamodb, state_table).read_progress()
    assert (progress.migrated_users, progress.last_migrated_user_id) == (5, 12)
    item, _ = await second.read()
    assert item["holds"]["M"] == {}


async def test_a_hold_left_in_progress_by_a_version_before_the_segments_is_inherited(dynamodb):
    _, state_table = await create_dynamodb_tables(dynamodb)
    dead = await ProgressLedger(dynamodb, state_table, lease_seconds=0.3).take(1, 100)
    await dead.intend([5, 6])
    state = DynamoDbMigrationState(dynamodb, state_table)
    async with state.hold_users(1, 10) as hold:
        assert hold.inherited == frozenset({5, 6})
        await hold.settle([5, 6, 7])
    assert (await state.read_progress()).migrated_users == 3
    item, _ = await ProgressLedger(dynamodb, state_table).read()
    assert item["holds"]["M"] == {}
    assert item["unsettled"] == {"S": ""}


async def test_ids_left_unsettled_by_an_earlier_version_as_a_list_are_inherited(dynamodb):
    _, state_table = await create_dynamodb_tables(dynamodb)
    await dynamodb.put_item(
        TableName=state_table,
        Item={
            "state_id": {"S": "progress"},
            "version": {"N": "7"},
            "migrated_users": {"N": "4"},
            "unsettled": {"L": [{"N": "8"}, {"N": "9"}]},
        },
    )
    state = DynamoDbMigrationState(dynamodb, state_table)
    async with state.hold_users(1, 100) as hold:
        assert hold.inherited == frozenset({8, 9})
        await hold.settle([9])
    assert (await state.read_progress()).migrated_users == 5


async def test_more_failing_sparse_ids_than_an_item_holds_are_counted_and_pages_still_settle(dynamodb):
    """15,000 failing 19-digit ids would make the segment's item too large (DynamoDB refuses any
    write past 400 KB, which stopped every later page with a failure): past a limit they are
    counted, not listed, and the segment keeps settling."""
    _, state_table = await create_dynamodb_tables(dynamodb)
    state = DynamoDbMigrationState(dynamodb, state_table)
    sparse = [10**18 + 7919 * n for n in range(15_000)]
    for page in range(3):
        async with state.hold_users(0, 2**62) as hold:
            await hold.settle([], failed={i: ("missing_email",) for i in sparse[page * 5_000 : (page + 1) * 5_000]})
    async with state.hold_users(0, 2**62) as hold:
        await hold.settle([42], failed={43: ("write_failed",)}, succeeded=[sparse[0]])
    progress = await state.read_progress()
    assert (progress.migrated_users, progress.failed_users) == (1, 15_000)  # 43 counted, sparse[0] listed and gone
