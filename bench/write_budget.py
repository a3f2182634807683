"""The write budget across processes: 3 x `user-migration migrate --all --max-write-units B` at once, on
the same tables, and the write units DynamoDB was asked to take per second over the run.

    python -m bench.write_budget          # alone: starts its own PostgreSQL and moto
    (and from `python -m bench.run`, after the rounds, on the servers already running)

The units are counted on the wire, not by the processes themselves: a small HTTP proxy between the
three processes and moto reads every PutItem, DeleteItem and BatchWriteItem answer for the users table
and adds up what it cost: DynamoDB's `ConsumedCapacity`, or, where moto answers less than DynamoDB
charges (moto says 1.0 for any request) or nothing (a failed condition), one unit per started KB of
each item written, which is what DynamoDB charges (`adapters.dynamodb.spending.units_consumed`, the
rule the budget debits by). Throttled and refused requests cost nothing.

The run is measured from its first write to its last one; the three processes start together (as an
operator's three terminals would, within a second), each sees the others through the state table.
The three are workers of one run in the live-safe mode: they share its segments (1,000 users are 2
segments, so one of them waits for the others' leases and spends nothing; its share flows to them).
Met: the rate over the run within 10% of B. Also reported: the steadiest and busiest 10-second windows.

Environment: BENCH_WRITE_BUDGET_UNITS (B, 50 units/s), BENCH_WRITE_BUDGET_USERS (1,000 users),
BENCH_WRITE_BUDGET_PROCESSES (3).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs
import boto3
from aiohttp import ClientSession, web

from bench import data
from bench.proxy_thread import serving
from user_migration.adapters.dynamodb.item_size import write_units_of
from user_migration.adapters.dynamodb.spending import units_consumed
from user_migration.adapters.dynamodb.tables import STATE_KEY_ATTRIBUTE
from user_migration.entrypoints.demo.embedded import EmbeddedDynamoDb, EmbeddedPostgres

ROOT = Path(__file__).resolve().parent.parent
SOURCE_TABLE = "bench_users_budget"
WINDOW_SECONDS = 10.0
# Headers aiohttp sets itself, or that belong to one hop only.
_HOP_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection", "content-encoding"})


def _setting(name: str, default: int) -> int:
    text = os.environ.get(name, "").strip()
    return int(text) if text else default


def write_cost(operation: str, request: dict[str, Any], status: int, answer: dict[str, Any], table: str) -> float:
    """The write units one request to `table` cost, from what went over the wire; 0 for other tables."""
    if operation in ("PutItem", "DeleteItem"):
        if request.get("TableName") != table:
            return 0.0
        estimated = float(write_units_of(request["Item"])) if operation == "PutItem" else 1.0
        if status == 200:
            return units_consumed(answer, estimated)
        # A failed condition is charged like the write; throttling and validation errors nothing.
        return estimated if "ConditionalCheckFailed" in str(answer.get("__type", "")) else 0.0
    if operation == "BatchWriteItem" and status == 200 and table in request.get("RequestItems", {}):
        unprocessed = {json.dumps(entry, sort_keys=True) for entry in answer.get("UnprocessedItems", {}).get(table, [])}
        processed = [
            entry for entry in request["RequestItems"][table] if json.dumps(entry, sort_keys=True) not in unprocessed
        ]
        estimated = float(sum(write_units_of(entry["PutRequest"]["Item"]) for entry in processed))
        return units_consumed(answer, estimated)
    return 0.0


class MeteringProxy:
    """Forwards DynamoDB requests to `upstream` and records (monotonic time, units) of each write to `table`."""

    def __init__(self, upstream: str, table: str) -> None:
        self._upstream = upstream
        self._table = table
        self.writes: list[tuple[float, float]] = []
        self.throttled = 0
        self._lock = threading.Lock()

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = {name: value for name, value in request.headers.items() if name.lower() not in _HOP_HEADERS}
        session: ClientSession = request.app["session"]
        async with session.post(self._upstream + request.path_qs, data=body, headers=headers) as answer:
            payload = await answer.read()
            status = answer.status
            answer_headers = {name: value for name, value in answer.headers.items() if name.lower() not in _HOP_HEADERS}
        operation = headers.get("X-Amz-Target", headers.get("x-amz-target", "")).rpartition(".")[2]
        if operation in ("PutItem", "DeleteItem", "BatchWriteItem"):
            self._record(operation, body, status, payload)
        return web.Response(body=payload, status=status, headers=answer_headers)

    def _record(self, operation: str, body: bytes, status: int, payload: bytes) -> None:
        request, answer = json.loads(body or b"{}"), json.loads(payload or b"{}")
        units = write_cost(operation, request, status, answer, self._table)
        with self._lock:
            if units:
                self.writes.append((time.monotonic(), units))
            if "Throughput" in str(answer.get("__type", "")) or answer.get("UnprocessedItems"):
                self.throttled += 1


@contextmanager
def metering_proxy(upstream: str, table: str) -> Iterator[tuple[str, MeteringProxy]]:
    """The proxy on a loopback port, in a thread with its own event loop; yields its URL and itself."""
    proxy = MeteringProxy(upstream, table)
    with serving(proxy.handle, "metering proxy") as url:
        yield url, proxy


@attrs.frozen
class BudgetRun:
    """What the processes spent together, as the proxy saw it."""

    budget: float
    processes: int
    users: int
    units: float
    seconds: float
    units_per_second: float
    steadiest_window: float  # the 10-s window closest to the budget...
    busiest_window: float  # ...and the one furthest above it
    throttled: int
    exit_codes: tuple[int, ...]

    @property
    def within_10_percent(self) -> bool:
        return abs(self.units_per_second - self.budget) <= 0.1 * self.budget


def _windows(writes: list[tuple[float, float]]) -> list[float]:
    """Units per second in each whole WINDOW_SECONDS window from the first write on."""
    if not writes:
        return []
    first, last = writes[0][0], writes[-1][0]
    count = int((last - first) // WINDOW_SECONDS)
    sums = [0.0] * count
    for moment, units in writes:
        index = int((moment - first) // WINDOW_SECONDS)
        if index < count:
            sums[index] += units
    return [total / WINDOW_SECONDS for total in sums]


def table_pair(endpoint_url: str, prefix: str = "bench_budget") -> tuple[str, str]:
    """A new users table and state table (on demand), named `<prefix>_users_…`, `<prefix>_state_…`."""
    client = boto3.client("dynamodb", endpoint_url=endpoint_url, region_name="us-east-1")
    suffix = uuid.uuid4().hex[:10]
    users, state = f"{prefix}_users_{suffix}", f"{prefix}_state_{suffix}"
    for name, key, kind in ((users, "user_id", "N"), (state, STATE_KEY_ATTRIBUTE, "S")):
        client.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": key, "AttributeType": kind}],
            BillingMode="PAY_PER_REQUEST",
        )
    return users, state


def measure(dsn: str, endpoint_url: str, budget: int, users: int, processes: int = 3) -> BudgetRun:
    """Seed `users` users, then run `processes` migrations at once with `--max-write-units budget`."""
    data.seed_source(dsn, SOURCE_TABLE, users)
    users_table, state_table = table_pair(endpoint_url)
    with metering_proxy(endpoint_url, users_table) as (proxy_url, proxy), tempfile.TemporaryDirectory() as folder:
        environment = {
            **os.environ,
            "DATABASE_URL": dsn,
            "SOURCE_TABLE": SOURCE_TABLE,
            "DYNAMODB_ENDPOINT_URL": proxy_url,
            "DYNAMODB_TABLE": users_table,
            "DYNAMODB_STATE_TABLE": state_table,
            "AWS_REGION": "us-east-1",
            "OFFLINE_WRITES": "false",
        }
        command = [sys.executable, "-m", "user_migration.entrypoints.cli", "migrate", "--all", "--json"]
        command += ["--max-write-units", str(budget)]
        outputs = [Path(folder) / f"process-{index}.txt" for index in range(processes)]
        running = []
        for output in outputs:
            with output.open("w") as out:
                running.append(subprocess.Popen(command, cwd=ROOT, env=environment, stdout=out, stderr=out))
        codes = tuple(process.wait(timeout=900) for process in running)
        if any(code not in (0, 1) for code in codes):
            text = "\n".join(output.read_text()[-2000:] for output in outputs)
            raise RuntimeError(f"a migrating process failed ({codes}):\n{text}")
        writes = sorted(proxy.writes)
        throttled = proxy.throttled
    units = sum(units for _, units in writes)
    seconds = writes[-1][0] - writes[0][0] if len(writes) > 1 else 0.0
    windows = _windows(writes)
    return BudgetRun(
        budget=float(budget),
        processes=processes,
        users=users,
        units=units,
        seconds=seconds,
        units_per_second=units / seconds if seconds else 0.0,
        steadiest_window=min(windows, key=lambda rate: abs(rate - budget), default=0.0),
        busiest_window=max(windows, default=0.0),
        throttled=throttled,
        exit_codes=codes,
    )


def from_settings(dsn: str, endpoint_url: str) -> BudgetRun:
    """`measure` with the BENCH_WRITE_BUDGET_* settings."""
    return measure(
        dsn,
        endpoint_url,
        budget=_setting("BENCH_WRITE_BUDGET_UNITS", 50),
        users=_setting("BENCH_WRITE_BUDGET_USERS", 1000),
        processes=_setting("BENCH_WRITE_BUDGET_PROCESSES", 3),
    )


def describe(run: BudgetRun) -> str:
    """One line for the log."""
    verdict = "met" if run.within_10_percent else "MISSED"
    return (
        f"write budget: {run.processes} processes x --max-write-units {run.budget:g} -> {run.units:,.0f} units "
        f"in {run.seconds:.1f} s = {run.units_per_second:.1f} units/s ({run.units_per_second / run.budget:.1%} "
        f"of the budget; within 10%: {verdict}); 10-s windows: steadiest {run.steadiest_window:.1f}, "
        f"busiest {run.busiest_window:.1f}; throttled {run.throttled}; exit codes {run.exit_codes}"
    )


def as_json(run: BudgetRun) -> dict[str, Any]:
    """The figures for bench/results/latest.json."""
    return attrs.asdict(run) | {"within_10_percent": run.within_10_percent}


@contextmanager
def embedded_servers() -> Iterator[tuple[str, str]]:
    """A PostgreSQL and a moto of its own, for a scenario run alone: yields (dsn, endpoint URL); fake AWS
    credentials, so that nothing can reach a real account."""
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_REGION="us-east-1")
    os.environ.pop("AWS_PROFILE", None)
    with tempfile.TemporaryDirectory(prefix="bench-pg-") as data_dir:
        postgres = EmbeddedPostgres(Path(data_dir)).start()
        try:
            dynamodb = EmbeddedDynamoDb().start()
            try:
                yield postgres.dsn, dynamodb.endpoint_url
            finally:
                dynamodb.stop()
        finally:
            postgres.stop()


def main() -> int:
    """Alone: a PostgreSQL and a moto of its own."""
    with embedded_servers() as (dsn, endpoint_url):
        run = from_settings(dsn, endpoint_url)
    print(describe(run))
    print(json.dumps(as_json(run)))
    return 0 if run.within_10_percent else 1


if __name__ == "__main__":
    sys.exit(main())
