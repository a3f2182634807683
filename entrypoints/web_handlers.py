"""The two endpoints of the API document. Thin: parse, call the use case, answer JSON."""

from __future__ import annotations

from aiohttp import web

from domain.request import plan_batch
from entrypoints.json_views import report_json
from entrypoints.web_keys import MIGRATION


async def migrate_users(request: web.Request) -> web.Response:
    """GET /m2/migration/users: a batch, a single user (`user_id`), or a dry run."""
    planned = plan_batch(request.query.items())
    report = await request.app[MIGRATION].run(planned)
    return web.json_response(report_json(report))


async def migration_stats(request: web.Request) -> web.Response:
    """GET /m2/migration/stats: how far the migration has come."""
    stats = await request.app[MIGRATION].statistics()
    return web.json_response(report_json(stats))


def setup_routes(app: web.Application) -> None:
    """The API's routes."""
    app.router.add_get("/m2/migration/users", migrate_users)
    app.router.add_get("/m2/migration/stats", migration_stats)
