"""Adapters under contract: every port's suite runs against each adapter listed here.

Each fixture yields an async factory, so a test can seed the adapter with what it needs. The
in-memory adapters and the real ones (PostgreSQL via aiopg, DynamoDB via aioboto3 on the test
servers) run the same suites unchanged.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import AsyncExitStack

import pytest

from adapters.dynamodb_client import dynamodb_client
from adapters.dynamodb_state import DynamoDbMigrationState
from adapters.dynamodb_target import DynamoDbUserTarget
from adapters.memory import InMemoryMigrationState, InMemoryUserSource, InMemoryUserTarget
from adapters.postgres import PostgresUserSource, create_pool
from domain.model import User
from ports import MigrationState, UserSource, UserTarget
from tests.real_adapters import create_dynamodb_tables, create_source_table, insert_users, unique_name

SourceFactory = Callable[[Iterable[User]], Awaitable[UserSource]]
TargetFactory = Callable[[], Awaitable[UserTarget]]
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
        pool = await create_pool(dsn)
        pools.append(pool)
        return PostgresUserSource(pool, table)

    yield postgres
    for pool in pools:
        pool.close()
        await pool.wait_closed()


@pytest.fixture(params=["memory", "dynamodb"])
async def make_target(request: pytest.FixtureRequest) -> AsyncIterator[TargetFactory]:
    if request.param == "memory":

        async def memory() -> UserTarget:
            return InMemoryUserTarget()

        yield memory
        return
    # Async fixtures cannot be fetched from here, so the client lives in this fixture's stack.
    endpoint = request.getfixturevalue("dynamodb_endpoint")
    async with AsyncExitStack() as stack:
        client = await stack.enter_async_context(dynamodb_client(endpoint, "us-east-1"))

        async def dynamodb() -> UserTarget:
            users_table, _ = await create_dynamodb_tables(client)
            return DynamoDbUserTarget(client, users_table)

        yield dynamodb


@pytest.fixture(params=["memory", "dynamodb"])
async def make_state(request: pytest.FixtureRequest) -> AsyncIterator[StateFactory]:
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
            return DynamoDbMigrationState(client, state_table)

        yield dynamodb
