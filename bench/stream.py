"""Change data capture: how fast `sync --follow --changes logical` applies a stream, against the
rate the same process writes the same changes with conditional writes, and the lag under a
steady stream of changes.

    python -m bench.stream                    # alone: starts its own PostgreSQL (wal_level=logical) and moto
    (and from `python -m bench.run`, on the servers already running)

BENCH_STREAM_USERS (2,000) users are seeded, a slot is set up and the stream's backfill done
(through the library, in this process). Then:
- `conditional`: BENCH_STREAM_CHANGES (2,000) rows are read again and written by
  `ChangeWrites.apply` with newer versions, a page of 500 at a time: the conditional writes
  alone, no stream;
- `stream`: as many rows are updated in PostgreSQL (transactions of 10 rows), then the stream is
  followed until it has acknowledged the last of them: changes applied per second;
- `lag`: a writer updates one row per transaction at BENCH_STREAM_RATE (500) changes a second for
  BENCH_STREAM_SECONDS (10); the lag (now minus the commit time of the last transaction applied)
  is sampled at each progress report, and the time to catch up after the writer stopped.
moto serves one request at a time (a few hundred conditional writes a second here): at 500
changes a second the stream cannot keep up on it, and the lag says by how much.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import attrs
import psycopg2

from bench import data
from user_migration.adapters.dynamodb.client import dynamodb_client
from user_migration.adapters.dynamodb.tables import ensure_tables
from user_migration.adapters.postgres.plan import quote_table_name
from user_migration.container import resolve
from user_migration.domain.sync.request import StreamRequest
from user_migration.domain.sync.row_changes import stream_version
from user_migration.domain.sync.stream import StreamProgress
from user_migration.entrypoints.demo.embedded import EmbeddedDynamoDb, EmbeddedPostgres
from user_migration.entrypoints.library import UserMigration

TABLE = "bench_users_stream"
# Updates one row per transaction at a steady rate; prints how many it made, and in how many seconds.
_WRITER = """
import sys, time, psycopg2
dsn, table, rate, seconds, users = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
connection = psycopg2.connect(dsn)
connection.autocommit = True
began = time.monotonic()
with connection.cursor() as cursor:
    for count in range(rate * seconds):
        pause = began + count / rate - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        cursor.execute(
            f"UPDATE {table} SET email = 'l' || id || '.' || %s || '@example.com' WHERE id = %s",
            (count, 1 + count % users),
        )
print(rate * seconds, time.monotonic() - began)
"""
PAGE = 500


@attrs.frozen
class StreamRow:
    """The figures of one run."""

    users: int
    changes: int
    conditional_per_second: float
    stream_per_second: float
    rate_asked: int
    rate_written: float
    lag_median_seconds: float
    lag_max_seconds: float
    catch_up_seconds: float

    @property
    def stream_share(self) -> float:
        """The stream's rate as a share of the conditional writes' rate."""
        return self.stream_per_second / self.conditional_per_second if self.conditional_per_second else 0.0


def _setting(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


def _environment(dsn: str, endpoint_url: str) -> dict[str, str]:
    return {
        "DATABASE_URL": dsn,
        "SOURCE_TABLE": TABLE,
        "DYNAMODB_ENDPOINT_URL": endpoint_url,
        "DYNAMODB_TABLE": "bench_stream_users",
        "DYNAMODB_STATE_TABLE": "bench_stream_state",
        "AWS_REGION": "us-east-1",
        "CDC_SLOT": "bench_stream",
        "CDC_PUBLICATION": "bench_stream",
        "HOLD_LEASE_SECONDS": "5",
    }


def _update(dsn: str, ids: list[int], per_transaction: int) -> None:
    with psycopg2.connect(dsn) as connection, connection.cursor() as cursor:
        for start in range(0, len(ids), per_transaction):
            chunk = ids[start : start + per_transaction]
            cursor.execute(
                f"UPDATE {quote_table_name(TABLE)} SET email = 'b' || id || '.' || %s || '@example.com' "
                "WHERE id = ANY(%s)",
                (time.monotonic_ns(), chunk),
            )
            connection.commit()
    connection.close()


async def _follow_until(migration: UserMigration, done: Any, progress: list[StreamProgress]) -> None:
    stop = asyncio.Event()

    def watch(report: StreamProgress) -> None:
        progress.append(report)
        if done(report):
            stop.set()

    await migration.stream_changes(StreamRequest(stop, batch_size=1000, on_progress=watch))


async def measure(dsn: str, endpoint_url: str, users: int, changes: int, rate: int, seconds: int) -> StreamRow:
    """One run; see the module's docstring."""
    data.seed_source(dsn, TABLE, users)
    env = _environment(dsn, endpoint_url)
    async with dynamodb_client(endpoint_url, "us-east-1") as client:
        await ensure_tables(client, env["DYNAMODB_TABLE"], env["DYNAMODB_STATE_TABLE"])
    ids = list(range(1, min(changes, users) + 1))
    async with UserMigration.from_env(env) as migration:
        await migration.set_up_change_capture()
        progress: list[StreamProgress] = []
        await _follow_until(migration, lambda report: True, progress)  # the backfill, then one report

        source = await _resolve(migration.container.user_source())
        use_case = await _resolve(migration.container.change_writes())
        started = time.perf_counter()
        for start in range(0, len(ids), PAGE):
            rows = await source.read_users(ids[start : start + PAGE])
            newer = [attrs.evolve(row, version=stream_version(2**62)) for row in rows]
            await use_case.apply(newer)
        conditional = len(ids) / (time.perf_counter() - started)

        _update(dsn, ids, per_transaction=10)
        end = _wal_position(dsn)
        progress.clear()
        started = time.perf_counter()
        await _follow_until(migration, lambda report: report.acknowledged >= end, progress)
        streamed = len(ids) / (time.perf_counter() - started)

        progress.clear()
        # The writer is a process of its own: in this one it would share the interpreter with the stream.
        writer = _start_writer(dsn, rate, seconds, users)
        finished_at: list[float] = []

        def done(report: StreamProgress) -> bool:
            if writer.poll() is not None and not finished_at:
                finished_at.append(time.perf_counter())
                finished_at.append(float(_wal_position(dsn)))
            return bool(finished_at) and report.acknowledged >= finished_at[1]

        await _follow_until(migration, done, progress)
        caught_up = time.perf_counter() - finished_at[0]
        count, took = (writer.communicate()[0] or "0 1").split()
        written, write_seconds = int(count), float(took)
        lags = [report.lag_seconds for report in progress if report.transactions] or [0.0]
        await migration.tear_down_change_capture()
    return StreamRow(
        users,
        len(ids),
        round(conditional, 1),
        round(streamed, 1),
        rate,
        round(written / write_seconds, 1),
        round(statistics.median(lags), 2),
        round(max(lags), 2),
        round(caught_up, 2),
    )


def _start_writer(dsn: str, rate: int, seconds: int, users: int) -> subprocess.Popen[str]:
    arguments = [dsn, quote_table_name(TABLE), str(rate), str(seconds), str(users)]
    return subprocess.Popen([sys.executable, "-c", _WRITER, *arguments], stdout=subprocess.PIPE, text=True)


def _wal_position(dsn: str) -> int:
    with psycopg2.connect(dsn) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_lsn()::text")
        high, low = cursor.fetchone()[0].split("/")
    connection.close()
    return (int(high, 16) << 32) | int(low, 16)


async def _resolve(provided: Any) -> Any:
    return await resolve(provided)


def from_settings(dsn: str, endpoint_url: str) -> StreamRow:
    """`measure` with the BENCH_STREAM_* settings."""
    return asyncio.run(
        measure(
            dsn,
            endpoint_url,
            users=_setting("BENCH_STREAM_USERS", 2_000),
            changes=_setting("BENCH_STREAM_CHANGES", 2_000),
            rate=_setting("BENCH_STREAM_RATE", 500),
            seconds=_setting("BENCH_STREAM_SECONDS", 10),
        )
    )


def describe(row: StreamRow) -> str:
    """The row as a line of the log."""
    rates = f"stream: {row.stream_per_second:,.0f} changes/s applied"
    rates += f", conditional writes {row.conditional_per_second:,.0f}/s ({row.stream_share:.0%})"
    lag = f"at {row.rate_asked}/s asked ({row.rate_written:,.0f}/s written) the lag was"
    lag += f" {row.lag_median_seconds:.1f} s median, {row.lag_max_seconds:.1f} s at most"
    return f"{rates}; {lag}, caught up {row.catch_up_seconds:.1f} s after the writer stopped"


def as_json(row: StreamRow) -> dict[str, Any]:
    """The figures for bench/results/latest.json."""
    return attrs.asdict(row) | {"stream_share": round(row.stream_share, 3)}


def main() -> int:
    """Alone: its own servers."""
    data_dir = Path(tempfile.mkdtemp(prefix="bench-stream-"))
    postgres = EmbeddedPostgres(data_dir).start({"wal_level": "logical"})
    dynamodb = EmbeddedDynamoDb().start()
    data.fake_aws()
    try:
        print(describe(from_settings(postgres.dsn, dynamodb.endpoint_url)))
    finally:
        dynamodb.stop()
        postgres.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
