"""The HTTP API on the real stack: PostgreSQL (aiopg) and DynamoDB (moto server, aioboto3)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import attrs
import pytest
from aiohttp.test_utils import TestClient

from tests.real_adapters import create_dynamodb_tables, create_source_table, unique_name
from user_migration.adapters.dynamodb.state import DynamoDbMigrationState
from user_migration.adapters.dynamodb.target import DynamoDbUserTarget
from user_migration.domain.convert.timestamps import format_timestamp
from user_migration.entrypoints.http.app import init_app
from user_migration.entrypoints.settings import Settings

TOKEN = "e2e-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
STATS = "/m2/migration/stats"
# The live app counts the source again this often, so that a test sees the rows it inserted soon.
STATS_REFRESH_SECONDS = 0.2


@attrs.define
class LiveService:
    """A running app on fresh tables, and direct access to those tables for checks."""

    client: TestClient
    settings: Settings
    target: DynamoDbUserTarget
    state: DynamoDbMigrationState

    async def get(self, path: str, **params: Any) -> tuple[int, Any]:
        response = await self.client.get(path, params=params, headers=AUTH)
        return response.status, await response.json()

    async def fresh_stats(self, within_seconds: float = 10.0) -> dict[str, Any]:
        """The statistics once the app's kept count is exact and newer than this call (the app
        counts again every STATS_REFRESH_SECONDS, 0.2 s here)."""
        asked_at = format_timestamp(datetime.now(UTC))
        deadline = time.monotonic() + within_seconds
        while True:
            status, stats = await self.get(STATS)
            assert status == 200, stats
            if stats["total_postgres_users_exact"] and stats["total_postgres_users_as_of"] >= asked_at:
                return stats  # type: ignore[no-any-return]
            assert time.monotonic() < deadline, f"no exact count newer than {asked_at}: {stats}"
            await asyncio.sleep(0.05)


@pytest.fixture
def live_settings(postgres_dsn: str, dynamodb_endpoint: str) -> Callable[..., Settings]:
    def make(**changes: Any) -> Settings:
        settings = Settings(
            database_url=postgres_dsn,
            dynamodb_endpoint_url=dynamodb_endpoint,
            aws_region="us-east-1",
            api_tokens=(TOKEN, "second-token"),
        )
        return attrs.evolve(settings, **changes)

    return make


@pytest.fixture
def start_live(aiohttp_client, live_settings, postgres_dsn, dynamodb) -> Callable[..., Awaitable[LiveService]]:
    """Starts the app on fresh tables, its settings changed by the keywords given."""

    async def start(**changes: Any) -> LiveService:
        source_table = unique_name("users")
        create_source_table(postgres_dsn, source_table)
        users_table, state_table = await create_dynamodb_tables(dynamodb)
        settings = live_settings(
            source_table=source_table,
            dynamodb_table=users_table,
            dynamodb_state_table=state_table,
            stats_refresh_seconds=STATS_REFRESH_SECONDS,
            **changes,
        )
        client = await aiohttp_client(await init_app(settings))
        return LiveService(
            client, settings, DynamoDbUserTarget(dynamodb, users_table), DynamoDbMigrationState(dynamodb, state_table)
        )

    return start


@pytest.fixture
async def live(start_live) -> LiveService:
    return await start_live()
