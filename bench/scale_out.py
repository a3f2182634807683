"""Scale-out: one run of `migrate --all` shared by 1, 2 and 4 worker processes, and what the
workers' bookkeeping costs in state-table writes as they grow.

    python -m bench.scale_out                         # alone: starts its own PostgreSQL and moto
    python -m bench.scale_out --users 10000 --workers 1,2,4
    (and from `python -m bench.run`, after the write budget, on the servers already running)

BENCH_SCALE_OUT_USERS (20,000) users are seeded into a source table of their own. For each
number of workers, on fresh DynamoDB tables, that many processes of

    python -m user_migration.entrypoints.cli migrate --all --workers 1 --batch-size 500 --json

are started at once (the workers of one run, as on that many hosts), in the live-safe default
mode, and waited for. Measured per row: the wall time from the first start to the last exit,
users/s over it, the sum of the workers' `users_read` (about the source's users: a page is read
again only when its segment's lease passed on), and the writes to the state table per 1,000
users. The writes are counted on the wire, not by the workers: a small HTTP proxy between the
workers and moto counts every PutItem, UpdateItem, DeleteItem and BatchWriteItem (and
TransactWriteItems) whose table is the row's state table, answered or refused alike (a refused
conditional write is charged as one), and sorts them by what they are for (`write_kind`: the
plan, a segment lease's take, checkpoint, renew and done, a hold's take, intent and settle...).
The lease renewals are reported apart: a worker renews its segment's lease every third of the
lease (SEGMENT_LEASE_SECONDS, 10 s) whatever it migrates meanwhile, so they follow the workers'
seconds, not the users. The proxy adds the same hop to every row.

Checked per row (a failure is reported, and the exit code is 1): every worker exited 0, the users
table holds one item per source user, and the run's `migrated_users` counter
(`DynamoDbMigrationState.read_progress`) equals the items in the users table.

moto serves one request at a time and the machine may have few cores, so users/s need not grow
with the workers; what should stay flat is the state writes per 1,000 users.

Environment: BENCH_SCALE_OUT_USERS (20000), BENCH_SCALE_OUT_WORKERS (1,2,4),
BENCH_SCALE_OUT_BATCH (500: --batch-size).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs
import boto3
from aiohttp import ClientSession, web

from bench import data
from bench.proxy_thread import serving
from bench.write_budget import table_pair
from user_migration.adapters.dynamodb.client import dynamodb_client
from user_migration.adapters.dynamodb.state import DynamoDbMigrationState
from user_migration.entrypoints.demo.embedded import EmbeddedDynamoDb, EmbeddedPostgres

ROOT = Path(__file__).resolve().parent.parent
SOURCE_TABLE = "bench_users_scale_out"
DEFAULT_USERS = 20_000
DEFAULT_WORKERS = (1, 2, 4)
DEFAULT_BATCH = 500
WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"})
# Headers aiohttp sets itself, or that belong to one hop only.
_HOP_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection", "content-encoding"})


def _log(message: str) -> None:
    print(f"[bench scale_out] {message}", file=sys.stderr, flush=True)


def tables_of(operation: str, request: dict[str, Any]) -> set[str]:
    """The tables one DynamoDB request names: its TableName, or the keys of its RequestItems
    (batches), or the tables of its TransactItems."""
    names: set[str] = set()
    if isinstance(request.get("TableName"), str):
        names.add(request["TableName"])
    if isinstance(request.get("RequestItems"), dict):
        names.update(request["RequestItems"])
    if operation.startswith("Transact"):
        for entry in request.get("TransactItems", []):
            for part in entry.values():
                if isinstance(part, dict) and isinstance(part.get("TableName"), str):
                    names.add(part["TableName"])
    return names


def write_kind(operation: str, request: dict[str, Any], last_checkpoints: dict[str, str]) -> str:
    """What a write to the state table is for, from its expression (the adapters' own wording):
    the run's plan, a segment lease's take, renew, checkpoint, done or release, a hold's take,
    intent, settle (a segment's last one with its done mark) or abandon, or the change cursor that
    `sync` starts from. A renew and a checkpoint write the same expression: a renew keeps the
    segment's `lease_checkpoint` as the last lease write to it left it (`last_checkpoints`, kept by
    the caller per key)."""
    if operation != "UpdateItem":
        return "plan" if operation == "PutItem" else operation
    update = str(request.get("UpdateExpression", ""))
    values = request.get("ExpressionAttributeValues", {})
    if "lease_counter" in update:
        key = json.dumps(request.get("Key"), sort_keys=True)
        checkpoint = json.dumps(values.get(":checkpoint"))
        before, last_checkpoints[key] = last_checkpoints.get(key), checkpoint
        if "lease_takes" in update:
            return "lease take"
        if "migrated_users = :count" in update:
            return "hold settle + lease done"  # a segment's last settle, its done mark in the same write
        if values.get(":done", {}).get("BOOL"):
            return "lease done"
        if "REMOVE lease_owner" in update:
            return "lease release"
        return "lease renew" if checkpoint == before else "lease checkpoint"
    if "holds = :holds" in update:
        return "hold take"
    if "holds.#hold.#ids" in update:
        return "hold intent"
    if "migrated_users = :count" in update:
        return "hold settle"
    if "REMOVE holds.#hold" in update:
        return "hold abandon"
    if "change_cursor" in update:
        return "change cursor"
    if "resume_from_user_id" in update:
        return "resume checkpoint"
    return "run number" if "#run" in update else "other update"


class CountingProxy:
    """Forwards DynamoDB requests to `upstream` and counts them by (table, operation); `refused`
    counts those answered with anything but 200 (a failed condition, say)."""

    def __init__(self, upstream: str) -> None:
        self._upstream = upstream
        self.requests: Counter[tuple[str, str]] = Counter()
        self.refused: Counter[tuple[str, str]] = Counter()
        # Writes by (table, kind) (`write_kind`), sent and refused.
        self.kinds: Counter[tuple[str, str]] = Counter()
        self.refused_kinds: Counter[tuple[str, str]] = Counter()
        self._checkpoints: dict[str, str] = {}
        self._lock = threading.Lock()

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = {name: value for name, value in request.headers.items() if name.lower() not in _HOP_HEADERS}
        session: ClientSession = request.app["session"]
        async with session.request(
            request.method, self._upstream + request.path_qs, data=body, headers=headers
        ) as answer:
            payload = await answer.read()
            status = answer.status
            answer_headers = {name: value for name, value in answer.headers.items() if name.lower() not in _HOP_HEADERS}
        operation = headers.get("X-Amz-Target", headers.get("x-amz-target", "")).rpartition(".")[2]
        if operation:
            self._count(operation, body, status)
        return web.Response(body=payload, status=status, headers=answer_headers)

    def _count(self, operation: str, body: bytes, status: int) -> None:
        try:
            document = json.loads(body or b"{}")
        except ValueError:
            document = {}
        document = document if isinstance(document, dict) else {}
        names = tables_of(operation, document) or {""}
        with self._lock:
            kind = write_kind(operation, document, self._checkpoints) if operation in WRITES else ""
            for name in names:
                self.requests[name, operation] += 1
                if kind:
                    self.kinds[name, kind] += 1
                if status != 200:
                    self.refused[name, operation] += 1
                    if kind:
                        self.refused_kinds[name, kind] += 1

    def of_table(self, table: str) -> tuple[dict[str, int], dict[str, int]]:
        """(requests, refused requests) to `table`, by operation."""
        with self._lock:
            sent = {operation: n for (name, operation), n in self.requests.items() if name == table}
            refused = {operation: n for (name, operation), n in self.refused.items() if name == table}
        return sent, refused

    def kinds_of(self, table: str) -> tuple[dict[str, int], dict[str, int]]:
        """(writes, refused writes) to `table`, by kind (`write_kind`)."""
        with self._lock:
            sent = {kind: n for (name, kind), n in self.kinds.items() if name == table}
            refused = {kind: n for (name, kind), n in self.refused_kinds.items() if name == table}
        return dict(sorted(sent.items())), dict(sorted(refused.items()))


@contextmanager
def counting_proxy(upstream: str) -> Iterator[tuple[str, CountingProxy]]:
    """The proxy on a loopback port, in a thread with its own event loop; yields its URL and itself."""
    proxy = CountingProxy(upstream)
    with serving(proxy.handle, "counting proxy") as url:
        yield url, proxy


@attrs.frozen
class ScaleRow:
    """One run shared by `workers` processes."""

    workers: int
    users: int
    wall_seconds: float  # first worker started to last one exited, interpreter starts included
    slowest_processing_seconds: float  # the longest of the workers' own processing_time_ms
    users_read: int  # summed over the workers
    per_worker_users_read: tuple[int, ...]
    migrated: int  # summed migrated_count
    items: int  # in the users table afterwards
    migrated_counter: int  # read_progress().migrated_users
    state_writes: int
    state_writes_by_operation: dict[str, int]
    state_refused_by_operation: dict[str, int]
    state_writes_by_kind: dict[str, int]
    state_refused_by_kind: dict[str, int]
    state_reads: int
    users_table_requests: int
    lease_takes: int
    lease_steals: int
    leases_lost: int
    exit_codes: tuple[int, ...]
    problems: tuple[str, ...]

    @property
    def users_per_second(self) -> float:
        return self.users / self.wall_seconds if self.wall_seconds else 0.0

    @property
    def state_writes_per_1000(self) -> float:
        return 1000 * self.state_writes / self.users if self.users else 0.0

    @property
    def renewals_per_1000(self) -> float:
        """The lease renewals' part: one per worker every third of the lease, however many users
        it migrates meanwhile, so it follows the workers' seconds rather than the users."""
        return 1000 * self.state_writes_by_kind.get("lease renew", 0) / self.users if self.users else 0.0

    @property
    def ok(self) -> bool:
        return not self.problems


def _drop_tables(endpoint_url: str, *names: str) -> None:
    client = boto3.client("dynamodb", endpoint_url=endpoint_url, region_name="us-east-1")
    for name in names:
        client.delete_table(TableName=name)


def _stored(endpoint_url: str, users_table: str, state_table: str) -> tuple[int, int]:
    """(items in the users table, the run's migrated_users counter), straight from moto."""
    client = boto3.client("dynamodb", endpoint_url=endpoint_url, region_name="us-east-1")
    items = 0
    arguments: dict[str, Any] = {"TableName": users_table, "Select": "COUNT", "ConsistentRead": True}
    while True:
        page = client.scan(**arguments)
        items += int(page["Count"])
        if "LastEvaluatedKey" not in page:
            break
        arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    async def counter() -> int:
        async with dynamodb_client(endpoint_url, "us-east-1") as aio_client:
            progress = await DynamoDbMigrationState(aio_client, state_table).read_progress()
        return progress.migrated_users

    return items, asyncio.run(counter())


def run_row(
    dsn: str, endpoint_url: str, proxy_url: str, proxy: CountingProxy, users: int, workers: int, batch: int
) -> ScaleRow:
    """`workers` processes of `migrate --all --workers 1` at once on fresh tables, through the proxy."""
    users_table, state_table = table_pair(endpoint_url, "bench_scale")
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "DYNAMODB_", "SOURCE_"))}
    environment = {
        **base,
        "DATABASE_URL": dsn,
        "SOURCE_TABLE": SOURCE_TABLE,
        "DYNAMODB_ENDPOINT_URL": proxy_url,
        "DYNAMODB_TABLE": users_table,
        "DYNAMODB_STATE_TABLE": state_table,
        "AWS_REGION": "us-east-1",
        "OFFLINE_WRITES": "false",
    }
    command = [sys.executable, "-m", "user_migration.entrypoints.cli", "migrate", "--all", "--workers", "1"]
    command += ["--batch-size", str(batch), "--json"]
    try:
        with tempfile.TemporaryDirectory(prefix="bench-scale-out-") as folder:
            outs = [Path(folder) / f"worker-{n}.out" for n in range(workers)]
            errs = [Path(folder) / f"worker-{n}.err" for n in range(workers)]
            running = []
            started = time.perf_counter()
            for out_path, err_path in zip(outs, errs, strict=True):
                with out_path.open("w") as out, err_path.open("w") as err:
                    running.append(subprocess.Popen(command, cwd=ROOT, env=environment, stdout=out, stderr=err))
            codes = tuple(process.wait(timeout=1800) for process in running)
            wall = time.perf_counter() - started
            problems: list[str] = []
            summaries: list[dict[str, Any]] = []
            for n, (code, out_path, err_path) in enumerate(zip(codes, outs, errs, strict=True)):
                lines = out_path.read_text().strip().splitlines()
                if code != 0:
                    problems.append(f"worker {n} exited with {code}: {err_path.read_text()[-1500:]}")
                if lines:
                    summaries.append(json.loads(lines[-1]))
                else:
                    problems.append(f"worker {n} printed no summary")
        sent, refused = proxy.of_table(state_table)
        kinds, refused_kinds = proxy.kinds_of(state_table)
        users_sent, _ = proxy.of_table(users_table)
        items, migrated_counter = _stored(endpoint_url, users_table, state_table)
    finally:
        _drop_tables(endpoint_url, users_table, state_table)
    if migrated_counter != items:
        problems.append(f"migrated_users counter {migrated_counter:,} != {items:,} items in the users table")
    if items != users:
        problems.append(f"{items:,} items in the users table, {users:,} source users")
    writes = {operation: n for operation, n in sent.items() if operation in WRITES}
    return ScaleRow(
        workers=workers,
        users=users,
        wall_seconds=wall,
        slowest_processing_seconds=max((s.get("processing_time_ms", 0) for s in summaries), default=0) / 1000,
        users_read=sum(int(s.get("users_read", 0)) for s in summaries),
        per_worker_users_read=tuple(int(s.get("users_read", 0)) for s in summaries),
        migrated=sum(int(s.get("migrated_count", 0)) for s in summaries),
        items=items,
        migrated_counter=migrated_counter,
        state_writes=sum(writes.values()),
        state_writes_by_operation=dict(sorted(writes.items())),
        state_refused_by_operation=dict(sorted((op, n) for op, n in refused.items() if op in WRITES)),
        state_writes_by_kind=kinds,
        state_refused_by_kind=refused_kinds,
        state_reads=sum(n for operation, n in sent.items() if operation not in WRITES),
        users_table_requests=sum(users_sent.values()),
        lease_takes=sum(int(s.get("lease_takes", 0)) for s in summaries),
        lease_steals=sum(int(s.get("lease_steals", 0)) for s in summaries),
        leases_lost=sum(int(s.get("leases_lost", 0)) for s in summaries),
        exit_codes=codes,
        problems=tuple(problems),
    )


def measure(
    dsn: str,
    endpoint_url: str,
    users: int = DEFAULT_USERS,
    workers: Sequence[int] = DEFAULT_WORKERS,
    batch: int = DEFAULT_BATCH,
) -> list[ScaleRow]:
    """Seed `users` users, then one row per number of workers, each on fresh tables."""
    data.seed_source(dsn, SOURCE_TABLE, users)
    rows = []
    with counting_proxy(endpoint_url) as (proxy_url, proxy):
        for count in workers:
            _log(f"{count} worker(s) migrating {users:,} users")
            row = run_row(dsn, endpoint_url, proxy_url, proxy, users, count, batch)
            _log(describe(row))
            rows.append(row)
    return rows


def _setting(name: str, default: str) -> str:
    return os.environ.get(name, "").strip() or default


def _workers(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(",") if part.strip())


def from_settings(dsn: str, endpoint_url: str) -> list[ScaleRow]:
    """`measure` with the BENCH_SCALE_OUT_* settings."""
    return measure(
        dsn,
        endpoint_url,
        users=int(_setting("BENCH_SCALE_OUT_USERS", str(DEFAULT_USERS))),
        workers=_workers(_setting("BENCH_SCALE_OUT_WORKERS", ",".join(map(str, DEFAULT_WORKERS)))),
        batch=int(_setting("BENCH_SCALE_OUT_BATCH", str(DEFAULT_BATCH))),
    )


def describe(row: ScaleRow) -> str:
    """One line for the log."""
    verdict = "ok" if row.ok else "FAILED: " + "; ".join(row.problems)
    return (
        f"scale_out workers={row.workers}: {row.users:,} users in {row.wall_seconds:.1f} s "
        f"({row.users_per_second:,.0f} users/s; slowest worker's own {row.slowest_processing_seconds:.1f} s), "
        f"users_read {row.users_read:,} {row.per_worker_users_read}, state writes {row.state_writes:,} "
        f"({row.state_writes_per_1000:.1f} per 1,000 users, lease renewals {row.renewals_per_1000:.1f} of them; "
        f"{row.state_writes_by_kind}, refused {row.state_refused_by_kind}), state reads {row.state_reads:,}, "
        f"lease takes {row.lease_takes} (steals {row.lease_steals}, lost {row.leases_lost}); "
        f"counter {row.migrated_counter:,} / items {row.items:,}: {verdict}"
    )


def markdown(rows: Sequence[ScaleRow]) -> str:
    """The table of the rows."""
    lines = [
        "| row | wall s | users/s | users_read total | state writes per 1,000 users | of which lease renewals "
        "| counter = items |",
        "|---|---:|---:|---:|---:|---:|:---:|",
    ]
    for row in rows:
        check = "yes" if row.migrated_counter == row.items else "**no**"
        lines.append(
            f"| scale_out workers={row.workers} | {row.wall_seconds:.1f} | {row.users_per_second:,.0f} | "
            f"{row.users_read:,} | {row.state_writes_per_1000:.1f} | {row.renewals_per_1000:.1f} | {check} |"
        )
    return "\n".join(lines)


def as_json(rows: Sequence[ScaleRow]) -> list[dict[str, Any]]:
    """The figures for bench/results/latest.json."""
    return [
        attrs.asdict(row)
        | {
            "users_per_second": round(row.users_per_second, 1),
            "state_writes_per_1000_users": round(row.state_writes_per_1000, 2),
            "lease_renewals_per_1000_users": round(row.renewals_per_1000, 2),
            "ok": row.ok,
        }
        for row in rows
    ]


@contextmanager
def embedded_servers() -> Iterator[tuple[str, str]]:
    """A PostgreSQL and a moto of its own: yields (dsn, endpoint URL); fake AWS credentials, so
    that nothing can reach a real account."""
    data.fake_aws()
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


def main(argv: Sequence[str] | None = None) -> int:
    """Alone: a PostgreSQL and a moto of its own."""
    parser = argparse.ArgumentParser(prog="python -m bench.scale_out", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--users", type=int, default=int(_setting("BENCH_SCALE_OUT_USERS", str(DEFAULT_USERS))), help="source users"
    )
    parser.add_argument(
        "--workers",
        type=_workers,
        default=_workers(_setting("BENCH_SCALE_OUT_WORKERS", ",".join(map(str, DEFAULT_WORKERS)))),
        help="numbers of workers, one row each (default 1,2,4)",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=int(_setting("BENCH_SCALE_OUT_BATCH", str(DEFAULT_BATCH))),
        help="--batch-size",
    )
    arguments = parser.parse_args(argv)
    started = time.perf_counter()
    with embedded_servers() as (dsn, endpoint_url):
        rows = measure(dsn, endpoint_url, arguments.users, arguments.workers, arguments.batch_size)
    _log(f"done in {time.perf_counter() - started:.0f} s ({os.cpu_count()} CPUs)")
    print(markdown(rows))
    print(json.dumps(as_json(rows)))
    failed = [row for row in rows if not row.ok]
    for row in failed:
        print(f"FAILED scale_out workers={row.workers}: {'; '.join(row.problems)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
