"""The project's own migration, run as a user runs it: `user-migration migrate --all --json`.

It runs in a child process of its own, so that nothing of the benchmark shares its memory, through
`bench.peak_rss_cli`: the project's `entrypoints.cli.main`, which then writes the process's peak
resident memory (VmHWM) to a file.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import attrs

from domain.report import MigrationStats

ROOT = Path(__file__).resolve().parent.parent


@attrs.frozen
class ProjectRun:
    """One run of `migrate --all`: what it reported, how long it took and its peak memory."""

    users: int
    migrated: int
    failed: int
    processing_seconds: float  # the run itself, from the summary's processing_time_ms
    wall_seconds: float  # the whole command, interpreter start and imports included
    peak_rss_mb: float


def _environment(
    database_url: str, source_table: str, endpoint_url: str, users_table: str, state_table: str
) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "SOURCE_TABLE": source_table,
        "DYNAMODB_ENDPOINT_URL": endpoint_url,
        "DYNAMODB_TABLE": users_table,
        "DYNAMODB_STATE_TABLE": state_table,
        "AWS_REGION": "us-east-1",
    }


def time_statistics(
    database_url: str, source_table: str, endpoint_url: str, users_table: str, state_table: str
) -> tuple[dict[str, Any], float]:
    """The statistics (what `GET /m2/migration/stats` answers) through the library, and the
    milliseconds the call took: the second of two, the first having opened the connections."""
    from entrypoints.library import UserMigration

    async def measure() -> tuple[MigrationStats, float]:
        environment = _environment(database_url, source_table, endpoint_url, users_table, state_table)
        async with UserMigration.from_env(environment) as migration:
            await migration.stats()
            started = time.perf_counter()
            stats = await migration.stats()
            return stats, time.perf_counter() - started

    stats, seconds = asyncio.run(measure())
    return attrs.asdict(stats), seconds * 1000


def run_project(
    database_url: str,
    source_table: str,
    endpoint_url: str,
    users_table: str,
    state_table: str,
    concurrency: int | None = None,
) -> ProjectRun:
    """Run the migration of the whole source table in a child process and wait for it."""
    environment = _environment(database_url, source_table, endpoint_url, users_table, state_table)
    if concurrency is not None:
        environment["DYNAMODB_CONCURRENCY"] = str(concurrency)
    command = [sys.executable, "-m", "bench.peak_rss_cli", "migrate", "--all", "--json"]
    with tempfile.TemporaryDirectory(prefix="bench-project-") as folder:
        peak_file = Path(folder) / "peak_rss_kb"
        environment["BENCH_PEAK_RSS_FILE"] = str(peak_file)
        started = time.perf_counter()
        finished = subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - started
        if finished.returncode != 0:
            output = f"{finished.stdout}\n{finished.stderr}"
            raise RuntimeError(f"migrate --all exited with {finished.returncode}:\n{output}")
        peak_kb = int(peak_file.read_text())
    stdout = finished.stdout
    summary = json.loads(stdout.strip().splitlines()[-1])
    return ProjectRun(
        users=int(summary["users_read"]),
        migrated=int(summary["migrated_count"]),
        failed=int(summary["failed_count"]),
        processing_seconds=summary["processing_time_ms"] / 1000,
        wall_seconds=wall,
        peak_rss_mb=peak_kb / 1024,
    )
