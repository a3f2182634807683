"""The project's own commands, run as a user runs them: `user-migration migrate --all --json` (in
the live-safe default mode or the opt-in offline one) and `user-migration sync --once --json`; and
`verify` through the library.

The commands run in a child process of their own, so that nothing of the benchmark shares their
memory, through `bench.peak_rss_cli`: the project's `entrypoints.cli.main`, which then writes the
process's peak resident memory (VmHWM) to a file.
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

from user_migration.domain.migrate.report import MigrationStats
from user_migration.domain.verify.request import VerifyRequest

ROOT = Path(__file__).resolve().parent.parent


@attrs.frozen
class CommandRun:
    """One run of a `user-migration` command: its JSON summary, wall time and peak memory."""

    summary: dict[str, Any]
    wall_seconds: float  # the whole command, interpreter start and imports included
    peak_rss_mb: float
    cpu_seconds: float = 0.0  # the command's process, from the call of its main


@attrs.frozen
class SyncRun:
    """One `sync --once`: what it did and how long its pass took."""

    changes_seen: int
    written: int
    deleted: int
    failed: int
    processing_seconds: float  # the pass itself, from the summary's processing_time_ms
    wall_seconds: float
    peak_rss_mb: float
    summary: dict[str, Any]
    cpu_seconds: float = 0.0  # the command's process, from the call of its main


@attrs.frozen
class VerifyRun:
    """One `verify` of a whole table through the library: its counts and the seconds it took."""

    counts: dict[str, int]
    seconds: float  # the call of `UserMigration.verify`, the connections opened before
    clean: bool


@attrs.frozen
class ProjectRun:
    """One run of `migrate --all`: what it reported, how long it took and its peak memory."""

    users: int
    migrated: int
    failed: int
    processing_seconds: float  # the run itself, from the summary's processing_time_ms
    wall_seconds: float  # the whole command, interpreter start and imports included
    peak_rss_mb: float
    cpu_seconds: float = 0.0  # the command's process, from the call of its main (`bench.peak_rss_cli`)


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
    from user_migration.entrypoints.library import UserMigration

    async def measure() -> tuple[MigrationStats, float]:
        environment = _environment(database_url, source_table, endpoint_url, users_table, state_table)
        async with UserMigration.from_env(environment) as migration:
            await migration.stats()
            started = time.perf_counter()
            stats = await migration.stats()
            return stats, time.perf_counter() - started

    from user_migration.entrypoints.views import view

    stats, seconds = asyncio.run(measure())
    return view(stats), seconds * 1000


def run_command(arguments: list[str], environment: dict[str, str]) -> CommandRun:
    """`user-migration ARGUMENTS` (ending in --json) in a child process; its last output line parsed."""
    command = [sys.executable, "-m", "bench.peak_rss_cli", *arguments]
    with tempfile.TemporaryDirectory(prefix="bench-project-") as folder:
        peak_file, cpu_file = Path(folder) / "peak_rss_kb", Path(folder) / "cpu_seconds"
        environment = {**environment, "BENCH_PEAK_RSS_FILE": str(peak_file), "BENCH_CPU_FILE": str(cpu_file)}
        started = time.perf_counter()
        finished = subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - started
        if finished.returncode != 0:
            output = f"{finished.stdout}\n{finished.stderr}"
            raise RuntimeError(f"{' '.join(arguments)} exited with {finished.returncode}:\n{output}")
        peak_kb = int(peak_file.read_text())
        cpu = float(cpu_file.read_text())
    summary = json.loads(finished.stdout.strip().splitlines()[-1])
    return CommandRun(summary, wall, peak_kb / 1024, cpu)


def run_project(
    database_url: str,
    source_table: str,
    endpoint_url: str,
    users_table: str,
    state_table: str,
    concurrency: int | None = None,
    offline: bool = False,
    write_path: str | None = None,
    mapping_file: str | None = None,
) -> ProjectRun:
    """Run the migration of the whole source table in a child process and wait for it: in the
    default live-safe mode (a conditional PutItem per user), or with `offline` in the opt-in
    offline mode (`OFFLINE_WRITES=true`: an existence check, then BatchWriteItem)."""
    environment = _environment(database_url, source_table, endpoint_url, users_table, state_table)
    environment["OFFLINE_WRITES"] = "true" if offline else "false"
    if write_path is not None:
        environment["DYNAMODB_WRITE_PATH"] = write_path
    if mapping_file is not None:
        environment["MAPPING_FILE"] = mapping_file
    if concurrency is not None:
        environment["DYNAMODB_CONCURRENCY"] = str(concurrency)
    run = run_command(["migrate", "--all", "--json"], environment)
    summary = run.summary
    return ProjectRun(
        users=int(summary["users_read"]),
        migrated=int(summary["migrated_count"]),
        failed=int(summary["failed_count"]),
        processing_seconds=summary["processing_time_ms"] / 1000,
        wall_seconds=run.wall_seconds,
        peak_rss_mb=run.peak_rss_mb,
        cpu_seconds=run.cpu_seconds,
    )


def run_sync(
    database_url: str,
    source_table: str,
    endpoint_url: str,
    users_table: str,
    state_table: str,
    concurrency: int | None = None,
) -> SyncRun:
    """`user-migration sync --once --json` in a child process (after a migration into the same
    tables, which recorded where the changes start)."""
    environment = _environment(database_url, source_table, endpoint_url, users_table, state_table)
    if concurrency is not None:
        environment["DYNAMODB_CONCURRENCY"] = str(concurrency)
    run = run_command(["sync", "--once", "--json"], environment)
    summary = run.summary
    return SyncRun(
        changes_seen=int(summary["changes_seen"]),
        written=int(summary["written"]),
        deleted=int(summary["deleted"]),
        failed=int(summary["failed_count"]),
        processing_seconds=summary["processing_time_ms"] / 1000,
        wall_seconds=run.wall_seconds,
        peak_rss_mb=run.peak_rss_mb,
        summary=summary,
        cpu_seconds=run.cpu_seconds,
    )


def verify_available() -> bool:
    """Whether the library has `verify` (the command was being written while the benchmark was)."""
    from user_migration.entrypoints.library import UserMigration

    return callable(getattr(UserMigration, "verify", None))


def run_verify(
    database_url: str,
    source_table: str,
    endpoint_url: str,
    users_table: str,
    state_table: str,
    concurrency: int | None = None,
    batch_size: int = 1000,
) -> VerifyRun:
    """`UserMigration.verify` of the whole table (pages of `batch_size`), in this process; timed
    from the call, the connections having been opened (and the setup checked) on entering."""
    from user_migration.entrypoints.library import UserMigration
    from user_migration.entrypoints.views import counts_view

    environment = _environment(database_url, source_table, endpoint_url, users_table, state_table)
    if concurrency is not None:
        environment["DYNAMODB_CONCURRENCY"] = str(concurrency)

    async def measure() -> VerifyRun:
        async with UserMigration.from_env(environment) as migration:
            started = time.perf_counter()
            summary = await migration.verify(VerifyRequest(batch_size=batch_size))
            seconds = time.perf_counter() - started
        return VerifyRun(counts_view(summary.counts), seconds, bool(summary.clean))

    return asyncio.run(measure())
