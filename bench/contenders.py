"""The contenders the project is measured against: the target's ceilings and two hand-written scripts.

- `ceiling`: BatchWriteItem of items converted beforehand, with `concurrency` requests in flight,
  through the same aioboto3 client the project uses. No PostgreSQL, no checks. The bound of the
  opt-in offline mode, which writes in batches too.
- `conditional_ceiling`: the same items, each one PutItem conditional on `attribute_not_exists`
  (what the live-safe default mode must send, one request per user). No PostgreSQL, no checks.
- `read_ceiling`: the reads `verify` cannot do without: keyset pages of whole rows from
  PostgreSQL and a consistent BatchGetItem (100 keys) of every key, side by side. No comparison.
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

import aiopg
import boto3
import psycopg2
from botocore.config import Config

from user_migration.adapters.dynamodb.client import dynamodb_client
from user_migration.adapters.dynamodb.item_size import Item
from user_migration.adapters.postgres.source import quote_table_name

REGION = "us-east-1"
WRITE_CHUNK = 25
GET_CHUNK = 100
# Pages whose reads may still be in flight while the next page is read from PostgreSQL.
PAGES_AHEAD = 2
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


async def _put_all_conditionally(client: Any, table: str, items: Sequence[Item], concurrency: int) -> None:
    in_flight = asyncio.Semaphore(concurrency)

    async def put(item: Item) -> None:
        async with in_flight:
            await client.put_item(
                TableName=table,
                Item=item,
                ConditionExpression="attribute_not_exists(#k)",
                ExpressionAttributeNames={"#k": "user_id"},
            )

    # One task per request in flight at most, not one per item: 20,000 waiting tasks would cost
    # the client time the project does not spend.
    queue = iter(items)

    async def worker() -> None:
        for item in queue:
            await put(item)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def _conditional_ceiling(endpoint_url: str, table: str, items: Sequence[Item], concurrency: int) -> float:
    async with dynamodb_client(endpoint_url, REGION, max_pool_connections=max(concurrency, 10)) as client:
        await client.describe_table(TableName=table)
        started = time.perf_counter()
        await _put_all_conditionally(client, table, items, concurrency)
        return time.perf_counter() - started


def conditional_ceiling(endpoint_url: str, table: str, items: Sequence[Item], concurrency: int) -> tuple[int, float]:
    """One conditional PutItem (`attribute_not_exists`) per ready item, `concurrency` requests at a
    time: (users, seconds). A refused write (the table was not empty) raises."""
    return len(items), asyncio.run(_conditional_ceiling(endpoint_url, table, items, concurrency))


async def _get_all(client: Any, table: str, user_ids: Sequence[int], in_flight: asyncio.Semaphore) -> int:
    """Consistent BatchGetItem of whole items, unprocessed keys asked again: how many were found."""
    keys = [{"user_id": {"N": str(user_id)}} for user_id in user_ids]
    found = 0
    while keys:
        async with in_flight:
            response = await client.batch_get_item(RequestItems={table: {"Keys": keys, "ConsistentRead": True}})
        found += len(response.get("Responses", {}).get(table, []))
        keys = response.get("UnprocessedKeys", {}).get(table, {}).get("Keys", [])
        if keys:
            await asyncio.sleep(0.05)
    return found


async def _read_ceiling(
    dsn: str, source_table: str, endpoint_url: str, table: str, page_size: int, concurrency: int, limit: int | None
) -> tuple[int, int, float]:
    query = f"SELECT {_COLUMNS} FROM {quote_table_name(source_table)} WHERE id > %s ORDER BY id LIMIT %s"
    async with (
        dynamodb_client(endpoint_url, REGION, max_pool_connections=max(concurrency, 10)) as client,
        aiopg.connect(dsn) as connection,
    ):
        await client.describe_table(TableName=table)
        in_flight = asyncio.Semaphore(concurrency)
        pending: list[list[asyncio.Task[int]]] = []
        rows = found = 0
        last = -1
        started = time.perf_counter()
        async with connection.cursor() as cursor:
            while limit is None or rows < limit:
                size = page_size if limit is None else min(page_size, limit - rows)
                await cursor.execute(query, (last, size))
                page = await cursor.fetchall()
                if not page:
                    break
                rows += len(page)
                last = page[-1][0]
                user_ids = [row[0] for row in page]
                pending.append(
                    [
                        asyncio.create_task(_get_all(client, table, user_ids[start : start + GET_CHUNK], in_flight))
                        for start in range(0, len(user_ids), GET_CHUNK)
                    ]
                )
                if len(pending) > PAGES_AHEAD:  # memory stays flat: wait for the oldest page's reads
                    found += sum(await asyncio.gather(*pending.pop(0)))
                if len(page) < size:
                    break
        for tasks in pending:
            found += sum(await asyncio.gather(*tasks))
        return rows, found, time.perf_counter() - started


def read_ceiling(
    dsn: str,
    source_table: str,
    endpoint_url: str,
    table: str,
    page_size: int,
    concurrency: int,
    limit: int | None = None,
) -> tuple[int, int, float]:
    """Keyset pages of `page_size` whole rows (the first `limit` rows, or all) read from PostgreSQL
    one after the other, while the rows of the pages before have their items fetched by
    consistent BatchGetItem of 100 keys, `concurrency` requests at a time: (rows, items found, seconds)."""
    return asyncio.run(_read_ceiling(dsn, source_table, endpoint_url, table, page_size, concurrency, limit))


async def _scan_keys(endpoint_url: str, table: str, page_size: int) -> tuple[int, float]:
    async with dynamodb_client(endpoint_url, REGION) as client:
        await client.describe_table(TableName=table)
        arguments: dict[str, Any] = {
            "TableName": table,
            "ProjectionExpression": "#k",
            "ExpressionAttributeNames": {"#k": "user_id"},
            "ConsistentRead": True,
            "Limit": page_size,
        }
        scanned = 0
        started = time.perf_counter()
        while True:
            response = await client.scan(**arguments)
            scanned += len(response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return scanned, time.perf_counter() - started
            arguments["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def scan_keys(endpoint_url: str, table: str, page_size: int) -> tuple[int, float]:
    """A consistent keys-only Scan of the whole table, `page_size` items a page, one page after the
    other (what `verify` adds to look for extra items): (keys, seconds)."""
    return asyncio.run(_scan_keys(endpoint_url, table, page_size))


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
