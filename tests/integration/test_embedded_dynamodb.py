"""The embedded DynamoDB (moto in server mode) that tests, the demo and the benchmark run on."""

from __future__ import annotations

import aiohttp

from tests.real_adapters import create_dynamodb_tables
from user_migration.adapters.dynamodb.client import dynamodb_client
from user_migration.entrypoints.demo.embedded import EmbeddedDynamoDb


async def test_items_written_are_not_kept_by_moto_beyond_their_table():
    # moto keeps every model object it makes for its dashboard (/moto-api/data.json); the
    # embedded server drops them after each request, so a long run stays flat in memory.
    server = EmbeddedDynamoDb().start()
    try:
        async with dynamodb_client(server.endpoint_url, "us-east-1") as client:
            users_table, _ = await create_dynamodb_tables(client)
            requests = [{"PutRequest": {"Item": {"user_id": {"N": str(user_id)}}}} for user_id in range(1, 26)]
            await client.batch_write_item(RequestItems={users_table: requests})
            stored = await client.scan(TableName=users_table, Select="COUNT")
        assert stored["Count"] == 25
        async with aiohttp.ClientSession() as http, http.get(f"{server.endpoint_url}/moto-api/data.json") as answer:
            tracked = (await answer.json(content_type=None))["dynamodb"]
    finally:
        server.stop()
    assert tracked["Item"] == []
    assert tracked["Table"] == []
