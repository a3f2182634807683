"""A hold's sets of uuid and text ids, as the state table stores them (a binary value: 16 bytes a
uuid, texts in UTF-8 joined by NUL), on moto, dynalite and DynamoDB Local: an intent handed on whole
to the next holder, unsure writes and failing users kept, and the JSON lists earlier versions wrote
still read."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.real_adapters import create_dynamodb_tables
from user_migration.adapters.dynamodb.client import dynamodb_client
from user_migration.adapters.dynamodb.holds import ProgressLedger, failing_of
from user_migration.adapters.dynamodb.id_ranges import encode_ids
from user_migration.adapters.dynamodb.plan import segment_key

UUID_IDS = sorted(str(uuid.UUID(int=n * 0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835 % 2**128)) for n in range(1, 301))
# Separators of every encoding this module has had, non-ASCII, the empty text and a text's successor.
TEXT_IDS = sorted(["", "a", "a\x01", "a,b", "1..3", "[x]", '"q"', "\\", "Zoë", "日本語", "🙂", "\U0010ffff" * 16])
KEY = segment_key(0)


@pytest.fixture
async def client(any_dynamodb_endpoint: str) -> AsyncIterator[Any]:
    async with dynamodb_client(any_dynamodb_endpoint, "us-east-1") as client:
        yield client


async def _item(client: Any, table: str) -> dict[str, Any]:
    item: dict[str, Any] = (await client.get_item(TableName=table, Key=KEY, ConsistentRead=True))["Item"]
    return item


@pytest.mark.parametrize("ids", [UUID_IDS, TEXT_IDS], ids=["uuid", "text"])
async def test_an_intent_of_string_ids_is_stored_as_bytes_and_handed_on_whole(client, ids):
    _, table = await create_dynamodb_tables(client)
    crashed = ProgressLedger(client, table, lease_seconds=0.5, key=KEY)
    dead = await crashed.take(ids[0], ids[-1])  # a process that announced its writes, then died
    await dead.intend(ids[: len(ids) // 2])
    await dead.intend(ids[len(ids) // 2 :])
    (entry,) = (await _item(client, table))["holds"]["M"].values()
    assert entry["M"]["writing"] == {"B": encode_ids(ids)}
    survivor = ProgressLedger(client, table, key=KEY)
    async with asyncio.timeout(10), survivor.hold(ids[0], ids[-1]) as hold:
        assert hold.inherited == frozenset(ids)
        await hold.settle(ids[:2], unsure=ids[2:4], failed={ids[4]: ("write_failed",), ids[5]: ("missing_email",)})
    item = await _item(client, table)
    assert item["unsettled"] == {"B": encode_ids(ids[2:4])}
    assert failing_of(item) == {ids[4]: ("write_failed",), ids[5]: ("missing_email",)}
    async with survivor.hold(ids[0], ids[-1]) as hold:
        assert hold.inherited == frozenset(ids[2:4])
        await hold.settle(ids[2:4], succeeded=ids[4:6])
    item = await _item(client, table)
    assert (item["migrated_users"], item["unsettled"], failing_of(item)) == ({"N": "4"}, {"S": ""}, {})


async def test_the_json_list_of_string_ids_earlier_versions_wrote_is_still_read(client):
    _, table = await create_dynamodb_tables(client)
    ledger = ProgressLedger(client, table, key=KEY)
    async with ledger.hold(TEXT_IDS[0], TEXT_IDS[-1]) as hold:
        await hold.settle(TEXT_IDS[:1])
    earlier = json.dumps(TEXT_IDS[1:], ensure_ascii=False, separators=(",", ":"))
    await client.update_item(
        TableName=table,
        Key=KEY,
        UpdateExpression="SET unsettled = :earlier, failed = :earlier, version = version + :one",
        ExpressionAttributeValues={":earlier": {"S": earlier}, ":one": {"N": "1"}},
    )
    assert set(failing_of(await _item(client, table))) == set(TEXT_IDS[1:])
    async with ledger.hold(TEXT_IDS[0], TEXT_IDS[-1]) as hold:
        assert hold.inherited == frozenset(TEXT_IDS[1:])
        await hold.settle(TEXT_IDS[1:], succeeded=TEXT_IDS[1:])
    item = await _item(client, table)
    assert (item["migrated_users"], item["failed"], failing_of(item)) == ({"N": str(len(TEXT_IDS))}, {"S": ""}, {})
