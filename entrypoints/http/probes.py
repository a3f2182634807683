"""Liveness, readiness and metrics endpoints for operators."""

from __future__ import annotations

import asyncio

from aiohttp import web

from user_migration.domain.errors import DependencyUnavailable, SetupError
from user_migration.entrypoints.http.keys import (
    CHANGE_STREAM,
    DEPENDENCIES,
    METRICS,
    READINESS,
    SEGMENT_LEASES,
    STATISTICS,
)

READINESS_TIMEOUT_SECONDS = 5.0


async def healthz(request: web.Request) -> web.Response:
    """GET /healthz: the process is alive. No dependency is called."""
    return web.json_response({"status": "ok"})


async def _check(name: str, probe: asyncio.Future[None] | asyncio.Task[None]) -> tuple[str, str]:
    try:
        await asyncio.wait_for(probe, READINESS_TIMEOUT_SECONDS)
    except (DependencyUnavailable, SetupError) as error:  # a setup error names the columns or the table
        return name, str(error)
    except TimeoutError:
        return name, f"no answer within {READINESS_TIMEOUT_SECONDS:g}s"
    return name, "ok"


async def readyz(request: web.Request) -> web.Response:
    """GET /readyz: PostgreSQL and DynamoDB reachable, all tables present; 503 naming what failed."""
    if request.app[READINESS].draining:
        return web.json_response({"status": "shutting_down", "checks": {}}, status=503)
    dependencies = request.app[DEPENDENCIES]
    results = await asyncio.gather(
        _check("postgres", asyncio.ensure_future(dependencies.source.check_ready())),
        _check("dynamodb_users_table", asyncio.ensure_future(dependencies.target.check_ready())),
        _check("dynamodb_state_table", asyncio.ensure_future(dependencies.state.check_ready())),
    )
    checks = dict(results)
    ready = all(outcome == "ok" for outcome in checks.values())
    return web.json_response(
        {"status": "ready" if ready else "not_ready", "checks": checks}, status=200 if ready else 503
    )


async def metrics(request: web.Request) -> web.Response:
    """GET /metrics: Prometheus text format."""
    dependencies = request.app.get(DEPENDENCIES)
    if dependencies is not None:
        await request.app[METRICS].sync.refresh(dependencies.state)
    statistics = request.app.get(STATISTICS)
    if statistics is not None:
        await request.app[METRICS].statistics.refresh(statistics)
    leases = request.app.get(SEGMENT_LEASES)
    if leases is not None:
        await request.app[METRICS].segments.refresh(leases)
    stream = request.app.get(CHANGE_STREAM)
    if stream is not None:
        await request.app[METRICS].stream.refresh(stream)
    return web.Response(body=request.app[METRICS].exposition(), content_type="text/plain", charset="utf-8")
