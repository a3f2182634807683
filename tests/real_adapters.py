"""Helpers to stand real adapters up on the test servers: tables with unique names, seeded rows."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Callable, Iterable
from decimal import Decimal
from importlib import resources
from typing import Any

import psycopg2
import psycopg2.extras

from user_migration.adapters.dynamodb.leases import DynamoDbSegmentLeases
from user_migration.adapters.dynamodb.plan import PLAN_KEY, PlanStore
from user_migration.adapters.dynamodb.tables import ensure_tables
from user_migration.adapters.postgres.source import quote_table_name
from user_migration.domain.model import JsonValue, User
from user_migration.domain.parallel.segments import SegmentLease


def unique_name(prefix: str) -> str:
    """A table name no other test uses."""
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def json_text(value: JsonValue) -> str:
    """JSON text with Decimals written as their exact digits (json.dumps would refuse them)."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(key)}:{json_text(item)}" for key, item in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(json_text(item) for item in value) + "]"
    return json.dumps(value)


def create_source_table(dsn: str, table: str) -> None:
    """The documented source table, under another name."""
    ddl = resources.files("user_migration.adapters").joinpath("sql/schema.sql").read_text()
    ddl = ddl.replace("CREATE TABLE IF NOT EXISTS users", f"CREATE TABLE {quote_table_name(table)}")
    with psycopg2.connect(dsn) as connection, connection.cursor() as cursor:
        cursor.execute(ddl)
    connection.close()


def insert_users(dsn: str, table: str, users: Iterable[User]) -> None:
    """Insert users as rows (profiles as JSONB, exact numbers kept)."""
    rows: list[tuple[Any, ...]] = []
    for user in users:
        assert not isinstance(user.created_at, str)
        rows.append(
            (
                user.id,
                user.username,
                user.email,
                user.display_name,
                user.status,
                user.created_at,
                user.updated_at,
                None if user.profile is None else json_text(user.profile),  # type: ignore[arg-type]
            )
        )
    with psycopg2.connect(dsn) as connection, connection.cursor() as cursor:
        psycopg2.extras.execute_values(
            cursor,
            f"INSERT INTO {quote_table_name(table)} "
            "(id, username, email, display_name, status, created_at, updated_at, profile) VALUES %s",
            rows,
        )
    connection.close()


def execute(dsn: str, sql: str, parameters: tuple[Any, ...] = ()) -> None:
    """Run one statement (e.g. to fix a row, or to insert raw values)."""
    with psycopg2.connect(dsn) as connection, connection.cursor() as cursor:
        cursor.execute(sql, parameters)
    connection.close()


async def create_dynamodb_tables(client: Any) -> tuple[str, str]:
    """A fresh users table and state table; returns their names."""
    users_table, state_table = unique_name("users"), unique_name("state")
    await ensure_tables(client, users_table, state_table)
    return users_table, state_table


async def fresh_environment(postgres_dsn: str, dynamodb_endpoint: str, client: Any) -> dict[str, str]:
    """Environment for a `user-migration` process on a new source table and new DynamoDB tables."""
    source_table = unique_name("users")
    create_source_table(postgres_dsn, source_table)
    users_table, state_table = await create_dynamodb_tables(client)
    return {
        "DATABASE_URL": postgres_dsn,
        "SOURCE_TABLE": source_table,
        "DYNAMODB_ENDPOINT_URL": dynamodb_endpoint,
        "DYNAMODB_TABLE": users_table,
        "DYNAMODB_STATE_TABLE": state_table,
        "AWS_REGION": "us-east-1",
    }


async def run_leases(client: Any, state_table: str) -> list[SegmentLease]:
    """The segment leases of the current run; none before a worker made the plan (this never
    makes one, which would fix the plan at one segment)."""
    response = await client.get_item(TableName=state_table, Key=PLAN_KEY, ConsistentRead=True)
    if "Item" not in response:
        return []
    return await DynamoDbSegmentLeases(client, state_table, PlanStore(client, state_table)).leases()


def checkpointed(leases: Iterable[SegmentLease]) -> bool:
    """Whether a worker recorded a checkpoint in any segment of the run."""
    return any(lease.done or lease.checkpoint > lease.segment.lowest for lease in leases)


class RacingClient:
    """The real DynamoDB client, where someone else changes an item right after it was read:
    `change` alters a copy of the item read, which is put back before the read returns."""

    def __init__(self, client: Any, change: Callable[[dict[str, Any]], object]) -> None:
        self._client = client
        self._change = change

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    async def get_item(self, **kwargs: Any) -> dict[str, Any]:
        response = await self._client.get_item(**kwargs)
        if "Item" in response:
            changed = copy.deepcopy(response["Item"])
            self._change(changed)
            await self._client.put_item(TableName=kwargs["TableName"], Item=changed)
        return response
