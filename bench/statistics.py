"""Statistics at any size: `GET /m2/migration/stats` at 1 and 10 million source users.

    python -m bench.statistics      # alone: starts its own PostgreSQL and moto

`make bench` runs it on its own servers (`bench/run.py`) and adds `statistics_at_size` to
`latest.json`. One source table is filled on the server (`INSERT ... SELECT generate_series`,
rows about as wide as `bench.data`'s, then ANALYZE) to the first size, measured, then grown to
the next. At each size the service runs as a user runs it (`user-migration serve`, a process of
its own, on fresh DynamoDB tables) and BENCH_STATS_CALLS (15) sequential GETs over one keep-alive
connection are timed, p50 and p95, in both modes: `postgres_count=exact` (the kept count, once
the first one after start is done) and `postgres_count=estimate` (the planner's, per request).
For comparison, the path of every call before the count was kept: an exact `count(*)` plus the
counters (`Migration.statistics()`, in process, the same number of calls).

Environment: BENCH_STATS_SIZES (1000000,10000000), BENCH_STATS_CALLS (15).
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import psycopg2

from bench.data import DDL
from user_migration.adapters.postgres.source import quote_table_name
from user_migration.entrypoints.demo.embedded import EmbeddedDynamoDb, EmbeddedPostgres, free_port

ROOT = Path(__file__).resolve().parent.parent
TABLE = "bench_users_statistics"
TOKEN = "bench-statistics-token"
TARGET_MS = 50.0
# Rows like bench.data's (about 200 bytes with their profile), made by the server itself.
FILL = """
INSERT INTO {table} (id, username, email, display_name, status, created_at, updated_at, profile)
SELECT g, 'user_' || g, 'user.' || g || '@mail.example.net', 'User number ' || g, 'active',
       timestamptz '2015-01-01' + g * interval '31 seconds', timestamptz '2024-01-01' + g * interval '3 seconds',
       jsonb_build_object('locale', (ARRAY['en-US', 'de-DE', 'fr-FR', 'ja-JP'])[1 + g %% 4],
                          'timezone', 'Europe/Berlin', 'plan', (ARRAY['free', 'pro', 'team'])[1 + g %% 3],
                          'newsletter', g %% 2 = 0, 'login_count', g %% 5000, 'tags', jsonb_build_array('beta', 'vip'))
FROM generate_series(%s::bigint, %s::bigint) AS g
"""


def _log(message: str) -> None:
    print(f"[bench statistics] {message}", file=sys.stderr, flush=True)


def _sizes() -> list[int]:
    text = os.environ.get("BENCH_STATS_SIZES", "").strip() or "1000000,10000000"
    return sorted(int(part) for part in text.split(","))


def _calls() -> int:
    return int(os.environ.get("BENCH_STATS_CALLS", "").strip() or 15)


def _run_sql(dsn: str, *statements: tuple[str, tuple[Any, ...]]) -> None:
    connection = psycopg2.connect(dsn)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            for sql, parameters in statements:
                cursor.execute(sql, parameters)
    finally:
        connection.close()


def grow_source(dsn: str, table: str, have: int, want: int) -> float:
    """Fill `table` (created when `have` is 0) with users have+1..want, then ANALYZE; the seconds it took."""
    quoted = quote_table_name(table)
    started = time.perf_counter()
    setup = [(f"DROP TABLE IF EXISTS {quoted}", ()), (DDL.format(table=quoted), ())] if have == 0 else []
    _run_sql(dsn, *setup, (FILL.format(table=quoted), (have + 1, want)), (f"ANALYZE {quoted}", ()))
    return time.perf_counter() - started


def percentiles(milliseconds: list[float]) -> dict[str, float]:
    """p50 and p95 (nearest rank) of the calls, and the slowest."""
    ordered = sorted(milliseconds)
    rank95 = max(0, min(len(ordered) - 1, round(0.95 * len(ordered) + 0.5) - 1))
    return {
        "p50_ms": round(statistics.median(ordered), 2),
        "p95_ms": round(ordered[rank95], 2),
        "max_ms": round(ordered[-1], 2),
    }


class StatsClient:
    """GETs of `/m2/migration/stats` over one keep-alive connection, each timed."""

    def __init__(self, port: int) -> None:
        self._connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def get(self, query: str = "") -> tuple[dict[str, Any], float]:
        started = time.perf_counter()
        self._connection.request("GET", f"/m2/migration/stats{query}", headers={"Authorization": f"Bearer {TOKEN}"})
        response = self._connection.getresponse()
        body = response.read()
        elapsed = (time.perf_counter() - started) * 1000
        if response.status != 200:
            raise RuntimeError(f"stats{query} answered {response.status}: {body[:300]!r}")
        return json.loads(body), elapsed

    def close(self) -> None:
        self._connection.close()


def _dynamodb_tables(endpoint_url: str) -> tuple[str, str]:
    client = boto3.client("dynamodb", endpoint_url=endpoint_url, region_name="us-east-1")
    names = (f"stats_users_{uuid.uuid4().hex[:8]}", f"stats_state_{uuid.uuid4().hex[:8]}")
    for name, key, kind in ((names[0], "user_id", "N"), (names[1], "state_id", "S")):
        client.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": key, "AttributeType": kind}],
            BillingMode="PAY_PER_REQUEST",
        )
    return names


def _environment(dsn: str, endpoint_url: str, users_table: str, state_table: str, port: int) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": dsn,
        "SOURCE_TABLE": TABLE,
        "DYNAMODB_ENDPOINT_URL": endpoint_url,
        "DYNAMODB_TABLE": users_table,
        "DYNAMODB_STATE_TABLE": state_table,
        "AWS_REGION": "us-east-1",
        "MIGRATION_API_TOKENS": TOKEN,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "LOG_LEVEL": "WARNING",
        # A count of 10 million rows takes most of a second: the service's own setting.
        "STATS_REFRESH_SECONDS": "30",
    }


@contextmanager
def serving(environment: dict[str, str]) -> Iterator[StatsClient]:
    """`user-migration serve` in a process of its own; yields a client once the first exact count is in."""
    process = subprocess.Popen(
        [sys.executable, "-m", "user_migration.entrypoints.cli", "serve"],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    client: StatsClient | None = None
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                client = StatsClient(int(environment["PORT"]))
                stats, _ = client.get()
                if stats["total_postgres_users_exact"]:
                    break
            except (OSError, http.client.HTTPException):
                if process.poll() is not None:
                    raise RuntimeError(f"serve exited with {process.returncode}") from None
            if client is not None:
                client.close()
                client = None
            if time.monotonic() > deadline:
                raise RuntimeError("serve had no exact count within 120 s")
            time.sleep(0.1)
        yield client
    finally:
        if client is not None:
            client.close()
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _timed_calls(client: StatsClient, query: str, calls: int) -> tuple[dict[str, Any], list[float]]:
    for _ in range(3):  # warm: connections open, the segment plan read
        client.get(query)
    answer: dict[str, Any] = {}
    times = []
    for _ in range(calls):
        answer, elapsed = client.get(query)
        times.append(elapsed)
    return answer, times


def _counting_every_call(environment: dict[str, str], calls: int) -> tuple[int, list[float]]:
    """The path before the count was kept: `Migration.statistics()` counts the source each call."""
    from user_migration.container import resolve
    from user_migration.entrypoints.library import UserMigration

    async def measure() -> tuple[int, list[float]]:
        async with UserMigration.from_env(environment) as library:
            migration = await resolve(library.container.migration())
            stats = await migration.statistics()
            times = []
            for _ in range(calls):
                started = time.perf_counter()
                stats = await migration.statistics()
                times.append((time.perf_counter() - started) * 1000)
            return stats.total_postgres_users, times

    return asyncio.run(measure())


def measure_size(dsn: str, endpoint_url: str, users: int, calls: int) -> dict[str, Any]:
    """The three ways of answering at one size of the source table."""
    users_table, state_table = _dynamodb_tables(endpoint_url)
    environment = _environment(dsn, endpoint_url, users_table, state_table, free_port())
    started = time.perf_counter()
    with serving(environment) as client:
        first_exact_s = time.perf_counter() - started
        exact, exact_ms = _timed_calls(client, "?postgres_count=exact", calls)
        estimate, estimate_ms = _timed_calls(client, "?postgres_count=estimate", calls)
    counted, counted_ms = _counting_every_call(environment, calls)
    if exact["total_postgres_users"] != users or counted != users or not exact["total_postgres_users_exact"]:
        raise RuntimeError(f"wrong statistics at {users:,}: {exact}, counted {counted:,}")
    result = {
        "users": users,
        "calls": calls,
        "exact_cached": {**percentiles(exact_ms), "answer": exact},
        "estimate": {**percentiles(estimate_ms), "answer": estimate},
        "count_every_call": {**percentiles(counted_ms), "over": "in process (no HTTP)"},
        "first_exact_count_after_start_s": round(first_exact_s, 2),
        "estimate_error_percent": round(100 * (estimate["total_postgres_users"] - users) / users, 3),
    }
    _log(
        f"{users:>12,} users: exact (kept) p50 {result['exact_cached']['p50_ms']} ms p95 "
        f"{result['exact_cached']['p95_ms']} ms; estimate p50 {result['estimate']['p50_ms']} ms p95 "
        f"{result['estimate']['p95_ms']} ms (off by {result['estimate_error_percent']}%); count(*) every call p50 "
        f"{result['count_every_call']['p50_ms']} ms p95 {result['count_every_call']['p95_ms']} ms"
    )
    return result


def measure(dsn: str, endpoint_url: str) -> dict[str, Any]:
    """Every size of BENCH_STATS_SIZES, the table grown from one to the next; dropped afterwards."""
    calls, sizes, have = _calls(), [], 0
    try:
        for users in _sizes():
            seconds = grow_source(dsn, TABLE, have, users)
            _log(f"source grown to {users:,} users (INSERT ... SELECT generate_series, ANALYZE) in {seconds:.1f} s")
            have = users
            sizes.append(measure_size(dsn, endpoint_url, users, calls))
    finally:
        _run_sql(dsn, (f"DROP TABLE IF EXISTS {quote_table_name(TABLE)}", ()))
    largest = sizes[-1]
    return {
        "sizes": sizes,
        "target_ms": TARGET_MS,
        "met": all(size[mode]["p95_ms"] < TARGET_MS for size in sizes for mode in ("exact_cached", "estimate")),
        "largest": largest["users"],
    }


def markdown(results: dict[str, Any]) -> str:
    """The figures as a table."""
    lines = [
        "| source users | exact (kept) p50 / p95 | estimate p50 / p95 | count(*) every call p50 / p95 |",
        "|---:|---:|---:|---:|",
    ]
    for size in results["sizes"]:
        cells = [
            f"{size[mode]['p50_ms']:.1f} / {size[mode]['p95_ms']:.1f} ms"
            for mode in ("exact_cached", "estimate", "count_every_call")
        ]
        lines.append(f"| {size['users']:,} | " + " | ".join(cells) + " |")
    lines.append(
        f"\nTarget < {results['target_ms']:.0f} ms (p95, both modes): {'met' if results['met'] else 'missed'}."
    )
    return "\n".join(lines)


def main() -> int:
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")
    with tempfile.TemporaryDirectory(prefix="bench-stats-pg-") as data_dir:
        postgres = EmbeddedPostgres(Path(data_dir)).start()
        dynamodb = EmbeddedDynamoDb().start()
        try:
            results = measure(postgres.dsn, dynamodb.endpoint_url)
        finally:
            dynamodb.stop()
            postgres.stop()
    print(json.dumps(results, indent=2))
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
