"""An offline write (`write_users`: users found absent) asks DynamoDB what it consumed only where the
table has a secondary index, on every DynamoDB implementation the tests start: without one, each item
costs its own write units, which is what the budget is debited (adapters.dynamodb.known_charge)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.factories import prepared_user
from tests.integration.test_dynamodb_target import MIGRATED_AT
from tests.real_adapters import unique_name
from user_migration.adapters.dynamodb.client import dynamodb_client
from user_migration.adapters.dynamodb.codec import encode_user
from user_migration.adapters.dynamodb.item_size import write_units_of
from user_migration.adapters.dynamodb.tables import ensure_tables
from user_migration.adapters.dynamodb.target import DynamoDbUserTarget
from user_migration.domain.budget.bucket import TokenBucketBudget


class Recording:
    """The real client; the arguments of each BatchWriteItem but its items are kept."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.arguments: list[dict[str, Any]] = []
        self.described = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    async def describe_table(self, **kwargs: Any) -> Any:
        self.described += 1
        return await self._client.describe_table(**kwargs)

    async def batch_write_item(self, **kwargs: Any) -> Any:
        self.arguments.append({name: value for name, value in kwargs.items() if name != "RequestItems"})
        return await self._client.batch_write_item(**kwargs)


@pytest.fixture
async def client(any_dynamodb_endpoint: str) -> AsyncIterator[Any]:
    async with dynamodb_client(any_dynamodb_endpoint, "us-east-1") as client:
        yield client


def users() -> list[Any]:
    # Three with a display name, one without (an index on it does not hold that one); one of 2 started KB.
    return [
        prepared_user(1, MIGRATED_AT),
        prepared_user(2, MIGRATED_AT, display_name="x" * 1500),
        prepared_user(3, MIGRATED_AT),
        prepared_user(4, MIGRATED_AT, display_name=None),
    ]


async def test_without_secondary_indexes_the_items_own_units_are_debited_unasked(client):
    table = unique_name("users")
    await ensure_tables(client, table, unique_name("state"))
    recording, budget = Recording(client), TokenBucketBudget(10_000)
    target = DynamoDbUserTarget(recording, table, budget=budget)
    await target.check_ready()
    outcome = await target.write_users(users())
    assert sorted(outcome.written) == [1, 2, 3, 4]
    assert recording.arguments == [{}]  # no ReturnConsumedCapacity
    assert recording.described == 1  # the readiness check's description served the write too
    assert budget.snapshot().units_spent == 1 + 2 + 1 + 1
    assert budget.snapshot().units_spent == sum(write_units_of(encode_user(user, "user_id")) for user in users())


async def test_with_a_global_secondary_index_dynamodb_is_asked(client, request):
    table = unique_name("users")
    await client.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "user_id", "KeyType": "HASH"}],
        AttributeDefinitions=[
            {"AttributeName": "user_id", "AttributeType": "N"},
            {"AttributeName": "display_name", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by_display_name",
                "KeySchema": [{"AttributeName": "display_name", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            }
        ],
    )
    await client.get_waiter("table_exists").wait(TableName=table, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    recording, budget = Recording(client), TokenBucketBudget(10_000)
    outcome = await DynamoDbUserTarget(recording, table, budget=budget).write_users(users())
    assert sorted(outcome.written) == [1, 2, 3, 4]
    assert recording.arguments == [{"ReturnConsumedCapacity": "TOTAL"}]
    assert recording.described == 1  # looked at before the first write
    spent = budget.snapshot().units_spent
    if request.node.callspec.params["any_dynamodb_endpoint"] == "dynamodb-local":
        # AWS's own server counts the index's writes: the three items it holds, two units for the
        # one whose key is the long name.
        assert spent == 5 + 1 + 2 + 1
    else:
        # moto and dynalite leave the index out (or answer 1): never less than the items' own units.
        assert spent == 5
