"""The two endpoints of the API document. Thin: parse, call the use case, answer JSON."""

from __future__ import annotations

import logging

from aiohttp import web

from domain.request import SingleUserRequest, plan_batch
from entrypoints.http.keys import METRICS, MIGRATION
from entrypoints.json_views import report_json
from entrypoints.logs import fields

log = logging.getLogger("user_migration.batch")


async def migrate_users(request: web.Request) -> web.Response:
    """GET /m2/migration/users: a batch, a single user (`user_id`), or a dry run."""
    planned = plan_batch(request.query.items())
    report = await request.app[MIGRATION].run(planned)
    mode = "single_user" if isinstance(planned, SingleUserRequest) else "batch"
    request.app[METRICS].record_batch(report, mode)
    log.info(
        "batch",
        extra=fields(
            mode=mode,
            dry_run=report.dry_run,
            migrated=report.migrated_count,
            skipped=report.skipped_count,
            failed=report.failed_count,
            failed_user_ids=report.failed_user_ids[:100],
            next_start_user_id=report.next_start_user_id,
            duration_ms=report.processing_time_ms,
        ),
    )
    return web.json_response(report_json(report))


async def migration_stats(request: web.Request) -> web.Response:
    """GET /m2/migration/stats: how far the migration has come."""
    stats = await request.app[MIGRATION].statistics()
    return web.json_response(report_json(stats))
