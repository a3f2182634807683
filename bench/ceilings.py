"""Bare clients of the DynamoDB requests a live-safe or offline migration sends, with their client CPU.

Each contender sends items converted beforehand through the same aiobotocore client the project
uses, `concurrency` requests in flight (one task per request in flight, not one per item), no
PostgreSQL and no checks:
- `putitem`: one PutItem per user conditional on `attribute_not_exists` (the live-safe path where
  the endpoint has no PartiQL batches);
- `partiql`: `BatchExecuteStatement`s of 25 `INSERT`s (the live-safe path where it has them);
- `batch_write`: `BatchWriteItem`s of 25 (the offline mode's requests).

Each returns a `Measured`: the users, the wall seconds and the client process's CPU seconds
(`time.process_time()`, this process alone; the server runs in its own process), both from the first
request to the last answer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any

import attrs

from user_migration.adapters.dynamodb.client import dynamodb_client
from user_migration.adapters.dynamodb.item_size import Item
from user_migration.adapters.dynamodb.partiql import insert_statement

REGION = "us-east-1"
CHUNK = 25


@attrs.frozen
class Measured:
    """One contender's run."""

    users: int
    seconds: float
    cpu_seconds: float

    @property
    def users_per_second(self) -> float:
        return self.users / self.seconds

    @property
    def cpu_us_per_user(self) -> float:
        return self.cpu_seconds / self.users * 1e6


async def _drive(
    endpoint_url: str, table: str, units: Sequence[Any], concurrency: int, send: Callable[[Any, Any], Awaitable[None]]
) -> tuple[float, float]:
    async with dynamodb_client(endpoint_url, REGION, max_pool_connections=max(concurrency, 10)) as client:
        await client.describe_table(TableName=table)  # connects and signs once before the clock starts
        queue: Iterator[Any] = iter(units)

        async def worker() -> None:
            for unit in queue:
                await send(client, unit)

        started, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - started, time.process_time() - cpu


def putitem(endpoint_url: str, table: str, items: Sequence[Item], concurrency: int) -> Measured:
    """One conditional PutItem per item; a refused one raises (the table must be empty)."""

    async def send(client: Any, item: Item) -> None:
        await client.put_item(
            TableName=table,
            Item=item,
            ConditionExpression="attribute_not_exists(#k)",
            ExpressionAttributeNames={"#k": "user_id"},
        )

    seconds, cpu = asyncio.run(_drive(endpoint_url, table, items, concurrency, send))
    return Measured(len(items), seconds, cpu)


def partiql(endpoint_url: str, table: str, items: Sequence[Item], concurrency: int) -> Measured:
    """BatchExecuteStatements of 25 INSERTs built beforehand; any statement's error raises."""
    requests = []
    for start in range(0, len(items), CHUNK):
        statements = [insert_statement(0, table, item) for item in items[start : start + CHUNK]]
        requests.append([{"Statement": s.text, "Parameters": list(s.parameters)} for s in statements if s])

    async def send(client: Any, statements: list[dict[str, Any]]) -> None:
        response = await client.batch_execute_statement(Statements=statements)
        errors = [answer["Error"] for answer in response["Responses"] if "Error" in answer]
        if errors:
            raise RuntimeError(f"partiql ceiling: {len(errors)} statements failed, e.g. {errors[0]}")

    seconds, cpu = asyncio.run(_drive(endpoint_url, table, requests, concurrency, send))
    return Measured(len(items), seconds, cpu)


def batch_write(endpoint_url: str, table: str, items: Sequence[Item], concurrency: int) -> Measured:
    """BatchWriteItems of 25, unprocessed items sent again."""
    chunks = [items[start : start + CHUNK] for start in range(0, len(items), CHUNK)]

    async def send(client: Any, chunk: Sequence[Item]) -> None:
        requests = [{"PutRequest": {"Item": item}} for item in chunk]
        while requests:
            response = await client.batch_write_item(RequestItems={table: requests})
            requests = response.get("UnprocessedItems", {}).get(table, [])
            if requests:
                await asyncio.sleep(0.05)

    seconds, cpu = asyncio.run(_drive(endpoint_url, table, chunks, concurrency, send))
    return Measured(len(items), seconds, cpu)


def check_then_batch_write(endpoint_url: str, table: str, items: Sequence[Item], concurrency: int) -> Measured:
    """What the offline mode cannot do without: a consistent keys-only BatchGetItem of every 100
    keys (which of them are stored), then BatchWriteItems of 25 of the absent ones."""
    groups = [items[start : start + 100] for start in range(0, len(items), 100)]

    async def send(client: Any, group: Sequence[Item]) -> None:
        keys = [{"user_id": item["user_id"]} for item in group]
        wanted = {"Keys": keys, "ConsistentRead": True, "ProjectionExpression": "user_id"}
        response = await client.batch_get_item(RequestItems={table: wanted})
        stored = {entry["user_id"]["N"] for entry in response.get("Responses", {}).get(table, [])}
        absent = [item for item in group if item["user_id"]["N"] not in stored]
        for start in range(0, len(absent), CHUNK):
            requests = [{"PutRequest": {"Item": item}} for item in absent[start : start + CHUNK]]
            while requests:
                answer = await client.batch_write_item(RequestItems={table: requests})
                requests = answer.get("UnprocessedItems", {}).get(table, [])

    seconds, cpu = asyncio.run(_drive(endpoint_url, table, groups, concurrency, send))
    return Measured(len(items), seconds, cpu)
