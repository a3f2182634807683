"""BatchExecuteStatement's and BatchWriteItem's bodies written by json.dumps
(`adapters.dynamodb.lean_body`) are the very bodies botocore's serializer writes, on every try
botocore makes."""

from __future__ import annotations

from typing import Any

import botocore.session
import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from jmespath.exceptions import JMESPathTypeError

from user_migration.adapters.dynamodb.lean_body import lean_bodies
from user_migration.adapters.dynamodb.partiql import insert_statement, update_statement

ITEM = {
    "user_id": {"N": "7"},
    "email": {"S": 'zoë@example.com \u2028 "quoted" \\ \n'},
    "avatar": {"B": b"\x00\xffbinary"},
    "tags": {"L": [{"S": "vip"}, {"N": "-1.50"}, {"BOOL": False}, {"NULL": True}]},
    "profile": {"M": {"geo": {"M": {"lat": {"N": "52.52"}}}, "raw": {"B": bytearray(b"\x01\x02")}}},
    "codes": {"SS": ["a", "b"]},
    "blobs": {"BS": [b"\x03", b"\x04"]},
}
CURRENT = {"user_id": {"N": "7"}, "legacy": {"S": "x"}, "migration_version": {"N": "1"}}


def _statements() -> list[dict[str, Any]]:
    insert = insert_statement(7, "users", ITEM)
    update = update_statement(8, "users", "user_id", {**ITEM, "user_id": {"N": "8"}}, CURRENT, CURRENT)
    assert insert is not None
    assert update is not None
    return [insert.request(), update.request(), {"Statement": 'SELECT * FROM "users"'}]


def _bodies_sent(
    lean: bool,
    tries: int,
    params: dict[str, Any],
    serialized: list[bytes] | None = None,
    operation: str = "batch_execute_statement",
) -> list[bytes]:
    """The bodies a client sends for one call, answered `ThrottlingException` until its last try
    (into `serialized`, what botocore's serializer wrote)."""
    config = Config(parameter_validation=False, retries={"mode": "standard", "max_attempts": tries})
    client = botocore.session.get_session().create_client(
        "dynamodb",
        region_name="us-east-1",
        endpoint_url="http://127.0.0.1:9",
        aws_access_key_id="id",
        aws_secret_access_key="secret",
        config=config,
    )
    if lean:
        lean_bodies(client)
    bodies: list[bytes] = []

    def answer(request: Any, **_: Any) -> AWSResponse:
        bodies.append(request.body)
        if len(bodies) < tries:
            raw = b'{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"slow down"}'
            return AWSResponse(request.url, 400, _HEADERS, _Raw(raw))
        return AWSResponse(request.url, 200, _HEADERS, _Raw(b'{"Responses": []}'))

    client.meta.events.register("before-send.dynamodb", answer)
    if serialized is not None:
        client.meta.events.register("before-call.dynamodb", lambda params, **_: serialized.append(params["body"]))
    getattr(client, operation)(**params)
    return bodies


_HEADERS = {"Content-Type": "application/x-amz-json-1.0"}


class _Raw:
    """An answer's body, as botocore reads it from the HTTP response."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> list[bytes]:
        return [self._body]


@pytest.mark.parametrize("tries", [1, 3])
def test_the_lean_body_is_botocores_on_every_try(tries):
    params = {"Statements": _statements(), "ReturnConsumedCapacity": "TOTAL"}
    serialized: list[bytes] = []
    lean = _bodies_sent(True, tries, params, serialized)
    assert len(lean) == tries
    assert lean == _bodies_sent(False, tries, params)
    assert serialized == [b'{"Statements": [], "ReturnConsumedCapacity": "TOTAL"}']  # botocore walked none
    assert b"AP9iaW5hcnk=" in lean[0]  # the binary value as base64, as botocore writes it


@pytest.mark.parametrize(
    "statements",
    [
        [{"Statement": "x", "Parameters": [], "ConsistentRead": None}],  # botocore writes null
        [{"Statement": "x", "Parameters": [{"N": 7}]}],  # a number where text is due: as botocore writes it
    ],
)
def test_what_json_would_write_otherwise_is_left_to_botocore(statements):
    params = {"Statements": statements}
    assert _bodies_sent(True, 1, params) == _bodies_sent(False, 1, params)


def test_a_list_set_to_none_fails_in_botocores_serializer_as_before():
    for lean in (True, False):
        with pytest.raises(TypeError):
            _bodies_sent(lean, 1, {"Statements": [{"Statement": "x", "Parameters": None}]})


def _writes(*items: dict[str, Any]) -> dict[str, Any]:
    writes = [{"PutRequest": {"Item": item}} for item in items]
    return {"RequestItems": {"users": writes}, "ReturnConsumedCapacity": "TOTAL"}


@pytest.mark.parametrize("tries", [1, 3])
def test_a_batch_of_writes_body_is_botocores_on_every_try(tries):
    params = _writes(ITEM, {**ITEM, "user_id": {"N": "8"}}, {"user_id": {"N": "9"}, "null": {"S": "nullable"}})
    params["RequestItems"]["users"].append({"DeleteRequest": {"Key": {"user_id": {"N": "10"}}}})
    serialized: list[bytes] = []
    lean = _bodies_sent(True, tries, params, serialized, "batch_write_item")
    assert len(lean) == tries
    assert lean == _bodies_sent(False, tries, params, operation="batch_write_item")
    assert serialized == [b'{"RequestItems": {}, "ReturnConsumedCapacity": "TOTAL"}']  # botocore walked none
    assert b"AP9iaW5hcnk=" in lean[0]
    assert params["RequestItems"]["users"][0]["PutRequest"]["Item"] is ITEM  # the caller's items untouched


@pytest.mark.parametrize(
    "item",
    [
        {"user_id": {"N": "7"}, "email": {"S": None}},  # botocore writes null
        {"user_id": {"N": "7"}, "tags": {"L": [None]}},  # botocore fails
        {"user_id": {"N": "7"}, "note": {"S": "reads: null"}},  # a text like a null value: botocore's too
        {"user_id": {"N": 7}},  # a number where text is due: as botocore writes it
    ],
)
def test_a_batch_of_writes_json_would_write_otherwise_is_left_to_botocore(item):
    outcomes = []
    for lean in (True, False):
        serialized: list[bytes] = []
        try:
            outcomes.append(_bodies_sent(lean, 1, _writes(item), serialized, "batch_write_item"))
        except (TypeError, AttributeError) as error:
            outcomes.append([type(error).__name__.encode()])
        if lean and item["user_id"] != {"N": 7}:
            assert b'"RequestItems": {}' not in b"".join(serialized)  # botocore's serializer walked the items
    assert outcomes[0] == outcomes[1]


def test_a_batch_of_writes_set_to_none_fails_in_botocore_as_before():
    failures = []
    for lean in (True, False):
        with pytest.raises(JMESPathTypeError) as raised:  # botocore's endpoint rules, on the None
            _bodies_sent(lean, 1, {"RequestItems": None}, operation="batch_write_item")
        failures.append((type(raised.value), str(raised.value)))
    assert failures[0] == failures[1]
