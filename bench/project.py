"""The project's own migration, run as a user runs it: `user-migration migrate --all --json`.

It runs in a child process of its own, so that nothing of the benchmark shares its memory, through
`bench.peak_rss_cli`: the project's `entrypoints.cli.main`, which then writes the process's peak
resident memory (VmHWM) to a file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import attrs

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


def run_project(
    database_url: str,
    source_table: str,
    endpoint_url: str,
    users_table: str,
    state_table: str,
    concurrency: int | None = None,
) -> ProjectRun:
    """Run the migration of the whole source table in a child process and wait for it."""
    environment = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SOURCE_TABLE": source_table,
        "DYNAMODB_ENDPOINT_URL": endpoint_url,
        "DYNAMODB_TABLE": users_table,
        "DYNAMODB_STATE_TABLE": state_table,
        "AWS_REGION": "us-east-1",
    }
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
