"""DynamoDB that accepts connections but never answers, through the real adapters and use case.

The service's DynamoDB client waits DYNAMODB_TIMEOUT_SECONDS (10 s) per try, with DYNAMODB_RETRIES (3)
botocore retries (`adapters/dynamodb/client.py`), so over HTTP a blackholed DynamoDB costs about
a minute per request. Here the real adapters and `Migration` run on a client with a 1 s read
timeout instead, to prove what a timeout leads to: `TargetUnavailable` (503 over HTTP) with
nothing recorded, or, when the write landed but its answer never came, the landed users counted
exactly once. In both write modes: the stalled request is the mode's write (`world.write_operation`),
and the live mode's re-check of a timed-out put is a GetItem, which the proxy lets through.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import aioboto3
import pytest
from aiobotocore.config import AioConfig

from tests.factories import valid_user
from tests.faults.conftest import World, both_write_modes
from user_migration.adapters.dynamodb.state import DynamoDbMigrationState
from user_migration.adapters.dynamodb.target import DynamoDbUserTarget
from user_migration.adapters.postgres.source import PostgresUserSource, create_pool
from user_migration.domain.convert.mapping import default_mapping
from user_migration.domain.errors import TargetUnavailable
from user_migration.domain.migrate.migration import Migration
from user_migration.domain.migrate.request import BatchRequest


@pytest.fixture
async def impatient_migration(world: World) -> AsyncIterator[Migration]:
    """The real use case on the real adapters, DynamoDB through the proxy with a 1 s read timeout."""
    config = AioConfig(connect_timeout=1, read_timeout=1, retries={"mode": "standard", "total_max_attempts": 2})
    pool = await create_pool(world.dsn)
    try:
        async with aioboto3.Session().client(
            "dynamodb", endpoint_url=world.dynamodb_proxy.url, region_name="us-east-1", config=config
        ) as client:
            yield Migration(
                PostgresUserSource(pool, default_mapping(world.source_table)),
                DynamoDbUserTarget(client, world.users_table),
                DynamoDbMigrationState(client, world.state_table),
                offline=world.offline,
            )
    finally:
        pool.close()
        await pool.wait_closed()


# The live mode only: the fault stops the first request, before either mode's write path differs.
async def test_blackholed_dynamodb_is_target_unavailable_quickly_with_nothing_recorded(
    world: World, impatient_migration: Migration
):
    world.seed([valid_user(i) for i in range(1, 21)])
    world.dynamodb_proxy.blackhole()
    started = time.monotonic()
    async with asyncio.timeout(30):
        with pytest.raises(TargetUnavailable):
            await impatient_migration.migrate_batch(BatchRequest(0, 20, False))
    assert time.monotonic() - started < 15
    world.dynamodb_proxy.heal()
    assert await world.items() == {}
    assert (await world.progress()).migrated_users == 0

    report = await impatient_migration.migrate_batch(BatchRequest(0, 20, False))
    assert (report.migrated_count, report.failed_count) == (20, 0)
    assert await world.count_and_counter() == (20, 20)


@both_write_modes
@pytest.mark.parametrize("forward", [False, True], ids=["write-never-lands", "write-lands-answer-never-comes"])
async def test_a_write_that_times_out_records_exactly_what_landed(
    world: World, impatient_migration: Migration, forward: bool
):
    world.seed([valid_user(i) for i in range(1, 21)])
    world.dynamodb_proxy.stall(world.write_operation, forward=forward)
    outcome: Any
    async with asyncio.timeout(30):
        try:
            outcome = await impatient_migration.migrate_batch(BatchRequest(0, 20, False))
        except TargetUnavailable as error:
            outcome = error
    items = await world.items()
    if forward:
        assert not isinstance(outcome, Exception), outcome
        assert (outcome.migrated_count, outcome.failed_count) == (20, 0)
        assert len(items) == 20
    else:
        assert isinstance(outcome, TargetUnavailable), outcome
        assert items == {}
    assert (await world.progress()).migrated_users == len(items)

    world.dynamodb_proxy.heal()
    report = await impatient_migration.migrate_batch(BatchRequest(0, 20, False))
    assert (report.migrated_count, report.skipped_count) == (20 - len(items), len(items))
    assert await world.count_and_counter() == (20, 20)
