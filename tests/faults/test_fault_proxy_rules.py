"""The fault proxy's rules on the single-item and read operations (PutItem, DeleteItem, GetItem,
BatchGetItem, Scan), through the real DynamoDB target on moto: a rule hits exactly the user it
names, and `puts` / `deletes` count only what the server really did.

These are the operations of the live write path and of the coming `sync` and `verify`; a rule
that silently matched nothing would make every fault test built on it pass for nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.factories import prepared_user
from tests.faults.conftest import World
from tests.faults.fault_proxy import request_user_ids
from user_migration.adapters.dynamodb.client import dynamodb_client
from user_migration.adapters.dynamodb.target import DynamoDbUserTarget
from user_migration.domain.errors import TargetThrottled, TargetUnavailable
from user_migration.domain.model import WriteRule

MIGRATED_AT = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.fixture
async def client(world: World) -> AsyncIterator[Any]:
    """The production DynamoDB client, through the proxy."""
    async with dynamodb_client(world.dynamodb_proxy.url, "us-east-1") as client:
        yield client


def users(*user_ids: int) -> list:
    return [prepared_user(user_id, MIGRATED_AT) for user_id in user_ids]


def test_request_user_ids_reads_every_kind_of_request():
    key = {"user_id": {"N": "4"}}
    assert request_user_ids({"TableName": "t", "Item": {**key, "a": {"S": "x"}}}) == [4]  # PutItem
    assert request_user_ids({"TableName": "t", "Key": key}) == [4]  # GetItem, DeleteItem, UpdateItem
    batch_write = {"t": [{"PutRequest": {"Item": {"user_id": {"N": "1"}}}}, {"DeleteRequest": {"Key": key}}]}
    assert request_user_ids({"RequestItems": batch_write}) == [1, 4]
    assert request_user_ids({"RequestItems": {"t": {"Keys": [key, {"user_id": {"N": "9"}}]}}}) == [4, 9]
    assert request_user_ids({"TableName": "t", "Key": {"state_id": {"S": "progress"}}}) == []  # the state table
    assert request_user_ids({"TableName": "t", "Limit": 10}) == []  # a Scan


async def test_put_item_rules_hit_only_their_user_and_puts_count_only_what_was_written(world: World, client):
    target = DynamoDbUserTarget(client, world.users_table)
    proxy = world.dynamodb_proxy
    refused = proxy.fail("PutItem", status=400, code="ValidationException", user_ids={3})
    hung_up = proxy.hangup("PutItem", user_ids={5})
    async with asyncio.timeout(30):
        outcome = await target.write_users_if(users(1, 2, 3, 4, 5), WriteRule.ABSENT)
    assert sorted(outcome.written) == [1, 2, 4]
    assert sorted(outcome.failed) == [3, 5]
    assert "ValidationException" in outcome.failed[3]
    assert refused.hits == 1  # a 4xx refusal is not re-sent
    assert hung_up.hits == 4  # botocore's 4 attempts, then a GetItem found nothing
    assert set(await world.items()) == {1, 2, 4}
    assert dict(proxy.puts) == {1: 1, 2: 1, 4: 1}

    proxy.heal()
    again = await target.write_users_if(users(1, 2, 3, 4, 5), WriteRule.ABSENT)
    assert (sorted(again.written), sorted(again.refused)) == ([3, 5], [1, 2, 4])
    assert dict(proxy.puts) == {1: 1, 2: 1, 3: 1, 4: 1, 5: 1}  # a refused conditional put wrote nothing
    assert proxy.put_order[-2:] in ([3, 5], [5, 3])


async def test_delete_item_rules_hit_only_their_user_and_deletes_count_what_was_removed(world: World, client):
    target = DynamoDbUserTarget(client, world.users_table)
    await target.write_users_if(users(1, 2, 3, 4), WriteRule.ABSENT)
    proxy = world.dynamodb_proxy
    failing = proxy.fail("DeleteItem", status=400, code="ValidationException", user_ids={2})
    async with asyncio.timeout(30):
        outcome = await target.delete_unchanged([1, 2, 3, 4])
    assert (sorted(outcome.deleted), sorted(outcome.failed)) == ([1, 3, 4], [2])
    assert failing.hits == 1
    assert set(await world.items()) == {2}
    assert dict(proxy.deletes) == {1: 1, 3: 1, 4: 1}


# Product bug (adapters/dynamodb/conditional.py, ConditionalWriter._delete_one): a conditional
# delete whose first answer was lost and that botocore re-sent finds the item already gone (its own
# first copy removed it), fails its condition, and the user is reported kept ("changed in DynamoDB
# while it was being deleted") although it was deleted. Strict: fails once fixed.
async def test_a_delete_whose_first_answer_is_lost_is_reported_deleted(world: World, client):
    target = DynamoDbUserTarget(client, world.users_table)
    await target.write_users_if(users(1, 2, 3), WriteRule.ABSENT)
    seen: set[int] = set()

    def first_of_each_user(document: dict) -> bool:
        new = set(request_user_ids(document)) - seen
        seen.update(new)
        return bool(new)

    world.dynamodb_proxy.lose_response("DeleteItem", when=first_of_each_user)
    async with asyncio.timeout(30):
        outcome = await target.delete_unchanged([1, 2, 3])
    assert await world.items() == {}
    assert (sorted(outcome.deleted), outcome.kept, outcome.failed) == ([1, 2, 3], {}, {})


async def test_get_item_rules_hit_only_their_user(world: World, client):
    target = DynamoDbUserTarget(client, world.users_table)
    await target.write_users_if(users(1, 2), WriteRule.ABSENT)
    world.dynamodb_proxy.throttle("GetItem", user_ids={2})
    async with asyncio.timeout(60):
        assert (await target.read_item(1) or {}).get("user_id") == {"N": "1"}
        with pytest.raises(TargetThrottled):
            await target.read_item(2)


async def test_batch_get_keys_left_unprocessed_are_asked_again_then_throttled(world: World, client):
    target = DynamoDbUserTarget(client, world.users_table)
    await target.write_users_if(users(*range(1, 11)), WriteRule.ABSENT)
    proxy = world.dynamodb_proxy
    twice = proxy.unprocessed({4, 7}, times=2, operation="BatchGetItem")
    async with asyncio.timeout(30):
        items = await target.read_items(range(1, 11))
    assert sorted(items) == list(range(1, 11))
    assert twice.hits == 2
    assert target.counters.unprocessed_keys == 4  # two keys, left out twice

    proxy.heal()
    proxy.unprocessed({4}, operation="BatchGetItem")  # for ever: the adapter gives up after its attempts
    async with asyncio.timeout(30):
        with pytest.raises(TargetThrottled, match="unprocessed"):
            await target.existing_user_ids(range(1, 11))


async def test_scan_rules_match_by_operation(world: World, client):
    target = DynamoDbUserTarget(client, world.users_table)
    await target.write_users_if(users(1, 2, 3), WriteRule.ABSENT)
    proxy = world.dynamodb_proxy
    dropped = proxy.hangup("Scan", times=2)  # botocore re-sends: the third attempt is answered

    async def scanned() -> list[int]:
        return sorted([user_id async for page in target.scan_user_ids(0, 100) for user_id in page])

    async with asyncio.timeout(30):
        assert await scanned() == [1, 2, 3]
        assert dropped.hits == 2
        proxy.fail("Scan")  # 500 on every attempt
        with pytest.raises(TargetUnavailable):
            await scanned()
