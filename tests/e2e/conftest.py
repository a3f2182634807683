"""The HTTP API on the real stack: PostgreSQL (aiopg) and DynamoDB (moto server, aioboto3)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import pytest
from aiohttp.test_utils import TestClient

from adapters.dynamodb_state import DynamoDbMigrationState
from adapters.dynamodb_target import DynamoDbUserTarget
from entrypoints.http.app import init_app
from entrypoints.settings import Settings
from tests.real_adapters import create_dynamodb_tables, create_source_table, unique_name

TOKEN = "e2e-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


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
async def live(aiohttp_client, live_settings, postgres_dsn, dynamodb) -> LiveService:
    source_table = unique_name("users")
    create_source_table(postgres_dsn, source_table)
    users_table, state_table = await create_dynamodb_tables(dynamodb)
    settings = live_settings(source_table=source_table, dynamodb_table=users_table, dynamodb_state_table=state_table)
    client = await aiohttp_client(await init_app(settings))
    return LiveService(
        client, settings, DynamoDbUserTarget(dynamodb, users_table), DynamoDbMigrationState(dynamodb, state_table)
    )
