"""When an offline write asks DynamoDB what it consumed (adapters.dynamodb.known_charge), with a
stand-in client that answers DescribeTable; the requests themselves are in
tests/integration/test_known_charge.py."""

from __future__ import annotations

import asyncio
from typing import Any

from botocore.exceptions import ClientError, EndpointConnectionError

from user_migration.adapters.dynamodb.known_charge import KnownCharge, has_secondary_indexes

ASK = {"ReturnConsumedCapacity": "TOTAL"}
INDEX = {"IndexName": "by_email", "KeySchema": [{"AttributeName": "email", "KeyType": "HASH"}]}


class Describing:
    """Answers DescribeTable with `table` (or raises `error`), counting the calls."""

    def __init__(self, table: dict[str, Any] | None = None, error: Exception | None = None) -> None:
        self.table = table if table is not None else {"TableName": "users"}
        self.error = error
        self.calls = 0

    async def describe_table(self, TableName: str) -> dict[str, Any]:
        self.calls += 1
        await asyncio.sleep(0)
        if self.error is not None:
            raise self.error
        return {"Table": self.table}


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_indexes_of_either_kind_are_seen():
    assert not has_secondary_indexes({"TableName": "users"})
    assert not has_secondary_indexes({"GlobalSecondaryIndexes": []})
    assert has_secondary_indexes({"GlobalSecondaryIndexes": [INDEX]})
    assert has_secondary_indexes({"LocalSecondaryIndexes": [INDEX]})


async def test_a_table_without_indexes_is_not_asked_and_described_once_a_period():
    client, clock = Describing(), Clock()
    charge = KnownCharge(client, "users", every_seconds=300, clock=clock)
    answers = await asyncio.gather(*(charge.arguments() for _ in range(10)))
    assert answers == [{}] * 10
    assert client.calls == 1  # writes side by side share one look
    clock.now += 299
    assert await charge.arguments() == {}
    assert client.calls == 1
    clock.now += 1
    client.table["GlobalSecondaryIndexes"] = [INDEX]  # an index created while the run goes on
    assert await charge.arguments() == ASK
    assert client.calls == 2


async def test_a_description_read_elsewhere_counts_as_the_periods_look():
    client, clock = Describing({"TableName": "users", "GlobalSecondaryIndexes": [INDEX]}), Clock()
    charge = KnownCharge(client, "users", every_seconds=300, clock=clock)
    charge.seen({"TableName": "users"})  # the target's readiness check described it
    assert await charge.arguments() == {}
    assert client.calls == 0
    clock.now += 300
    assert await charge.arguments() == ASK
    assert client.calls == 1


async def test_a_table_with_an_index_is_asked():
    charge = KnownCharge(Describing({"TableName": "users", "GlobalSecondaryIndexes": [INDEX]}), "users")
    assert await charge.arguments() == ASK


async def test_a_table_that_cannot_be_described_is_asked_until_it_can_be():
    denied = ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "DescribeTable")
    for error in (denied, EndpointConnectionError(endpoint_url="http://127.0.0.1:9")):
        client, clock = Describing(error=error), Clock()
        charge = KnownCharge(client, "users", every_seconds=300, clock=clock)
        assert await charge.arguments() == ASK
        assert await charge.arguments() == ASK
        assert client.calls == 1  # not described again at every write
        client.error = None
        clock.now += 300
        assert await charge.arguments() == {}
