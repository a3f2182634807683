"""The endpoints of the API document. Thin: parse, call the use case, answer JSON."""

from __future__ import annotations

import logging

from aiohttp import web

from user_migration.container import resolve
from user_migration.domain.migrate.request import SingleUserRequest, plan_batch
from user_migration.domain.observe.statistics import plan_statistics
from user_migration.domain.verify.request import plan_verify_page
from user_migration.domain.verify.verification import Verification
from user_migration.entrypoints.http.keys import CONTAINER, METRICS, MIGRATION, STATISTICS
from user_migration.entrypoints.logs import fields
from user_migration.entrypoints.views import view

log = logging.getLogger("user_migration.batch")
verify_log = logging.getLogger("user_migration.verify")


async def migrate_users(request: web.Request) -> web.Response:
    """GET /m2/migration/users: a batch, a single user (`user_id`), or a dry run."""
    migration = request.app[MIGRATION]
    planned = plan_batch(request.query.items(), migration.key_kind)
    report = await migration.run(planned)
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
    return web.json_response(view(report))


async def migration_stats(request: web.Request) -> web.Response:
    """GET /m2/migration/stats: how far the migration has come, the source's count from memory
    (`postgres_count=exact`, as of the moment it states) or the planner's (`estimate`)."""
    stats = await request.app[STATISTICS].read(plan_statistics(request.query.items()))
    return web.json_response(view(stats))


async def verify_page(request: web.Request) -> web.Response:
    """GET /m2/migration/verify: one keyset page compared with DynamoDB, and its id gaps (on the
    last page the ids above its rows too) searched for extra items; follow `next_start_user_id`."""
    verification: Verification = await resolve(request.app[CONTAINER].verification())
    planned = plan_verify_page(request.query.items(), verification.key_kind)
    page = await verification.verify_page(planned)
    counts = page.counts
    verify_log.info(
        "verify page",
        extra=fields(
            start_user_id=planned.start_user_id,
            batch_size=planned.batch_size,
            checked=counts.checked,
            missing=counts.missing,
            different=counts.different,
            extra=counts.extra,
            newer_in_dynamodb=counts.newer_in_dynamodb,
            invalid_in_source=counts.invalid_in_source,
            extra_checked=page.extra_checked,
            extra_checked_above=page.extra_checked_above,
            next_start_user_id=page.next_start_user_id,
        ),
    )
    return web.json_response(view(page))
