"""`BatchExecuteStatement`'s and `BatchWriteItem`'s request bodies written by one `json.dumps`
instead of botocore's serializer.

botocore's JSON serializer walks every statement's parameters, and every item of a batch of
writes, through the operation's shapes, a Python call per attribute value and per member: about
80 µs of CPU per statement of a user's item, a third of the live-safe migration's client CPU, and
most of the offline mode's writes' CPU. For these operations what it writes is `json.dumps` of the
call's parameters, byte for byte, binary values aside (base64 text, as botocore writes them):
DynamoDB's protocol is JSON 1.0, its input shapes rename no member, and neither input holds a
timestamp. So, on the process's client, through botocore's documented events:

- `before-parameter-build` (after botocore's own handlers): the body is dumped from the call's
  parameters into the request's context, and the serializer is handed nothing to walk (no
  statement, no table's writes);
- `before-sign` (botocore's "mutating the request before signing"): the request's body is that
  one. botocore builds and signs the request again for each of its retries: each try sends it.

Parameters `json.dumps` cannot write as botocore would are left to botocore's serializer,
unchanged: anything but text, numbers, booleans, lists, dicts and bytes, and any None anywhere
(botocore writes null for some and fails on others: a body that holds a null value, or a text
that reads like one, goes to botocore).
"""

from __future__ import annotations

import base64
import json
from typing import Any

# The operations whose bodies are dumped here, and the parameter botocore is then handed empty.
OPERATIONS = {"BatchExecuteStatement": "Statements", "BatchWriteItem": "RequestItems"}
_BODY = "user_migration_lean_body"  # the request context's key for the body
# How `json.dumps` writes a None: a dict's value, a list's first or next element.
_NULLS = (b": null", b"[null", b", null")


def _binary(value: object) -> str:
    # What botocore's serializer writes for a blob: its base64 text.
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"not written here: {type(value).__name__}")


def dump_parameters(params: dict[str, Any], context: dict[str, Any], model: Any, **_: Any) -> None:
    """`before-parameter-build`: the body into the context, nothing left to serialize."""
    member = OPERATIONS.get(getattr(model, "name", ""), "")
    walked = params.get(member)
    if not member or not isinstance(walked, (list, dict)):
        return  # a member set to None, or anything else: botocore writes null, or fails
    try:
        body = json.dumps(params, default=_binary).encode("utf-8")
    except (TypeError, ValueError):
        return
    if any(null in body for null in _NULLS):
        return  # a None somewhere (or a text that reads like one): botocore's, as it writes or refuses it
    context[_BODY] = body
    params[member] = type(walked)()


def send_body(request: Any, **_: Any) -> None:
    """`before-sign`: the body dumped for this call, if one was."""
    body = request.context.get(_BODY)
    if body is not None:
        request.data = body


def lean_bodies(client: Any) -> None:
    """Write `client`'s BatchExecuteStatement and BatchWriteItem bodies with `json.dumps` (see the
    module's docstring)."""
    service = client.meta.service_model.service_id.hyphenize()
    for operation in OPERATIONS:
        client.meta.events.register_last(f"before-parameter-build.{service}.{operation}", dump_parameters)
        client.meta.events.register_last(f"before-sign.{service}.{operation}", send_body)
