"""The aiohttp application factory."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from user_migration.adapters.dynamodb.counters import TargetCounters
from user_migration.adapters.dynamodb.target import DynamoDbUserTarget
from user_migration.container import Container, build_container, resolve
from user_migration.domain.budget.bucket import BudgetSnapshot
from user_migration.domain.observe.overview import MigrationOverview
from user_migration.domain.observe.source_count import SourceCounter
from user_migration.entrypoints.http.auth import Authenticator
from user_migration.entrypoints.http.keys import (
    CHANGE_STREAM,
    CONTAINER,
    DEPENDENCIES,
    METRICS,
    MIGRATION,
    OVERVIEW,
    READINESS,
    SEGMENT_LEASES,
    STATISTICS,
    WRITE_BUDGET,
    Dependencies,
    Readiness,
)
from user_migration.entrypoints.http.metrics import MigrationMetrics
from user_migration.entrypoints.http.middlewares import setup_middlewares
from user_migration.entrypoints.http.routes import scopes, setup_routes
from user_migration.entrypoints.logs import hide_refused_requests
from user_migration.entrypoints.settings import Settings
from user_migration.entrypoints.stall_lines import log_stalls

log = logging.getLogger("user_migration.serve")


def _lifecycle(container: Container, grace_seconds: float) -> Callable[[web.Application], AsyncIterator[None]]:
    async def migration_lifecycle(app: web.Application) -> AsyncIterator[None]:
        # Resolving the use case creates the pool and the DynamoDB client (lazily initialised
        # resources); shutting the container down closes them.
        app[MIGRATION] = await resolve(container.migration())
        # The process's one write budget, the batch endpoint's writes spend from it (for the metrics).
        app[WRITE_BUDGET] = await resolve(container.write_budget())
        app[SEGMENT_LEASES] = await resolve(container.segment_leases())
        # Only its health is read (a query of pg_replication_slots): the stream itself runs in `sync`.
        app[CHANGE_STREAM] = await resolve(container.change_stream())
        app[DEPENDENCIES] = Dependencies(
            await resolve(container.user_source()),
            await resolve(container.user_target()),
            await resolve(container.migration_state()),
        )
        try:
            yield
        finally:
            app[READINESS].draining = True
            # Requests cut short by the shutdown may have left a write running (shielded from
            # them): let it finish and settle before the clients it uses are closed.
            if not await container.writes_in_flight().wait(within_seconds=grace_seconds):
                log.warning("writes still running at shutdown were abandoned; the next holder settles them")
            await resolve(container.shutdown_resources())

    return migration_lifecycle


def _source_count_lifecycle(container: Container) -> Callable[[web.Application], AsyncIterator[None]]:
    async def keep_source_count_fresh(app: web.Application) -> AsyncIterator[None]:
        # The statistics answer from the count kept here: taken now, then every
        # STATS_REFRESH_SECONDS; stopped before the pool it counts through is closed.
        app[STATISTICS] = await resolve(container.statistics())
        counter: SourceCounter = await resolve(container.source_counter())
        refresher = asyncio.create_task(counter.keep_fresh(), name="source count refresher")
        refresher.add_done_callback(_refresher_ended)
        try:
            yield
        finally:
            refresher.cancel()
            await asyncio.wait([refresher])

    return keep_source_count_fresh


def _overview_lifecycle(
    container: Container, write_budget: Callable[[], BudgetSnapshot | None]
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def watch(app: web.Application) -> AsyncIterator[None]:
        # One per app, after the resources it reads: it keeps the readings the pace is measured from.
        app[OVERVIEW] = MigrationOverview(
            app[STATISTICS],
            app[DEPENDENCIES].state,
            app[SEGMENT_LEASES],
            await resolve(container.budget_shares()),
            write_budget,
            container.latest_verification(),
            verify_leases=await resolve(container.verify_leases()),
            verify_results=await resolve(container.verify_results()),
        )
        yield

    return watch


def _stall_lifecycle(container: Container, notice_seconds: float) -> Callable[[web.Application], AsyncIterator[None]]:
    def stalls_logged(app: web.Application) -> AsyncIterator[None]:
        del app
        return log_stalls(container.stall_watch(), notice_seconds)

    return stalls_logged


def _refresher_ended(refresher: asyncio.Task[None]) -> None:
    if not refresher.cancelled() and refresher.exception() is not None:
        # Requests then count on demand (their own errors show); the loop is not restarted.
        log.error("the source count refresher stopped", exc_info=refresher.exception())


async def init_app(settings: Settings, container: Container | None = None) -> web.Application:
    """The web application; tests call it directly: `aiohttp_client(await init_app(settings))`.

    `container` defaults to one built from `settings`; pass one with overridden ports to run the
    API on other adapters (see `entrypoints.harness`).
    """
    if container is None:
        container = build_container(settings.container_config())
    # Headers up to 64 KiB reach the auth middleware and get its JSON 401, instead of the
    # parser's plain 400 (which would also log the start of the header: a token, perhaps).
    app = web.Application(client_max_size=64 * 1024, handler_args={"max_field_size": 64 * 1024})
    hide_refused_requests()
    app[CONTAINER] = container
    app[READINESS] = Readiness()

    def target_counters() -> TargetCounters | None:
        dependencies = app.get(DEPENDENCIES)
        target = dependencies.target if dependencies is not None else None
        return target.counters if isinstance(target, DynamoDbUserTarget) else None

    def write_budget() -> BudgetSnapshot | None:
        budget = app.get(WRITE_BUDGET)
        return budget.snapshot() if budget is not None else None

    app[METRICS] = MigrationMetrics(
        target_counters, container.latest_verification, write_budget, stall_watch=container.stall_watch
    )
    authenticator = Authenticator(settings.api_tokens, settings.jwt_rules)
    setup_middlewares(app, authenticator, app[METRICS], scopes(settings.metrics_public))
    setup_routes(app)
    app.cleanup_ctx.append(_lifecycle(container, settings.shutdown_grace_seconds))
    app.cleanup_ctx.append(_source_count_lifecycle(container))
    app.cleanup_ctx.append(_overview_lifecycle(container, write_budget))
    app.cleanup_ctx.append(_stall_lifecycle(container, settings.stall_notice_seconds))
    return app
