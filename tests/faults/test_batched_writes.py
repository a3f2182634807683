"""The batched live-safe writes (PartiQL `BatchExecuteStatement`s) on AWS's DynamoDB Local, with faults.

Each test writes through the fault proxy in front of DynamoDB Local with `WritePath.PARTIQL` (no
probe: a probe request would take the proxy's first rule), and checks every user's outcome and the
stored items against what one conditional PutItem per user would have left: a statement failing
alone fails only its user; throttled statements are sent again; an answer lost and the request
re-sent by botocore still counts each user written once; a batch refused whole goes as PutItems.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest

from tests.factories import prepared_user
from tests.real_adapters import create_dynamodb_tables
from user_migration.adapters.dynamodb.client import dynamodb_client
from user_migration.adapters.dynamodb.codec import encode_user, is_own_write
from user_migration.adapters.dynamodb.partiql import WritePath
from user_migration.adapters.dynamodb.target import DynamoDbUserTarget
from user_migration.adapters.retry import Backoff
from user_migration.domain.budget.bucket import TokenBucketBudget
from user_migration.domain.model import WriteRule

pytestmark = pytest.mark.parametrize("dynamodb_server", ["dynamodb-local"], indirect=True)

NOW = datetime(2026, 12, 6, tzinfo=UTC)
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def row(user_id: int, updated: datetime = T0, **changes: Any):
    return prepared_user(user_id, NOW, updated_at=updated, **changes)


class CountingBudget(TokenBucketBudget):
    """An unlimited budget that keeps what it was told."""

    def __init__(self) -> None:
        super().__init__()
        self.spent: list[tuple[float, float]] = []
        self.throttles = 0

    def spend(self, actual_units: float, estimated_units: float) -> None:
        self.spent.append((actual_units, estimated_units))
        super().spend(actual_units, estimated_units)

    def throttled(self) -> None:
        self.throttles += 1
        super().throttled()


@attrs.define
class Batched:
    target: DynamoDbUserTarget
    budget: CountingBudget
    table: str
    direct: Any

    async def items(self) -> dict[int, Any]:
        response = await self.direct.scan(TableName=self.table, ConsistentRead=True)
        return {int(item["user_id"]["N"]): item for item in response["Items"]}


@pytest.fixture
async def batched(dynamodb, dynamodb_proxy):
    users_table, _ = await create_dynamodb_tables(dynamodb)
    budget = CountingBudget()
    async with dynamodb_client(dynamodb_proxy.url, "us-east-1") as client:
        target = DynamoDbUserTarget(
            client,
            users_table,
            backoff=Backoff(base_seconds=0.01, cap_seconds=0.05),
            budget=budget,
            write_path=WritePath.PARTIQL,
        )
        yield Batched(target, budget, users_table, dynamodb)


async def test_a_statement_failing_alone_fails_only_its_user(batched, dynamodb_proxy):
    application = {"user_id": {"N": "7"}, "display_name": {"S": "the application's"}}
    await batched.direct.put_item(TableName=batched.table, Item=application)
    await batched.target.write_users_if([row(20)], WriteRule.ABSENT)

    outcome = await batched.target.write_users_if([row(i) for i in range(1, 31)], WriteRule.ABSENT)

    assert outcome.refused == {7, 20}
    assert sorted(outcome.written) == sorted(outcome.created) == [i for i in range(1, 31) if i not in (7, 20)]
    items = await batched.items()
    assert items[7] == application
    assert all(is_own_write(items[i], encode_user(row(i), "user_id")) for i in outcome.written)
    assert dynamodb_proxy.operations["BatchExecuteStatement"] == 3  # 1, then 25 + 5
    assert dynamodb_proxy.operations["PutItem"] == 0
    # Every statement is charged as its PutItem was, refused ones included (DynamoDB read the item).
    assert sum(estimated for _, estimated in batched.budget.spent) == 31


async def test_replace_if_older_stores_exactly_what_a_putitem_would(batched, dynamodb_proxy):
    later = T0 + timedelta(days=1)
    await batched.target.write_users_if([row(1), row(2, later + timedelta(days=1)), row(3)], WriteRule.ABSENT)
    # An attribute the new item lacks (an optional column that became NULL-and-omitted, say).
    await batched.direct.update_item(
        TableName=batched.table,
        Key={"user_id": {"N": "1"}},
        UpdateExpression="SET legacy = :x",
        ExpressionAttributeValues={":x": {"S": "old"}},
    )
    foreign = {"user_id": {"N": "4"}, "display_name": {"S": "no version"}}
    await batched.direct.put_item(TableName=batched.table, Item=foreign)
    users = [row(1, later, display_name="Changed"), row(2, later), row(3), row(4, later), row(5, later)]

    outcome = await batched.target.write_users_if(users, WriteRule.OLDER)

    assert (sorted(outcome.written), outcome.created, outcome.refused) == ([1, 5], {5}, {2, 3, 4})
    items = await batched.items()
    sent = encode_user(users[0], "user_id")
    assert set(items[1]) == set(sent)  # `legacy` removed, as a PutItem replaces the whole item
    assert is_own_write(items[1], sent)
    assert items[1]["display_name"] == {"S": "Changed"}
    assert items[4] == foreign
    assert dynamodb_proxy.operations["PutItem"] == 0


async def test_throttled_statements_are_sent_again(batched, dynamodb_proxy):
    rule = dynamodb_proxy.throttle_statements({3, 9}, times=2)

    outcome = await batched.target.write_users_if([row(i) for i in range(1, 11)], WriteRule.ABSENT)

    assert rule.hits == 2
    assert sorted(outcome.written) == list(range(1, 11))
    assert not outcome.failed
    assert sorted(dynamodb_proxy.put_order) == list(range(1, 11))  # each written once
    assert batched.target.counters.throttles == 2
    assert batched.target.counters.retries == 2
    assert batched.budget.throttles == 2
    # The throttled statements were charged nothing: 10 writes in all.
    assert sum(actual for actual, _ in batched.budget.spent) == 10


async def test_statements_throttled_past_the_retries_fail_with_the_reason(batched, dynamodb_proxy):
    dynamodb_proxy.throttle_statements({4})

    outcome = await batched.target.write_users_if([row(i) for i in range(1, 6)], WriteRule.ABSENT)

    assert sorted(outcome.written) == [1, 2, 3, 5]
    assert list(outcome.failed) == [4]
    assert "throttled by DynamoDB" in outcome.failed[4]
    assert 4 not in await batched.items()


async def test_an_answer_lost_and_the_request_resent_counts_each_user_written(batched, dynamodb_proxy):
    dynamodb_proxy.lose_response("BatchExecuteStatement", times=1)

    outcome = await batched.target.write_users_if([row(i) for i in range(1, 6)], WriteRule.ABSENT)

    assert sorted(outcome.written) == sorted(outcome.created) == [1, 2, 3, 4, 5]
    assert not outcome.refused
    assert not outcome.failed
    assert dynamodb_proxy.operations["BatchExecuteStatement"] == 2  # the re-sent copy: DuplicateItem each
    assert sorted(dynamodb_proxy.put_order) == [1, 2, 3, 4, 5]  # written by the first copy, once


async def test_a_replacement_whose_answer_was_lost_is_written(batched, dynamodb_proxy):
    await batched.target.write_users_if([row(1), row(2)], WriteRule.ABSENT)
    dynamodb_proxy.lose_response("BatchExecuteStatement", times=1)
    later = T0 + timedelta(days=1)

    outcome = await batched.target.write_users_if([row(1, later), row(2, later)], WriteRule.OLDER)

    assert sorted(outcome.written) == [1, 2]
    assert not outcome.refused
    assert not outcome.failed
    # The re-sent UPDATEs failed their condition on the very items the first copy wrote.
    assert dynamodb_proxy.operations["BatchExecuteStatement"] == 3


async def test_a_batch_refused_whole_goes_as_putitems(batched, dynamodb_proxy):
    dynamodb_proxy.fail("BatchExecuteStatement", times=1, status=400, code="ValidationException")
    await batched.direct.put_item(TableName=batched.table, Item={"user_id": {"N": "2"}})

    outcome = await batched.target.write_users_if([row(1), row(2), row(3)], WriteRule.ABSENT)

    assert sorted(outcome.written) == [1, 3]
    assert outcome.refused == {2}
    assert dynamodb_proxy.operations["PutItem"] == 3


async def test_a_rewrite_keeps_an_item_changed_in_between(batched, dynamodb_proxy):
    await batched.target.write_users_if([row(1), row(2)], WriteRule.ABSENT)

    def change_user_2(request):
        if dynamodb_proxy.operations["BatchExecuteStatement"] == 2:  # the rewrite's batch
            update = {
                "TableName": batched.table,
                "Key": {"user_id": {"N": "2"}},
                "UpdateExpression": "SET display_name = :n",
                "ExpressionAttributeValues": {":n": {"S": "edited by the application"}},
            }
            return request.with_json(update, operation="UpdateItem")
        return None

    dynamodb_proxy.inject_before("BatchExecuteStatement", change_user_2, times=None)

    outcome = await batched.target.rewrite_users([row(1, display_name="Fixed"), row(2, display_name="Fixed")])

    assert outcome.rewritten == (1,)
    assert list(outcome.kept) == [2]
    assert "changed in DynamoDB while" in outcome.kept[2]
    items = await batched.items()
    assert items[1]["display_name"] == {"S": "Fixed"}
    assert items[2]["display_name"] == {"S": "edited by the application"}
