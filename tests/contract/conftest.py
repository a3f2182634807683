"""Adapters under contract: every port's suite runs against each adapter listed here.

Each fixture yields an async factory, so a test can seed the adapter with what it needs. The
in-memory adapters and the real ones (PostgreSQL via aiopg, DynamoDB via aioboto3 on the test
servers) run the same suites unchanged.
"""

from __future__ import annotations

import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import AsyncExitStack
from typing import Any

import pytest

from tests.dynamodb_servers import DYNAMODB_IMPLEMENTATIONS
from tests.real_adapters import create_dynamodb_tables, create_source_table, execute, insert_users, unique_name
from user_migration.adapters.dynamodb.client import dynamodb_client
from user_migration.adapters.dynamodb.lease_writes import SYNC_LEASES, VERIFY_LEASES
from user_migration.adapters.dynamodb.leases import DynamoDbSegmentLeases
from user_migration.adapters.dynamodb.plan import PlanStore
from user_migration.adapters.dynamodb.state import DynamoDbMigrationState
from user_migration.adapters.dynamodb.sync_passes import DynamoDbSyncPasses
from user_migration.adapters.dynamodb.tables import ensure_tables
from user_migration.adapters.dynamodb.target import DynamoDbUserTarget
from user_migration.adapters.dynamodb.verify_results import DynamoDbVerifyResults
from user_migration.adapters.memory.harness import InMemoryMigrationState, InMemoryUserSource, InMemoryUserTarget
from user_migration.adapters.memory.leases import InMemorySegmentLeases
from user_migration.adapters.memory.sync_passes import InMemorySyncPasses
from user_migration.adapters.memory.verify_results import InMemoryVerifyResults
from user_migration.adapters.postgres.source import PostgresUserSource, create_pool, quote_table_name
from user_migration.domain.convert.mapping import default_mapping
from user_migration.domain.model import User
from user_migration.ports import MigrationState, UserSource, UserTarget
from user_migration.ports.segment_leases import SegmentLeases
from user_migration.ports.sync_passes import SyncPasses
from user_migration.ports.verify_results import VerifyResults

SourceFactory = Callable[[Iterable[User]], Awaitable[UserSource]]
# A target on fresh storage; takes `key_attribute` (the partition key, "user_id" by default).
TargetFactory = Callable[..., Awaitable[UserTarget]]
# Puts an item straight into a target's storage, as an application (not the migration) would.
ItemPutter = Callable[[UserTarget, dict[str, Any]], Awaitable[None]]
StateFactory = Callable[[], Awaitable[MigrationState]]


@pytest.fixture(params=["memory", "postgres"])
async def make_source(request: pytest.FixtureRequest) -> AsyncIterator[SourceFactory]:
    if request.param == "memory":

        async def memory(users: Iterable[User]) -> UserSource:
            return InMemoryUserSource(users)

        yield memory
        return
    dsn = request.getfixturevalue("postgres_dsn")
    pools = []

    async def postgres(users: Iterable[User]) -> UserSource:
        table = unique_name("users")
        create_source_table(dsn, table)
        insert_users(dsn, table, users)
        execute(dsn, f"ANALYZE {quote_table_name(table)}")  # as autovacuum would: the planner's statistics
        pool = await create_pool(dsn)
        pools.append(pool)
        return PostgresUserSource(pool, default_mapping(table))

    yield postgres
    for pool in pools:
        pool.close()
        await pool.wait_closed()


# The target's contract holds on every DynamoDB implementation: "dynamodb" is moto (as in every
# other suite), then dynalite and DynamoDB Local (`tests/conftest.py`).
@pytest.fixture(params=["memory", "dynamodb", "dynalite", "dynamodb-local"])
async def make_target(request: pytest.FixtureRequest) -> AsyncIterator[TargetFactory]:
    if request.param == "memory":

        async def memory(key_attribute: str = "user_id") -> UserTarget:
            return InMemoryUserTarget(key_attribute=key_attribute)

        yield memory
        return
    # Async fixtures cannot be fetched from here, so the client lives in this fixture's stack.
    implementation = "moto" if request.param == "dynamodb" else request.param
    endpoint = request.getfixturevalue(DYNAMODB_IMPLEMENTATIONS[implementation])
    async with AsyncExitStack() as stack:
        client = await stack.enter_async_context(dynamodb_client(endpoint, "us-east-1"))

        async def dynamodb(key_attribute: str = "user_id") -> UserTarget:
            users_table, state_table = unique_name("users"), unique_name("state")
            await ensure_tables(client, users_table, state_table, key_attribute)
            target = DynamoDbUserTarget(client, users_table, key_attribute=key_attribute)
            _DYNAMODB_TABLES[target] = (client, users_table)
            return target

        yield dynamodb


# The client and table of each DynamoDB target `make_target` made, for `put_foreign_item`.
_DYNAMODB_TABLES: weakref.WeakKeyDictionary[UserTarget, tuple[Any, str]] = weakref.WeakKeyDictionary()


@pytest.fixture
def put_foreign_item() -> ItemPutter:
    """Put an item into a target made by `make_target` without the target's own writes."""

    async def put(target: UserTarget, item: dict[str, Any]) -> None:
        if isinstance(target, InMemoryUserTarget):
            target.items[int(item[target.key_attribute]["N"])] = item
            return
        client, table = _DYNAMODB_TABLES[target]
        await client.put_item(TableName=table, Item=item)

    return put


async def _segments_at_50_and_100() -> list[int]:
    return [50, 100]


@pytest.fixture(params=["memory", "dynamodb", "dynamodb-segments"])
async def make_state(request: pytest.FixtureRequest) -> AsyncIterator[StateFactory]:
    """A state of each kind; `dynamodb-segments` splits the ids at 50 and 100, so that holds and
    counts across segments are held to the same contract."""
    if request.param == "memory":

        async def memory() -> MigrationState:
            return InMemoryMigrationState()

        yield memory
        return
    endpoint = request.getfixturevalue("dynamodb_endpoint")
    async with AsyncExitStack() as stack:
        client = await stack.enter_async_context(dynamodb_client(endpoint, "us-east-1"))

        async def dynamodb() -> MigrationState:
            _, state_table = await create_dynamodb_tables(client)
            if request.param == "dynamodb-segments":
                plans = PlanStore(client, state_table, propose=_segments_at_50_and_100)
                return DynamoDbMigrationState(client, state_table, plans=plans)
            return DynamoDbMigrationState(client, state_table)

        yield dynamodb


# Verify results recorded under the verify passes' leases: (leases, results) on fresh storage.
VerifyPassFactory = Callable[[], Awaitable[tuple[SegmentLeases, VerifyResults]]]


@pytest.fixture(params=["memory", "dynamodb"])
async def make_verify_pass(request: pytest.FixtureRequest) -> AsyncIterator[VerifyPassFactory]:
    """Verify's leases and results of each kind, on segments split at 50 and 100."""
    if request.param == "memory":

        async def memory() -> tuple[SegmentLeases, VerifyResults]:
            leases = InMemorySegmentLeases(_segments_at_50_and_100)
            return leases, InMemoryVerifyResults(leases)

        yield memory
        return
    endpoint = request.getfixturevalue("dynamodb_endpoint")
    async with AsyncExitStack() as stack:
        client = await stack.enter_async_context(dynamodb_client(endpoint, "us-east-1"))

        async def dynamodb() -> tuple[SegmentLeases, VerifyResults]:
            _, state_table = await create_dynamodb_tables(client)
            plans = PlanStore(client, state_table, propose=_segments_at_50_and_100)
            leases = DynamoDbSegmentLeases(client, state_table, plans, VERIFY_LEASES)
            return leases, DynamoDbVerifyResults(client, state_table, plans)

        yield dynamodb


# The passes of `sync --workers` and their leases: (leases, passes) on fresh storage.
SyncPassFactory = Callable[[], Awaitable[tuple[SegmentLeases, SyncPasses]]]


@pytest.fixture(params=["memory", "dynamodb"])
async def make_sync_pass(request: pytest.FixtureRequest) -> AsyncIterator[SyncPassFactory]:
    """The sync passes' leases and records of each kind, on segments split at 50 and 100."""
    if request.param == "memory":

        async def memory() -> tuple[SegmentLeases, SyncPasses]:
            leases = InMemorySegmentLeases(_segments_at_50_and_100)
            return leases, InMemorySyncPasses(leases)

        yield memory
        return
    endpoint = request.getfixturevalue("dynamodb_endpoint")
    async with AsyncExitStack() as stack:
        client = await stack.enter_async_context(dynamodb_client(endpoint, "us-east-1"))

        async def dynamodb() -> tuple[SegmentLeases, SyncPasses]:
            _, state_table = await create_dynamodb_tables(client)
            plans = PlanStore(client, state_table, propose=_segments_at_50_and_100)
            leases = DynamoDbSegmentLeases(client, state_table, plans, SYNC_LEASES)
            return leases, DynamoDbSyncPasses(client, state_table, plans)

        yield dynamodb
