"""The API's own OpenAPI document, served at GET /m2/migration/openapi.json."""

from __future__ import annotations

from functools import cache
from importlib import resources

from aiohttp import web

OPENAPI_PATH = "/m2/migration/openapi.json"
_DOCUMENT = "openapi.json"


@cache
def openapi_document() -> bytes:
    """The OpenAPI document (`entrypoints/http/openapi.json`), read from the package once."""
    return resources.files("entrypoints.http").joinpath(_DOCUMENT).read_bytes()


async def openapi(request: web.Request) -> web.Response:
    """GET /m2/migration/openapi.json: the OpenAPI 3 document of this API."""
    return web.Response(body=openapi_document(), content_type="application/json", charset="utf-8")
