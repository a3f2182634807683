"""The users table's write capacity read with DescribeTable (adapters.dynamodb_capacity) on moto, and
a budget given as a percentage of it."""

from __future__ import annotations

from typing import Any

import pytest

from tests.real_adapters import unique_name
from user_migration.adapters.dynamodb.capacity import (
    ON_DEMAND_WITHOUT_MAXIMUM,
    DynamoDbTableCapacity,
    write_capacity_of,
)
from user_migration.domain.budget.bucket import FLOOR_UNITS_PER_SECOND, TokenBucketBudget
from user_migration.domain.budget.upkeep import BudgetUpkeep
from user_migration.domain.errors import TargetTableMissing


async def create_table(client: Any, **billing: Any) -> str:
    name = unique_name("capacity")
    await client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "user_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "user_id", "AttributeType": "N"}],
        **billing,
    )
    return name


async def test_a_provisioned_table_gives_its_write_capacity_units(dynamodb):
    table = await create_table(dynamodb, ProvisionedThroughput={"ReadCapacityUnits": 5, "WriteCapacityUnits": 400})
    assert await DynamoDbTableCapacity(dynamodb, table).write_units() == 400


async def test_an_on_demand_table_without_a_maximum_gives_what_a_new_one_takes_at_once(dynamodb):
    table = await create_table(dynamodb, BillingMode="PAY_PER_REQUEST")
    assert await DynamoDbTableCapacity(dynamodb, table).write_units() == ON_DEMAND_WITHOUT_MAXIMUM == 4000


def test_an_on_demand_maximum_is_the_capacity():
    # moto drops OnDemandThroughput from DescribeTable: the answer's documented shape, read directly.
    table = {
        "BillingModeSummary": {"BillingMode": "PAY_PER_REQUEST"},
        "ProvisionedThroughput": {"ReadCapacityUnits": 0, "WriteCapacityUnits": 0},
        "OnDemandThroughput": {"MaxReadRequestUnits": -1, "MaxWriteRequestUnits": 1500},
    }
    assert write_capacity_of(table) == 1500
    table["OnDemandThroughput"]["MaxWriteRequestUnits"] = -1  # -1: no maximum set
    assert write_capacity_of(table) == ON_DEMAND_WITHOUT_MAXIMUM


async def test_a_missing_table_is_named(dynamodb):
    with pytest.raises(TargetTableMissing, match="no_such_table"):
        await DynamoDbTableCapacity(dynamodb, "no_such_table").write_units()


async def test_a_percentage_budget_is_that_share_of_the_capacity_and_the_floor_until_it_is_read(dynamodb):
    table = await create_table(dynamodb, ProvisionedThroughput={"ReadCapacityUnits": 5, "WriteCapacityUnits": 400})
    budget = TokenBucketBudget(FLOOR_UNITS_PER_SECOND)
    upkeep = BudgetUpkeep(budget, capacity=DynamoDbTableCapacity(dynamodb, table), capacity_percent=25)
    await upkeep.start()
    try:
        assert (budget.budget, budget.share) == (100, 100)
    finally:
        await upkeep.stop()
    missing = TokenBucketBudget(FLOOR_UNITS_PER_SECOND)
    failures: list[str] = []
    upkeep = BudgetUpkeep(
        missing,
        capacity=DynamoDbTableCapacity(dynamodb, "no_such_table"),
        capacity_percent=25,
        on_unavailable=lambda action, error: failures.append(action),
    )
    await upkeep.start()
    await upkeep.stop()
    assert (missing.budget, failures) == (FLOOR_UNITS_PER_SECOND, ["reading the table's capacity"])
