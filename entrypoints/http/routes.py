"""Every route of the API in one table: path, handler, and the scope it needs (None: public).

A new endpoint is one line here: the router, the auth middleware and the public paths all read it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import attrs
from aiohttp import web

from user_migration.entrypoints.http.auth import READ_SCOPE, WRITE_SCOPE
from user_migration.entrypoints.http.dashboard import (
    DASHBOARD_PATH,
    SCRIPT_PATH,
    STYLE_PATH,
    dashboard_page,
    dashboard_script,
    dashboard_style,
    failing_users,
    migration_overview,
)
from user_migration.entrypoints.http.handlers import migrate_users, migration_stats, verify_page
from user_migration.entrypoints.http.openapi import OPENAPI_PATH, openapi, openapi_document
from user_migration.entrypoints.http.probes import healthz, metrics, readyz

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
METRICS_PATH = "/metrics"


@attrs.frozen
class Route:
    """One GET route and the scope a caller needs for it (None: anyone, no token)."""

    path: str
    handler: Handler
    scope: str | None


ROUTES = (
    Route("/m2/migration/users", migrate_users, WRITE_SCOPE),
    Route("/m2/migration/stats", migration_stats, READ_SCOPE),
    Route("/m2/migration/verify", verify_page, READ_SCOPE),
    Route("/m2/migration/overview", migration_overview, READ_SCOPE),
    Route("/m2/migration/failures", failing_users, READ_SCOPE),
    Route(DASHBOARD_PATH, dashboard_page, None),  # holds no data: the token is asked for on the page
    Route(SCRIPT_PATH, dashboard_script, None),
    Route(STYLE_PATH, dashboard_style, None),
    Route(OPENAPI_PATH, openapi, None),
    Route("/healthz", healthz, None),
    Route("/readyz", readyz, None),
    Route(METRICS_PATH, metrics, READ_SCOPE),  # public with METRICS_PUBLIC=true
)


def scopes(metrics_public: bool) -> dict[str, str | None]:
    """The scope each path needs (None: public)."""
    needed = {route.path: route.scope for route in ROUTES}
    if metrics_public:
        needed[METRICS_PATH] = None
    return needed


def setup_routes(app: web.Application) -> None:
    """Add every route; the OpenAPI document is read now, so a missing file fails at startup."""
    openapi_document()
    for route in ROUTES:
        app.router.add_get(route.path, route.handler)
