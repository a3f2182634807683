"""The contenders the project is measured against: the target's ceiling and two hand-written scripts.

- `ceiling`: BatchWriteItem of items converted beforehand, with `concurrency` requests in flight,
  through the same aioboto3 client the project uses. No PostgreSQL, no checks.
- `naive`: a first-draft migrator: for each row, GetItem and then PutItem, one user at a time.
- `batch_writer`: what a user would write instead: psycopg2 and boto3's `Table.batch_writer()`.

Each returns the number of users it moved and the seconds it took.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

import boto3
import psycopg2
from botocore.config import Config

from adapters.dynamodb_client import dynamodb_client
from adapters.postgres import quote_table_name
from domain.model import Item

REGION = "us-east-1"
WRITE_CHUNK = 25
_COLUMNS = "id, username, email, display_name, status, created_at, updated_at, profile::text"


async def _write_all(client: Any, table: str, items: Sequence[Item], concurrency: int) -> None:
    in_flight = asyncio.Semaphore(concurrency)

    async def write(chunk: Sequence[Item]) -> None:
        requests = [{"PutRequest": {"Item": item}} for item in chunk]
        while requests:
            async with in_flight:
                response = await client.batch_write_item(RequestItems={table: requests})
            requests = response.get("UnprocessedItems", {}).get(table, [])
            if requests:
                await asyncio.sleep(0.05)

    chunks = [items[start : start + WRITE_CHUNK] for start in range(0, len(items), WRITE_CHUNK)]
    await asyncio.gather(*(write(chunk) for chunk in chunks))


async def _ceiling(endpoint_url: str, table: str, items: Sequence[Item], concurrency: int) -> float:
    async with dynamodb_client(endpoint_url, REGION, max_pool_connections=max(concurrency, 10)) as client:
        await client.describe_table(TableName=table)  # connects and signs once before the clock starts
        started = time.perf_counter()
        await _write_all(client, table, items, concurrency)
        return time.perf_counter() - started


def ceiling(endpoint_url: str, table: str, items: Sequence[Item], concurrency: int) -> tuple[int, float]:
    """BatchWriteItem of ready items, `concurrency` requests at a time: (users, seconds)."""
    return len(items), asyncio.run(_ceiling(endpoint_url, table, items, concurrency))


def _table(endpoint_url: str, table: str) -> Any:
    resource = boto3.resource(
        "dynamodb", endpoint_url=endpoint_url, region_name=REGION, config=Config(retries={"mode": "standard"})
    )
    return resource.Table(table)


def _item_of(row: Sequence[Any]) -> dict[str, Any]:
    """A row as a boto3 resource item: timestamps as ISO text, the profile with exact numbers."""
    user_id, username, email, display_name, status, created_at, updated_at, profile = row
    item: dict[str, Any] = {
        "user_id": user_id,
        "username": username,
        "email": email,
        "status": status,
        "created_at": created_at.isoformat(),
    }
    if display_name is not None:
        item["display_name"] = display_name
    if updated_at is not None:
        item["updated_at"] = updated_at.isoformat()
    if profile is not None:
        item["profile"] = json.loads(profile, parse_float=Decimal)
    return item


def _rows(dsn: str, source_table: str, limit: int | None) -> Iterable[Sequence[Any]]:
    connection = psycopg2.connect(dsn)
    try:
        with connection, connection.cursor(name="bench_rows") as cursor:
            cursor.itersize = 1000
            query = f"SELECT {_COLUMNS} FROM {quote_table_name(source_table)} ORDER BY id"
            if limit is not None:
                cursor.execute(query + " LIMIT %s", (limit,))
            else:
                cursor.execute(query)
            yield from cursor
    finally:
        connection.close()


def naive(dsn: str, source_table: str, endpoint_url: str, table: str, limit: int) -> tuple[int, float]:
    """Per user: GetItem (is it there?) then PutItem, one user after the other."""
    target = _table(endpoint_url, table)
    target.load()  # connects before the clock starts
    moved = 0
    started = time.perf_counter()
    for row in _rows(dsn, source_table, limit):
        if "Item" not in target.get_item(Key={"user_id": row[0]}, ConsistentRead=True):
            target.put_item(Item=_item_of(row))
        moved += 1
    return moved, time.perf_counter() - started


def batch_writer(dsn: str, source_table: str, endpoint_url: str, table: str) -> tuple[int, float]:
    """psycopg2 rows straight into boto3's `Table.batch_writer()` (25 items a request, one at a time)."""
    target = _table(endpoint_url, table)
    target.load()
    moved = 0
    started = time.perf_counter()
    with target.batch_writer() as writer:
        for row in _rows(dsn, source_table, None):
            writer.put_item(Item=_item_of(row))
            moved += 1
    return moved, time.perf_counter() - started
