"""The embedded DynamoDB (moto in server mode) that tests, the demo and the benchmark run on."""

from __future__ import annotations

from typing import Any

import aiohttp
from botocore.exceptions import ClientError

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


KEY = {"user_id": {"N": "1"}}
CREATE = {
    "KeySchema": [{"AttributeName": "user_id", "KeyType": "HASH"}],
    "AttributeDefinitions": [{"AttributeName": "user_id", "AttributeType": "N"}],
    "BillingMode": "PAY_PER_REQUEST",
}
# What the project and its tests ask of DynamoDB, with the errors they must tell apart.
CALLS: list[tuple[str, dict[str, Any]]] = [
    ("create_table", {"TableName": "t", **CREATE}),
    ("create_table", {"TableName": "t", **CREATE}),
    (
        "put_item",
        {"TableName": "t", "Item": {**KEY, "v": {"N": "1"}}, "ConditionExpression": "attribute_not_exists(user_id)"},
    ),
    (
        "put_item",
        {
            "TableName": "t",
            "Item": {**KEY, "v": {"N": "2"}},
            "ConditionExpression": "attribute_not_exists(user_id)",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        },
    ),
    ("put_item", {"TableName": "missing", "Item": KEY}),
    ("put_item", {"TableName": "t", "Item": {"other": {"S": "1"}}}),
    (
        "update_item",
        {
            "TableName": "t",
            "Key": KEY,
            "UpdateExpression": "ADD c :one",
            "ExpressionAttributeValues": {":one": {"N": "1"}},
            "ReturnValues": "ALL_NEW",
        },
    ),
    ("get_item", {"TableName": "t", "Key": KEY, "ConsistentRead": True}),
    (
        "batch_write_item",
        {"RequestItems": {"t": [{"PutRequest": {"Item": {"user_id": {"N": str(i)}}}} for i in (2, 3)]}},
    ),
    ("batch_get_item", {"RequestItems": {"t": {"Keys": [KEY, {"user_id": {"N": "4"}}]}}}),
    (
        "transact_write_items",
        {
            "TransactItems": [
                {
                    "ConditionCheck": {
                        "TableName": "t",
                        "Key": KEY,
                        "ConditionExpression": "attribute_not_exists(user_id)",
                    }
                }
            ]
        },
    ),
    ("execute_statement", {"Statement": 'SELECT * FROM "t" WHERE user_id = 1'}),
    # A statement is run over the tables it names only (`_statements_see_their_own_tables`): a read of
    # another table, a write, the project's probe of PartiQL support (which moto refuses), a missing table.
    ("create_table", {"TableName": "t2", **CREATE}),
    ("put_item", {"TableName": "t2", "Item": {**KEY, "w": {"S": "in t2"}}}),
    ("execute_statement", {"Statement": 'SELECT * FROM "t2" WHERE user_id = ?', "Parameters": [KEY["user_id"]]}),
    (
        "batch_execute_statement",
        {
            "Statements": [
                {"Statement": "SELECT * FROM t2 WHERE user_id = ?", "Parameters": [KEY["user_id"]]},
                {"Statement": "UPDATE t SET w = ? WHERE user_id = ?", "Parameters": [{"S": "set"}, KEY["user_id"]]},
                {
                    "Statement": 'UPDATE "t" SET "v" = ? WHERE "user_id" = ? AND "v" < ?',
                    "Parameters": [{"N": "0"}, KEY["user_id"], {"N": "-1E+125"}],
                },
                {"Statement": "SELECT * FROM missing WHERE user_id = ?", "Parameters": [KEY["user_id"]]},
            ]
        },
    ),
    ("get_item", {"TableName": "t", "Key": KEY, "ConsistentRead": True}),
    (
        "query",
        {"TableName": "t", "KeyConditionExpression": "user_id = :u", "ExpressionAttributeValues": {":u": {"N": "1"}}},
    ),
    ("scan", {"TableName": "t", "Select": "COUNT"}),
    ("delete_item", {"TableName": "t", "Key": KEY, "ReturnValues": "ALL_OLD"}),
    ("delete_table", {"TableName": "missing"}),
]
# What differs from one answer to the next whoever answers, CORS' (which moto's Flask app adds) and
# the connection's own headers (the embedded server keeps connections alive, werkzeug's closes them).
VARYING = {"requestid", "x-amzn-requestid", "date", "x-amz-crc32", "content-length", "access-control-allow-origin"}
VARYING |= {"connection", "keep-alive"}
VARYING |= {"creationdatetime", "tablearn", "tableid", "retryattempts"}


def _steady(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _steady(inner) for key, inner in value.items() if key.lower() not in VARYING}
    if isinstance(value, list):
        return [_steady(inner) for inner in value]
    return value


async def _answers(server: EmbeddedDynamoDb) -> list[tuple[str, Any]]:
    answers: list[tuple[str, Any]] = []
    server.start()
    try:
        async with dynamodb_client(server.endpoint_url, "us-east-1") as client:
            for operation, arguments in CALLS:
                try:
                    answers.append(("answer", _steady(await getattr(client, operation)(**arguments))))
                except ClientError as error:
                    answers.append(("error", _steady(error.response)))
    finally:
        server.stop()
    return answers


async def test_the_serial_server_answers_as_moto_s_own_server():
    # The serial server sends DynamoDB's requests to moto's handler without moto's dispatcher and
    # Flask: every answer (status, headers, body, errors) is what moto's own server gives.
    lean, own = await _answers(EmbeddedDynamoDb()), await _answers(EmbeddedDynamoDb(serial=False))
    assert [kind for kind, _ in lean].count("error") == 6
    assert lean == own
