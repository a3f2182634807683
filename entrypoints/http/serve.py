"""`user-migration serve`: the API until SIGTERM/SIGINT, then a graceful shutdown.

On a signal, readiness turns 503 first; after `SHUTDOWN_DRAIN_SECONDS` (time for a load
balancer to notice) the server stops accepting connections, lets requests in flight finish for
up to `SHUTDOWN_GRACE_SECONDS`, and only then closes the database pool and the DynamoDB client.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web

from user_migration.domain.errors import DependencyUnavailable
from user_migration.entrypoints.heap import freeze_long_lived_objects
from user_migration.entrypoints.http.app import init_app
from user_migration.entrypoints.http.keys import DEPENDENCIES, READINESS
from user_migration.entrypoints.logs import configure_logging, fields
from user_migration.entrypoints.settings import Settings

log = logging.getLogger("user_migration.serve")


async def serve_until_stopped(settings: Settings) -> None:
    """Serve, then shut down gracefully on the first SIGTERM or SIGINT."""
    app = await init_app(settings)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=settings.shutdown_grace_seconds)
    await runner.setup()
    freeze_long_lived_objects()
    try:
        await _check_setup(app)
        await web.TCPSite(runner, settings.host, settings.port).start()
        log.info("listening", extra=fields(host=settings.host, port=settings.port))
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signal_number in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signal_number, stop.set)
        await stop.wait()
        app[READINESS].draining = True
        log.info(
            "shutting down",
            extra=fields(drain_seconds=settings.shutdown_drain_seconds, grace_seconds=settings.shutdown_grace_seconds),
        )
        await asyncio.sleep(settings.shutdown_drain_seconds)
    finally:
        await runner.cleanup()
        log.info("stopped")


async def _check_setup(app: web.Application) -> None:
    """A mapping that does not fit the source, or a missing table, stops the start (`SetupError`,
    exit 2). A dependency that is down does not: the service starts and answers 503 until it is back."""
    dependencies = app[DEPENDENCIES]
    for part in (dependencies.source, dependencies.target, dependencies.state):
        try:
            await part.check_ready()
        except DependencyUnavailable as error:
            log.warning("dependency unavailable at start", extra=fields(error=error.code, detail=str(error)))


def serve(settings: Settings) -> None:
    """Configure logging, log the effective configuration (secrets redacted) and serve."""
    configure_logging(settings.log_level, settings.log_format)
    log.info("starting", extra=fields(configuration=settings.redacted()))
    asyncio.run(serve_until_stopped(settings))
