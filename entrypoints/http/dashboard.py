"""The dashboard: a page for the people watching a migration, and the JSON it shows.

The page (`GET /m2/migration/dashboard`, with its script and style sheet) holds no data, so it
is public; it asks for a token and reads `GET /m2/migration/overview` with it, which needs read
access like the statistics. Everything the page needs is served from here: no other origin is
ever asked for anything (its Content-Security-Policy says so to the browser too).
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

from aiohttp import web

from user_migration.entrypoints.http.keys import DEPENDENCIES, OVERVIEW
from user_migration.entrypoints.views import view

DASHBOARD_PATH = "/m2/migration/dashboard"
SCRIPT_PATH = f"{DASHBOARD_PATH}/dashboard.js"
STYLE_PATH = f"{DASHBOARD_PATH}/dashboard.css"
# Only this service, no inline code, no frames: the page cannot reach or load anything else.
_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_HEADERS = {"Content-Security-Policy": _POLICY, "X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"}


@cache
def _asset(name: str) -> bytes:
    return resources.files("user_migration.entrypoints.http").joinpath("dashboard").joinpath(name).read_bytes()


def _serve(name: str, content_type: str) -> web.Response:
    return web.Response(body=_asset(name), content_type=content_type, charset="utf-8", headers=_HEADERS)


async def dashboard_page(request: web.Request) -> web.Response:
    """GET /m2/migration/dashboard: the page (public: it holds no data until given a token)."""
    return _serve("dashboard.html", "text/html")


async def dashboard_script(request: web.Request) -> web.Response:
    """The page's script."""
    return _serve("dashboard.js", "text/javascript")


async def dashboard_style(request: web.Request) -> web.Response:
    """The page's style sheet."""
    return _serve("dashboard.css", "text/css")


async def migration_overview(request: web.Request) -> web.Response:
    """GET /m2/migration/overview: everything the dashboard shows, read at one moment."""
    overview = await request.app[OVERVIEW].read()
    return web.json_response(view(overview), headers={"Cache-Control": "no-store"})


async def failing_users(request: web.Request) -> web.Response:
    """GET /m2/migration/failures: every failing user with its reason codes, one JSON object a
    line (`{"user_id": 7, "reason_codes": ["missing_email"]}`), in id order."""
    failing = await request.app[DEPENDENCIES].state.failing_users()
    lines = "".join(
        json.dumps({"user_id": user_id, "reason_codes": list(codes)}) + "\n" for user_id, codes in failing.items()
    )
    return web.Response(
        text=lines,
        content_type="application/x-ndjson",
        charset="utf-8",
        headers={"Content-Disposition": 'attachment; filename="failing-users.jsonl"', "Cache-Control": "no-store"},
    )
