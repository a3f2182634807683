"""The offline mode's BatchWriteItems, their bodies written by `json.dumps` (`adapters.dynamodb.lean_body`),
store on each DynamoDB implementation (moto, DynamoDB Local, ...) the very items botocore's serializer
would have sent: every kind of value a prepared user holds, and texts `json.dumps` must escape."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from tests.factories import prepared_user
from tests.real_adapters import create_dynamodb_tables
from user_migration.adapters.dynamodb.client import dynamodb_client
from user_migration.adapters.dynamodb.codec import encode_user, unchanged_since_written
from user_migration.adapters.dynamodb.target import DynamoDbUserTarget

MIGRATED_AT = datetime(2026, 1, 1, tzinfo=UTC)
ODD_VALUES: dict[str, Any] = {
    "quoted": 'zoë "quoted" \\ \n \u2028 \t ünïcödé 🙂',
    "reads_like_null": "note: null, [null",  # the lean body leaves this chunk to botocore
    "profile": {"geo": {"lat": Decimal("52.52"), "tags": ["a", 1, True, None]}, "raw": b"\x00\xffbinary"},
    "empty_list": [],
    "nothing": None,
    "large": 12345678901234567890,
}


def _numbers_as_values(value: Any) -> Any:
    """An item with its numbers as values (DynamoDB, dynalite too, store 12.50 as 12.5)."""
    if isinstance(value, dict):
        return {key: Decimal(v) if key == "N" else _numbers_as_values(v) for key, v in value.items()}
    if isinstance(value, list):
        return [_numbers_as_values(element) for element in value]
    return value


async def test_each_kind_of_value_is_stored_as_encoded(any_dynamodb_endpoint):
    async with dynamodb_client(endpoint_url=any_dynamodb_endpoint, region_name="us-east-1") as client:
        users_table, _ = await create_dynamodb_tables(client)
        target = DynamoDbUserTarget(client, users_table)
        users = [prepared_user(user_id, MIGRATED_AT) for user_id in range(1, 61)]
        for user in users[::2]:
            user.attributes.update(ODD_VALUES)
        users[1].attributes["reads_like_null"] = "plain"  # a chunk with no such text: lean

        outcome = await target.write_users(users)

        assert sorted(outcome.written) == list(range(1, 61))
        assert outcome.failed == {}
        stored = await target.read_items(range(1, 61))
        for user in users:
            item = stored[user.user_id]
            assert _numbers_as_values(item) == _numbers_as_values(encode_user(user, "user_id")), user.user_id
            assert unchanged_since_written(item), user.user_id  # its digest reads the same
