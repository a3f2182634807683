"""The API's own OpenAPI document, served at GET /m2/migration/openapi.json."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from aiohttp import web

from user_migration.domain.keys import KeyKind
from user_migration.entrypoints.http.keys import MIGRATION

OPENAPI_PATH = "/m2/migration/openapi.json"
_DOCUMENT = "openapi.json"


# The fields and parameters that carry a user id (a list of them for the `_ids` ones).
_ID_NAMES = frozenset(
    {"user_id", "start_user_id", "next_start_user_id", "last_migrated_user_id", "lowest", "highest", "next_user_id"}
)
_ID_LISTS = frozenset({"failed_user_ids", "not_rewritten_user_ids", "example_user_ids"})


@cache
def openapi_document(kind: KeyKind = KeyKind.INTEGER) -> bytes:
    """The OpenAPI document (`entrypoints/http/openapi.json`), read from the package once. For a uuid
    or text key (`[source] key_type`), the same document with every user id a string (an integer
    key's document is the file as it is)."""
    document = resources.files("user_migration.entrypoints.http").joinpath(_DOCUMENT).read_bytes()
    if kind is KeyKind.INTEGER:
        return document
    parsed = json.loads(document)
    _ids_as_strings(parsed, kind)
    parsed["info"]["description"] = (
        parsed["info"].get("description", "")
        + f"\n\nThis service's source key is a {kind.value} (`[source] key_type`): every user id (`user_id`, "
        "`start_user_id`, `next_start_user_id`, `failed_user_ids`, `not_rewritten_user_ids`, "
        "`last_migrated_user_id`) is a string"
        + (" (a uuid in canonical lowercase text)" if kind is KeyKind.UUID else "")
        + ", ordered as PostgreSQL orders the key"
        + (' (by its bytes: `COLLATE "C"`)' if kind is KeyKind.TEXT else "")
        + "; `next_start_user_id` is the least id after the page's last one."
    )
    return json.dumps(parsed, ensure_ascii=False, indent=2).encode("utf-8")


def _id_schema(kind: KeyKind, schema: dict[str, Any]) -> dict[str, Any]:
    """An integer id's schema as the kind's string (its description and nullability kept)."""
    kept: dict[str, Any] = {key: schema[key] for key in ("description", "nullable") if key in schema}
    return {"type": "string", **({"format": "uuid"} if kind is KeyKind.UUID else {"minLength": 0}), **kept}


def _ids_as_strings(node: Any, kind: KeyKind) -> None:
    """Every user id in the document (properties, parameters, examples) a string."""
    if isinstance(node, list):
        for element in node:
            _ids_as_strings(element, kind)
        return
    if not isinstance(node, dict):
        return
    if node.get("name") in _ID_NAMES and isinstance(node.get("schema"), dict):  # a parameter
        node["schema"] = _id_schema(kind, node["schema"])
    properties = node.get("properties")
    if isinstance(properties, dict):
        for name, schema in properties.items():
            if name in _ID_NAMES and isinstance(schema, dict) and schema.get("type") == "integer":
                properties[name] = _id_schema(kind, schema)
            elif name in _ID_LISTS and isinstance(schema, dict) and isinstance(schema.get("items"), dict):
                schema["items"] = _id_schema(kind, schema["items"])
    for key, value in list(node.items()):
        if key == "example" and isinstance(value, dict):
            _examples_as_strings(value)
        else:
            _ids_as_strings(value, kind)


def _examples_as_strings(example: dict[str, Any]) -> None:
    for name, value in list(example.items()):
        if name in _ID_NAMES and isinstance(value, int):
            example[name] = str(value)
        elif name in _ID_LISTS and isinstance(value, list):
            example[name] = [str(each) for each in value]
        elif isinstance(value, list):
            for each in value:
                if isinstance(each, dict):
                    _examples_as_strings(each)


async def openapi(request: web.Request) -> web.Response:
    """GET /m2/migration/openapi.json: the OpenAPI 3 document of this API (user ids as the key's kind)."""
    document = openapi_document(request.app[MIGRATION].key_kind)
    return web.Response(body=document, content_type="application/json", charset="utf-8")
