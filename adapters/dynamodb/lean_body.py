"""`BatchExecuteStatement`'s request body written by one `json.dumps` instead of botocore's serializer.

botocore's JSON serializer walks every statement's parameters through the operation's shapes, a
Python call per attribute value and per member: about 80 µs of CPU per statement of a user's item,
a third of the live-safe migration's client CPU. For this operation what it writes is `json.dumps`
of the call's parameters, byte for byte, binary values aside (base64 text, as botocore writes
them): DynamoDB's protocol is JSON 1.0, its input shapes rename no member, and
BatchExecuteStatementInput holds no timestamp. So, on the process's client, through botocore's
documented events:

- `before-parameter-build` (after botocore's own handlers): the body is dumped from the call's
  parameters into the request's context, and the serializer is handed no statement to walk;
- `before-sign` (botocore's "mutating the request before signing"): the request's body is that
  one. botocore builds and signs the request again for each of its retries: each try sends it.

Parameters `json.dumps` cannot write as botocore would (a member set to None, anything but text,
numbers, booleans, lists, dicts and bytes) are left to botocore's serializer, unchanged.
"""

from __future__ import annotations

import base64
import json
from typing import Any

OPERATION = "BatchExecuteStatement"
_BODY = "user_migration_lean_body"  # the request context's key for the body


def _binary(value: object) -> str:
    # What botocore's serializer writes for a blob: its base64 text.
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"not written here: {type(value).__name__}")


def dump_parameters(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    """`before-parameter-build`: the body into the context, no statement left to serialize."""
    statements = params.get("Statements")
    if not isinstance(statements, list) or any(value is None for value in params.values()):
        return  # a member set to None: botocore writes null, or fails on a list
    if any(type(statement) is not dict or None in statement.values() for statement in statements):
        return
    try:
        body = json.dumps(params, default=_binary).encode("utf-8")
    except (TypeError, ValueError):
        return
    context[_BODY] = body
    params["Statements"] = []


def send_body(request: Any, **_: Any) -> None:
    """`before-sign`: the body dumped for this call, if one was."""
    body = request.context.get(_BODY)
    if body is not None:
        request.data = body


def lean_bodies(client: Any) -> None:
    """Write `client`'s BatchExecuteStatement bodies with `json.dumps` (see the module's docstring)."""
    service = client.meta.service_model.service_id.hyphenize()
    client.meta.events.register_last(f"before-parameter-build.{service}.{OPERATION}", dump_parameters)
    client.meta.events.register_last(f"before-sign.{service}.{OPERATION}", send_body)
