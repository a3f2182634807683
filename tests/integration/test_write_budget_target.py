"""The DynamoDB target spends every write from the write budget (adapters.dynamodb_spending), on moto.

moto answers ConsumedCapacity 1.0 for any PutItem, DeleteItem or whole BatchWriteItem, and nothing
for a failed condition: what is debited is DynamoDB's own charging rule (one unit per started KB of
each item) wherever moto's figure is lower or missing.
"""

from __future__ import annotations

from typing import Any

from tests.factories import prepared_user
from tests.integration.test_dynamodb_target import MIGRATED_AT, FlakyClient, throttling_error
from tests.real_adapters import create_dynamodb_tables
from user_migration.adapters.dynamodb.target import DynamoDbUserTarget
from user_migration.adapters.retry import Backoff
from user_migration.domain.budget.bucket import TokenBucketBudget
from user_migration.domain.model import WriteRule

FAST = Backoff(attempts=4, base_seconds=0.001, cap_seconds=0.01)


def target_on(client: Any, table: str) -> tuple[DynamoDbUserTarget, TokenBucketBudget]:
    budget = TokenBucketBudget(10_000)  # high enough never to wait here: these tests count
    return DynamoDbUserTarget(client, table, backoff=FAST, budget=budget), budget


async def test_conditional_puts_are_debited_and_a_refused_one_still_costs(dynamodb):
    users_table, _ = await create_dynamodb_tables(dynamodb)
    target, budget = target_on(dynamodb, users_table)
    users = [prepared_user(user_id, MIGRATED_AT) for user_id in range(1, 6)]
    outcome = await target.write_users_if(users, WriteRule.ABSENT)
    assert len(outcome.written) == 5
    assert budget.snapshot().units_spent == 5
    again = await target.write_users_if(users[:2], WriteRule.ABSENT)
    assert again.refused == {1, 2}
    assert budget.snapshot().units_spent == 7  # a failed condition is charged like the write


async def test_a_batch_is_debited_by_its_items_sizes(dynamodb):
    users_table, _ = await create_dynamodb_tables(dynamodb)
    target, budget = target_on(dynamodb, users_table)
    small = [prepared_user(user_id, MIGRATED_AT) for user_id in range(1, 21)]
    large = prepared_user(21, MIGRATED_AT, display_name="x" * 2500)  # 3 started KB
    outcome = await target.write_users([*small, large])
    assert len(outcome.written) == 21
    assert budget.snapshot().units_spent == 20 + 3


async def test_rewrites_and_deletes_are_debited(dynamodb):
    users_table, _ = await create_dynamodb_tables(dynamodb)
    target, budget = target_on(dynamodb, users_table)
    await target.write_users_if([prepared_user(1, MIGRATED_AT)], WriteRule.ABSENT)
    rewritten = await target.rewrite_users([prepared_user(1, MIGRATED_AT, display_name="Changed")])
    assert rewritten.rewritten == (1,)
    deleted = await target.delete_unchanged([1])
    assert deleted.deleted == (1,)
    assert budget.snapshot().units_spent == 3


async def test_throttling_and_unprocessed_items_are_told_to_the_budget_and_cost_nothing(dynamodb):
    users_table, _ = await create_dynamodb_tables(dynamodb)
    flaky = FlakyClient(dynamodb)
    flaky.throttle_write = lambda ids, call: call == 1
    flaky.withhold_items[3] = 1
    target, budget = target_on(flaky, users_table)
    outcome = await target.write_users([prepared_user(user_id, MIGRATED_AT) for user_id in range(1, 6)])
    assert len(outcome.written) == 5
    snapshot = budget.snapshot()
    assert snapshot.throttled == 2  # the throttled request, and the answer that left an item unprocessed
    assert snapshot.units_spent == 5  # each item once: nothing for the throttled try or the withheld item
    assert snapshot.units_per_second is not None
    assert snapshot.units_per_second < 10_000  # slowed down


async def test_a_throttled_conditional_put_is_told_to_the_budget(dynamodb):
    users_table, _ = await create_dynamodb_tables(dynamodb)

    class ThrottledOnce(FlakyClient):
        calls = 0

        async def put_item(self, **kwargs: Any) -> Any:
            self.calls += 1
            if self.calls == 1:
                raise throttling_error("PutItem")
            return await self._client.put_item(**kwargs)

    target, budget = target_on(ThrottledOnce(dynamodb), users_table)
    outcome = await target.write_users_if([prepared_user(1, MIGRATED_AT)], WriteRule.ABSENT)
    assert outcome.written == (1,)
    assert (budget.snapshot().throttled, budget.snapshot().units_spent) == (1, 1)


async def test_the_requests_ask_dynamodb_for_the_capacity_they_consumed(dynamodb):
    users_table, _ = await create_dynamodb_tables(dynamodb)
    sent: list[dict[str, Any]] = []

    class Recording(FlakyClient):
        async def put_item(self, **kwargs: Any) -> Any:
            sent.append(kwargs)
            return await self._client.put_item(**kwargs)

    target, _ = target_on(Recording(dynamodb), users_table)
    await target.write_users_if([prepared_user(1, MIGRATED_AT)], WriteRule.ABSENT)
    assert sent[0]["ReturnConsumedCapacity"] == "TOTAL"


async def test_a_configured_budget_joins_the_shares_in_the_state_table_and_shows_in_metrics(
    aiohttp_client, dynamodb, dynamodb_endpoint
):
    from user_migration.entrypoints.harness import InMemoryHarness
    from user_migration.entrypoints.http.app import init_app
    from user_migration.entrypoints.settings import Settings

    _, state_table = await create_dynamodb_tables(dynamodb)
    harness = InMemoryHarness.with_users()
    container = harness.container()
    container.budget_shares.reset_override()  # the real shares: the state table on moto
    container.config.from_dict(
        {
            "dynamodb_endpoint_url": dynamodb_endpoint,
            "aws_region": "us-east-1",
            "dynamodb_state_table": state_table,
            "dynamodb_concurrency": 4,
            "max_write_units": 50.0,
        }
    )
    client = await aiohttp_client(await init_app(Settings(api_tokens=(harness.token,)), container))
    metrics = await (await client.get("/metrics", headers={"Authorization": f"Bearer {harness.token}"})).text()
    assert "user_migration_write_budget_units_per_second 50.0" in metrics  # alone: the whole budget
    places = await dynamodb.scan(TableName=state_table)
    assert [item["state_id"]["S"].startswith("budget#") for item in places["Items"]] == [True]
    await client.close()  # shutdown withdraws the share before the client is closed
    assert (await dynamodb.scan(TableName=state_table))["Items"] == []
