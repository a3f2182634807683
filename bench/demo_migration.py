"""The demo's full migration, timed in both write modes: `python -m bench.demo_migration [USERS]`.

Sets up what `user-migration demo` sets up (an embedded PostgreSQL seeded with the demo's users,
USERS = 10,000 by default, ~1% of them invalid on purpose; moto's DynamoDB serving one request at
a time; the API with the demo's settings), then runs the demo's own step 3 as it prints it (the
two batches of 100, then "all the rest, 1000 at a time": a bash loop of curl and python3, taken
from `entrypoints.demo.instructions`) and times the loop. Once in the live-safe default mode, once
in the opt-in offline mode (`offline_writes`), each into tables of its own, created empty; the
API runs in this process (in a thread), as the demo runs it in its own.

Before the live-safe default (one conditional PutItem per user) the loop took 8.7 s for its 9,800
users (issue 13).
"""

from __future__ import annotations

import ast
import asyncio
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import attrs
from aiohttp import web

from user_migration.adapters.dynamodb.client import dynamodb_client
from user_migration.adapters.dynamodb.tables import ensure_tables
from user_migration.domain.convert.rules import Rejection, prepare_user
from user_migration.entrypoints.demo.data import demo_users, seed_source
from user_migration.entrypoints.demo.embedded import EmbeddedDynamoDb, EmbeddedPostgres, free_port
from user_migration.entrypoints.demo.instructions import DEMO_SOURCE_TABLE, instructions
from user_migration.entrypoints.http.app import init_app
from user_migration.entrypoints.logs import configure_logging
from user_migration.entrypoints.settings import Settings

REGION = "us-east-1"
BEFORE_SECONDS = 8.7  # the loop before the live-safe default (issue 13)
_STEP_3 = "# 3. Migrate in batches"
_THE_REST = "...and all the rest, 1000 at a time"


@attrs.frozen
class LoopRun:
    """One run of the demo's loop: its seconds and what its answers added up to."""

    mode: str
    seconds: float
    batches: int
    migrated: int
    skipped: int
    failed: int


def _step_3(lines: list[str]) -> tuple[list[str], str]:
    """The demo's first batches (curl commands) and its loop over all the rest, as printed."""
    start = next(index for index, line in enumerate(lines) if line.startswith(_STEP_3))
    marker = next(index for index, line in enumerate(lines) if _THE_REST in line)
    first = [line for line in lines[start + 1 : marker] if line.startswith("curl")]
    return first, lines[marker + 1]


@contextmanager
def _served(settings: Settings) -> Iterator[str]:
    """The API of `settings` on its own event loop in a thread; yields its base URL."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="demo-api", daemon=True)
    thread.start()

    async def start() -> web.AppRunner:
        runner = web.AppRunner(await init_app(settings), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, settings.host, settings.port).start()
        return runner

    runner = asyncio.run_coroutine_threadsafe(start(), loop).result(timeout=60)
    try:
        yield f"http://{settings.host}:{settings.port}"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=60)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


async def _create_tables(endpoint_url: str, users_table: str, state_table: str) -> None:
    async with dynamodb_client(endpoint_url=endpoint_url, region_name=REGION) as client:
        await ensure_tables(client, users_table, state_table)


def _bash(command: str) -> subprocess.CompletedProcess[str]:
    finished = subprocess.run(["bash", "-c", command], capture_output=True, text=True, check=False)
    if finished.returncode != 0:
        raise RuntimeError(f"exited with {finished.returncode}: {command}\n{finished.stderr}")
    return finished


def run_loop(mode: str, base: Settings, printed: Callable[[str], list[str]]) -> LoopRun:
    """The demo's step 3 against fresh tables in `mode` ("live" or "offline"); the loop timed.
    `printed(base_url)`: what the demo prints for an API at that URL."""
    suffix = secrets.token_hex(4)
    settings = attrs.evolve(
        base,
        dynamodb_table=f"users_{mode}_{suffix}",
        dynamodb_state_table=f"user_migration_state_{mode}_{suffix}",
        offline_writes=mode == "offline",
        port=free_port(),
    )
    assert settings.dynamodb_endpoint_url is not None
    asyncio.run(_create_tables(settings.dynamodb_endpoint_url, settings.dynamodb_table, settings.dynamodb_state_table))
    with _served(settings) as base_url:
        first, loop = _step_3(printed(base_url))
        for command in first:
            _bash(command)
        started = time.perf_counter()
        finished = _bash(loop)
        seconds = time.perf_counter() - started
    # The loop's python3 prints each answer's counts to stderr as a dict.
    answers = [ast.literal_eval(line) for line in finished.stderr.splitlines() if line.startswith("{")]
    return LoopRun(
        mode,
        seconds,
        len(answers),
        sum(answer["migrated_count"] for answer in answers),
        sum(answer["skipped_count"] for answer in answers),
        sum(answer["failed_count"] for answer in answers),
    )


def main(arguments: list[str]) -> int:
    users = int(arguments[0]) if arguments else 10_000
    # Only the embedded moto is ever spoken to: never hand it (or anything) real credentials.
    os.environ.update(AWS_ACCESS_KEY_ID="demo", AWS_SECRET_ACCESS_KEY="demo", AWS_DEFAULT_REGION=REGION)
    for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_SECURITY_TOKEN"):
        os.environ.pop(name, None)
    configure_logging("WARNING", "text")
    token = secrets.token_urlsafe(32)
    with tempfile.TemporaryDirectory(prefix="bench-demo-") as folder:
        data_dir = Path(folder)
        postgres = EmbeddedPostgres(data_dir / "postgres").start()
        dynamodb = EmbeddedDynamoDb().start()
        try:
            demo = demo_users(users)
            seed_source(postgres.dsn, DEMO_SOURCE_TABLE, demo)
            now = datetime.now(UTC)
            rejections = [outcome for user in demo if isinstance(outcome := prepare_user(user, now), Rejection)]
            base = Settings(
                database_url=postgres.dsn,
                source_table=DEMO_SOURCE_TABLE,
                dynamodb_endpoint_url=dynamodb.endpoint_url,
                aws_region=REGION,
                api_tokens=(token,),
                host="127.0.0.1",
            )

            def printed(base_url: str) -> list[str]:
                return instructions(demo, rejections, token, base_url, postgres.dsn, dynamodb.endpoint_url, data_dir)

            runs = [run_loop(mode, base, printed) for mode in ("live", "offline")]
        finally:
            dynamodb.stop()
            postgres.stop()
    load = os.getloadavg()[0]
    print(f"The demo's loop over all the rest, 1000 at a time ({users:,} demo users; load average {load:.1f}):")
    for run in runs:
        handled = run.migrated + run.skipped + run.failed
        print(
            f"  {run.mode:<7} {run.seconds:6.1f} s for {handled:,} users in {run.batches} batches "
            f"({run.migrated:,} migrated, {run.skipped:,} skipped, {run.failed:,} failed): "
            f"{handled / run.seconds:,.0f} users/s"
        )
    print(f"  before the live-safe default: {BEFORE_SECONDS} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
