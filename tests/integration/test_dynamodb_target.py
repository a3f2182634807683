"""DynamoDbUserTarget, DynamoDbMigrationState and ensure_tables against the moto server.

Partial failures (unprocessed items and keys, throttling) are injected by a thin wrapper around
the real client, which also records every batch request the adapter sent.
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.factories import from_item, prepared_user, valid_user
from tests.real_adapters import RacingClient, create_dynamodb_tables, unique_name
from user_migration.adapters.dynamodb import target as target_module
from user_migration.adapters.dynamodb.client import dynamodb_client
from user_migration.adapters.dynamodb.plan import segment_key
from user_migration.adapters.dynamodb.rewrite import CHANGED_WHILE_REWRITING, unchanged_condition
from user_migration.adapters.dynamodb.state import DynamoDbMigrationState
from user_migration.adapters.dynamodb.tables import ensure_tables
from user_migration.adapters.dynamodb.target import DynamoDbUserTarget
from user_migration.adapters.retry import Backoff
from user_migration.domain.errors import TargetThrottled, TargetUnavailable
from user_migration.domain.model import MigrationProgress, PreparedUser
from user_migration.entrypoints.demo.embedded import free_port
from user_migration.ports.migration_state import UNRECORDED_REASON

MIGRATED_AT = datetime(2026, 1, 1, tzinfo=UTC)
FAST = Backoff(attempts=4, base_seconds=0.001, cap_seconds=0.01)


def throttling_error(operation: str = "BatchWriteItem") -> ClientError:
    return ClientError({"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}}, operation)


def user_item(user_id: int, **changes: Any) -> PreparedUser:
    return prepared_user(user_id, MIGRATED_AT, **changes)


def _put_id(request: dict[str, Any]) -> int:
    return int(request["PutRequest"]["Item"]["user_id"]["N"])


def _key_id(key: dict[str, Any]) -> int:
    return int(key["user_id"]["N"])


class FlakyClient:
    """The real aioboto3 client, with injected partial failures and a record of batch requests.

    `withhold_items[id] = n`: the item of user `id` comes back in `UnprocessedItems` the first n
    times it is sent (the rest of the request goes to the real client). `withhold_keys` does the
    same for the keys of batch_get_item. `throttle_write(request_ids, call_number)` decides whether
    a batch_write_item call fails with a throttling ClientError instead of reaching DynamoDB.
    """

    def __init__(self, client: Any) -> None:
        self._client = client
        self.withhold_items: dict[int, int] = {}
        self.withhold_keys: dict[int, int] = {}
        self.throttle_write: Callable[[list[int], int], bool] = lambda ids, call: False
        self.write_requests: list[dict[str, Any]] = []
        self.get_requests: list[dict[str, Any]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def _withheld(self, counts: dict[int, int], user_id: int) -> bool:
        if counts.get(user_id, 0) > 0:
            counts[user_id] -= 1
            return True
        return False

    async def batch_write_item(self, RequestItems: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        self.write_requests.append(copy.deepcopy(RequestItems))
        ids = [_put_id(request) for requests in RequestItems.values() for request in requests]
        if self.throttle_write(ids, len(self.write_requests)):
            raise throttling_error()
        sent: dict[str, list[Any]] = {}
        unprocessed: dict[str, list[Any]] = {}
        for table, requests in RequestItems.items():
            for request in requests:
                withheld = self._withheld(self.withhold_items, _put_id(request))
                (unprocessed if withheld else sent).setdefault(table, []).append(request)
        response: dict[str, Any] = {"UnprocessedItems": {}}
        if sent:
            response = await self._client.batch_write_item(RequestItems=sent, **kwargs)
        for table, requests in unprocessed.items():
            response.setdefault("UnprocessedItems", {}).setdefault(table, []).extend(requests)
        return response

    async def batch_get_item(self, RequestItems: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        self.get_requests.append(copy.deepcopy(RequestItems))
        sent: dict[str, Any] = {}
        unprocessed: dict[str, Any] = {}
        for table, request in RequestItems.items():
            for key in request["Keys"]:
                withheld = self._withheld(self.withhold_keys, _key_id(key))
                target = unprocessed if withheld else sent
                target.setdefault(table, {**request, "Keys": []})["Keys"].append(key)
        response: dict[str, Any] = {"Responses": {}, "UnprocessedKeys": {}}
        if sent:
            response = await self._client.batch_get_item(RequestItems=sent, **kwargs)
        response.setdefault("UnprocessedKeys", {}).update(unprocessed)
        return response

    def written_ids_per_request(self) -> list[list[int]]:
        return [
            [_put_id(request) for requests in request_items.values() for request in requests]
            for request_items in self.write_requests
        ]

    def keys_per_request(self) -> list[list[int]]:
        return [
            [_key_id(key) for request in request_items.values() for key in request["Keys"]]
            for request_items in self.get_requests
        ]


@pytest.fixture
async def tables(dynamodb: Any) -> tuple[str, str]:
    return await create_dynamodb_tables(dynamodb)


@pytest.fixture
def flaky(dynamodb: Any) -> FlakyClient:
    return FlakyClient(dynamodb)


async def stored_ids(target: DynamoDbUserTarget, ids: Iterable[int]) -> set[int]:
    return {user_id for user_id in ids if await target.read_item(user_id) is not None}


async def test_unprocessed_items_are_retried_until_written(flaky, tables):
    users_table, _ = tables
    target = DynamoDbUserTarget(flaky, users_table, backoff=FAST)
    items = [user_item(i) for i in range(1, 41)]
    flaky.withhold_items = {3: 1, 7: 2, 30: 3}  # 30 lives in the second chunk

    outcome = await target.write_users(items)

    assert sorted(outcome.written) == list(range(1, 41))
    assert outcome.failed == {}
    assert await stored_ids(target, range(1, 41)) == set(range(1, 41))
    sent = Counter(user_id for ids in flaky.written_ids_per_request() for user_id in ids)
    assert (sent[3], sent[7], sent[30], sent[1], sent[40]) == (2, 3, 4, 1, 1)
    # Retries carry only what was left over, never the items already written.
    retries = [ids for ids in flaky.written_ids_per_request() if set(ids) <= {3, 7, 30}]
    assert len(flaky.write_requests) == 2 + len(retries)
    stored = await target.read_item(7)
    assert stored is not None
    assert from_item(stored) == valid_user(7)


async def test_items_still_unprocessed_after_every_attempt_are_failed_per_user(flaky, tables):
    users_table, _ = tables
    backoff = Backoff(attempts=3, base_seconds=0.001, cap_seconds=0.01)
    target = DynamoDbUserTarget(flaky, users_table, backoff=backoff)
    flaky.withhold_items = {4: 1000, 9: 1000, 12: 1}

    outcome = await target.write_users([user_item(i) for i in range(1, 13)])

    assert sorted(outcome.written) == [i for i in range(1, 13) if i not in (4, 9)]
    assert set(outcome.failed) == {4, 9}
    for reason in outcome.failed.values():
        assert "unprocessed" in reason
        assert "3 attempts" in reason
    assert await target.read_item(4) is None
    assert await target.read_item(9) is None
    assert await stored_ids(target, range(1, 13)) == set(range(1, 13)) - {4, 9}
    sent = Counter(user_id for ids in flaky.written_ids_per_request() for user_id in ids)
    assert sent[4] == sent[9] == backoff.attempts


async def test_batch_requests_respect_dynamodbs_limits(flaky, tables):
    users_table, _ = tables
    target = DynamoDbUserTarget(flaky, users_table, backoff=FAST)
    ids = list(range(1, 131))
    # The same users given twice, the copies far apart so that they would land in other chunks.
    items = [user_item(i) for i in ids] + [user_item(i, display_name="again") for i in ids[::3]]

    outcome = await target.write_users(items)

    assert sorted(outcome.written) == ids
    assert outcome.failed == {}
    for request_ids in flaky.written_ids_per_request():
        assert 1 <= len(request_ids) <= 25
        assert len(request_ids) == len(set(request_ids))
    every_sent = [user_id for request_ids in flaky.written_ids_per_request() for user_id in request_ids]
    assert sorted(every_sent) == ids  # each user sent exactly once

    existing = await target.existing_user_ids([*range(1, 301), *range(1, 51)])

    assert existing == set(ids)
    assert len(flaky.get_requests) >= 3
    asked: list[int] = []
    for request_items in flaky.get_requests:
        ((table, request),) = request_items.items()
        assert table == users_table
        assert 1 <= len(request["Keys"]) <= 100
        assert request["ConsistentRead"] is True
        assert request["ExpressionAttributeNames"][request["ProjectionExpression"]] == "user_id"
        asked.extend(_key_id(key) for key in request["Keys"])
    assert sorted(asked) == list(range(1, 301))  # no key asked twice


async def test_the_same_user_twice_in_one_call_is_never_sent_twice_in_one_request(flaky, tables):
    users_table, _ = tables
    target = DynamoDbUserTarget(flaky, users_table, backoff=FAST)
    items = [user_item(1), user_item(2), user_item(1, display_name="second copy"), user_item(2)]

    outcome = await target.write_users(items)

    assert sorted(outcome.written) == [1, 2]
    assert outcome.failed == {}
    for request_ids in flaky.written_ids_per_request():
        assert len(request_ids) == len(set(request_ids))
    stored = await target.read_item(1)
    assert stored is not None
    assert from_item(stored).display_name in ("User 1", "second copy")
    assert await target.count_users() == 2


async def test_a_page_s_items_are_encoded_only_as_their_turn_to_be_sent_comes(flaky, tables, monkeypatch):
    """An item takes about ten times the memory of its prepared user: a page's writes waiting for
    their turn wait as prepared users, at most twice the writes in flight encoded at once."""
    users_table, _ = tables
    target = DynamoDbUserTarget(flaky, users_table, backoff=FAST, concurrency=2)
    encoded, answered, most = [0], [0], [0]
    real_encode, real_write = target_module.encode_user, flaky.batch_write_item

    def counting_encode(user: PreparedUser, key_attribute: str) -> dict[str, Any]:
        encoded[0] += 1
        most[0] = max(most[0], encoded[0] - answered[0])
        return real_encode(user, key_attribute)

    async def counting_write(RequestItems: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        response = await real_write(RequestItems=RequestItems, **kwargs)
        answered[0] += sum(len(requests) for requests in RequestItems.values())
        return response

    monkeypatch.setattr(target_module, "encode_user", counting_encode)
    flaky.batch_write_item = counting_write  # type: ignore[method-assign]
    outcome = await target.write_users([user_item(i) for i in range(1, 401)])  # 16 chunks of 25

    assert sorted(outcome.written) == list(range(1, 401))
    assert encoded[0] == 400
    assert most[0] <= 2 * 2 * 25  # twice the 2 writes in flight, not the page's 400


async def test_unprocessed_keys_of_the_existence_check_are_asked_again(flaky, tables):
    users_table, _ = tables
    target = DynamoDbUserTarget(flaky, users_table, backoff=FAST)
    await target.write_users([user_item(i) for i in range(1, 11)])
    flaky.withhold_keys = {2: 1, 3: 2, 14: 1}

    existing = await target.existing_user_ids(range(1, 16))

    assert existing == set(range(1, 11))
    assert flaky.keys_per_request()[0] == list(range(1, 16))
    assert sorted(flaky.keys_per_request()[1]) == [2, 3, 14]
    assert flaky.keys_per_request()[2] == [3]
    assert len(flaky.get_requests) == 3


async def test_keys_left_unprocessed_after_every_attempt_raise_target_throttled(flaky, tables):
    users_table, _ = tables
    target = DynamoDbUserTarget(flaky, users_table, backoff=FAST)
    flaky.withhold_keys = {5: 1000}

    with pytest.raises(TargetThrottled):
        await target.existing_user_ids([1, 5, 9])

    assert len(flaky.get_requests) == FAST.attempts


async def test_a_throttled_write_is_retried(flaky, tables):
    users_table, _ = tables
    target = DynamoDbUserTarget(flaky, users_table, backoff=FAST)
    flaky.throttle_write = lambda ids, call: call <= 2

    outcome = await target.write_users([user_item(i) for i in range(1, 6)])

    assert sorted(outcome.written) == [1, 2, 3, 4, 5]
    assert outcome.failed == {}
    assert len(flaky.write_requests) == 3
    assert await stored_ids(target, range(1, 6)) == {1, 2, 3, 4, 5}


async def test_a_chunk_throttled_on_every_attempt_fails_its_users_only(flaky, tables):
    users_table, _ = tables
    target = DynamoDbUserTarget(flaky, users_table, backoff=FAST)
    # Users 26..30 form the second chunk; every request carrying them is throttled.
    flaky.throttle_write = lambda ids, call: 26 in ids

    outcome = await target.write_users([user_item(i) for i in range(1, 31)])

    assert sorted(outcome.written) == list(range(1, 26))
    assert set(outcome.failed) == set(range(26, 31))
    for reason in outcome.failed.values():
        assert "throttled" in reason
        assert "ProvisionedThroughputExceededException" in reason
    assert await stored_ids(target, range(1, 31)) == set(range(1, 26))
    throttled = [ids for ids in flaky.written_ids_per_request() if 26 in ids]
    assert len(throttled) == FAST.attempts


async def test_throttling_on_every_request_raises_target_throttled(flaky, tables):
    users_table, _ = tables
    target = DynamoDbUserTarget(flaky, users_table, backoff=FAST)
    flaky.throttle_write = lambda ids, call: True

    with pytest.raises(TargetThrottled):
        await target.write_users([user_item(i) for i in range(1, 31)])

    assert await target.count_users() == 0
    assert len(flaky.write_requests) == 2 * FAST.attempts


async def test_an_item_dynamodb_rejects_fails_only_its_own_user(dynamodb, tables):
    users_table, _ = tables
    target = DynamoDbUserTarget(dynamodb, users_table, backoff=FAST)
    # Built by hand: the domain would never let an item of this size through.
    huge = user_item(13)
    huge.attributes["padding"] = "x" * 500_000
    items = [user_item(i) for i in range(1, 13)] + [huge] + [user_item(i) for i in range(14, 26)]

    outcome = await target.write_users(items)

    assert sorted(outcome.written) == [i for i in range(1, 26) if i != 13]
    assert list(outcome.failed) == [13]
    assert "ValidationException" in outcome.failed[13]
    assert await target.read_item(13) is None
    assert await stored_ids(target, range(1, 26)) == set(range(1, 26)) - {13}


async def test_an_unreachable_endpoint_is_target_unavailable_for_writes_and_progress():
    endpoint = f"http://127.0.0.1:{free_port()}"
    async with dynamodb_client(endpoint_url=endpoint, region_name="us-east-1") as client:
        target = DynamoDbUserTarget(client, "users", backoff=FAST)
        state = DynamoDbMigrationState(client, "state")
        started = time.monotonic()

        write_error, progress_error = await asyncio.gather(
            target.write_users([user_item(i) for i in range(1, 31)]),
            state.read_progress(),
            return_exceptions=True,
        )

        assert isinstance(write_error, TargetUnavailable), repr(write_error)
        assert not isinstance(write_error, TargetThrottled)
        assert isinstance(progress_error, TargetUnavailable), repr(progress_error)
        assert time.monotonic() - started < 20


async def test_an_unreachable_endpoint_is_target_unavailable_for_the_existence_check():
    endpoint = f"http://127.0.0.1:{free_port()}"
    async with dynamodb_client(endpoint_url=endpoint, region_name="us-east-1") as client:
        target = DynamoDbUserTarget(client, "users", backoff=FAST)

        with pytest.raises(TargetUnavailable):
            await target.existing_user_ids(range(1, 151))


async def test_ensure_tables_is_idempotent(dynamodb):
    users_table, state_table = unique_name("users"), unique_name("state")

    assert await ensure_tables(dynamodb, users_table, state_table) == [users_table, state_table]
    assert await ensure_tables(dynamodb, users_table, state_table) == []

    users = await dynamodb.describe_table(TableName=users_table)
    assert users["Table"]["KeySchema"] == [{"AttributeName": "user_id", "KeyType": "HASH"}]
    assert users["Table"]["AttributeDefinitions"] == [{"AttributeName": "user_id", "AttributeType": "N"}]
    state = await dynamodb.describe_table(TableName=state_table)
    assert state["Table"]["KeySchema"] == [{"AttributeName": "state_id", "KeyType": "HASH"}]


async def test_ensure_tables_creates_only_what_is_missing(dynamodb):
    users_table, state_table = unique_name("users"), unique_name("state")
    await ensure_tables(dynamodb, users_table, unique_name("other_state"))

    assert await ensure_tables(dynamodb, users_table, state_table) == [state_table]


async def test_ensure_tables_refuses_a_table_with_another_key_schema(dynamodb):
    users_table, state_table = unique_name("users"), unique_name("state")
    await dynamodb.create_table(
        TableName=users_table,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )

    with pytest.raises(TargetUnavailable, match="another key schema"):
        await ensure_tables(dynamodb, users_table, state_table)

    with_range_key = unique_name("users")
    await dynamodb.create_table(
        TableName=with_range_key,
        KeySchema=[
            {"AttributeName": "user_id", "KeyType": "HASH"},
            {"AttributeName": "version", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "user_id", "AttributeType": "N"},
            {"AttributeName": "version", "AttributeType": "N"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    with pytest.raises(TargetUnavailable, match="another key schema"):
        await ensure_tables(dynamodb, with_range_key, state_table)


async def settle(state: DynamoDbMigrationState, user_ids: list[int]) -> None:
    async with state.hold_users(min(user_ids), max(user_ids)) as hold:
        await hold.intend(user_ids)
        await hold.settle(user_ids)


async def test_state_counts_stay_exact_under_concurrent_holds(dynamodb_endpoint):
    async with dynamodb_client(endpoint_url=dynamodb_endpoint, region_name="us-east-1") as client:
        _, state_table = await create_dynamodb_tables(client)
        state = DynamoDbMigrationState(client, state_table)

        await asyncio.gather(*(settle(state, [3 * user_id, 3 * user_id + 1]) for user_id in range(20, 0, -1)))

        assert await state.read_progress() == MigrationProgress(40, 61)


async def test_two_state_instances_on_one_table_act_like_two_processes(dynamodb_endpoint):
    endpoint = dynamodb_endpoint
    async with (
        dynamodb_client(endpoint_url=endpoint, region_name="us-east-1") as first_client,
        dynamodb_client(endpoint_url=endpoint, region_name="us-east-1") as second_client,
    ):
        _, state_table = await create_dynamodb_tables(first_client)
        first = DynamoDbMigrationState(first_client, state_table)
        second = DynamoDbMigrationState(second_client, state_table)
        # Interleaved: each process settles every other id, highest ids arriving out of order;
        # the two only meet on the item, so their conditional writes conflict and are retried.
        updates = [
            settle(first if user_id % 2 else second, [user_id]) for user_id in [*range(40, 20, -1), *range(1, 21)]
        ]

        await asyncio.gather(*updates)

        assert await first.read_progress() == MigrationProgress(40, 40)
        assert await second.read_progress() == MigrationProgress(40, 40)


async def test_an_item_changed_between_the_rewrites_read_and_its_write_is_kept(dynamodb, tables):
    users_table, _ = tables
    await DynamoDbUserTarget(dynamodb, users_table, backoff=FAST).write_users([user_item(1)])
    racing = RacingClient(dynamodb, lambda item: item.update(email={"S": "changed.meanwhile@example.com"}))
    target = DynamoDbUserTarget(racing, users_table, backoff=FAST)

    outcome = await target.rewrite_users([user_item(1, display_name="Fixed")])

    assert outcome.rewritten == ()
    assert dict(outcome.kept) == {1: CHANGED_WHILE_REWRITING}
    stored = await target.read_item(1)
    assert stored is not None
    assert from_item(stored) == valid_user(1, email="changed.meanwhile@example.com")


async def test_a_rewrite_of_a_large_item_conditions_on_the_digest(dynamodb, tables):
    users_table, _ = tables
    # Enough attributes that a condition on every one would pass DynamoDB's expression limit.
    wide = user_item(1)
    wide.attributes.update({f"extra_{index}": index for index in range(400)})
    target = DynamoDbUserTarget(dynamodb, users_table, backoff=FAST)
    await target.write_users([wide])
    current = await target.read_item(1)
    assert current is not None
    assert unchanged_condition(current)["ConditionExpression"] == "#d = :d AND #m = :m"
    fixed = user_item(1, display_name="Fixed")
    fixed.attributes.update({f"extra_{index}": index for index in range(400)})

    outcome = await target.rewrite_users([fixed])

    assert outcome.rewritten == (1,)
    stored = await target.read_item(1)
    assert stored is not None
    assert stored["display_name"] == {"S": "Fixed"}
    assert stored["extra_399"] == {"N": "399"}


async def test_failing_users_noted_by_an_earlier_version_have_no_recorded_reason(dynamodb_endpoint):
    async with dynamodb_client(endpoint_url=dynamodb_endpoint, region_name="us-east-1") as client:
        _, state_table = await create_dynamodb_tables(client)
        state = DynamoDbMigrationState(client, state_table)
        async with state.hold_users(1, 3) as hold:
            await hold.settle([], failed={1: ["missing_email"], 2: ["write_failed"]})
        # A version before the reason codes kept only the ids.
        await client.update_item(TableName=state_table, Key=segment_key(0), UpdateExpression="REMOVE failed_reasons")
        assert await state.failing_users() == {1: (UNRECORDED_REASON,), 2: (UNRECORDED_REASON,)}
        async with state.hold_users(1, 3) as hold:
            await hold.settle([2], failed={3: ["invalid_status"]}, succeeded=[2])
        assert await state.failing_users() == {1: (UNRECORDED_REASON,), 3: ("invalid_status",)}
        assert (await state.read_progress()).failed_users == 2
