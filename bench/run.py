"""`make bench`: the project's migration, sync and verify side by side with the target's ceilings.

    python -m bench.run

Starts a real PostgreSQL (pgserver) and moto's DynamoDB server in its own process, seeds
BENCH_USERS users (default 20,000), and measures, in two scenarios, `local` (loopback) and
`latency_5ms` (a proxy adds 5 ms to every DynamoDB request):
- the opt-in offline mode (`OFFLINE_WRITES=true`): `project_offline` against `ceiling` (raw
  BatchWriteItem), `naive` and `batch_writer`, as before the live-safe default;
- the live-safe default mode: `project_live` against `conditional_ceiling` (raw conditional
  PutItem, one request per user), on the first BENCH_LIVE_USERS users (each user is a request of
  its own: moto serves a few hundred a second, so the whole table would take minutes);
- `verify` of the whole table through the library against `read_ceiling` (keyset pages of
  PostgreSQL plus consistent BatchGetItem of every key), on a table that `sync --once` has just
  brought up to date after 10% of its rows changed (8% updated, 1% inserted at new ids, 1%
  deleted): the sync's changes per second and wall time are reported too. Local only: moto takes
  ~0.2 s for a BatchGetItem of 100 whole items here, so a verify of 20,000 users takes most of a
  minute, and the time budget has no room for a second scenario.
Then the write budget, scale-out and change data capture rows (`bench/write_budget.py`,
`bench/scale_out.py`, `bench/stream.py`; PostgreSQL runs with wal_level=logical for the last).
Writes bench/results/latest.json, latest.md and latest.png. First it measures the domain's own cost
(`bench/domain.py`; alone, without servers and in seconds: `python -m bench.domain`).

Environment: BENCH_USERS (20000), BENCH_LIVE_USERS (3000: the users of `conditional_ceiling` and
`project_live`), BENCH_REPEATS (3: rounds of every contender; medians are reported),
BENCH_NAIVE_USERS (500: the naive script moves only the first users), BENCH_MEMORY_FACTOR (10: the
users of the memory run, offline mode, as a multiple of BENCH_USERS), BENCH_PROJECT_CONCURRENCY
(the project's DYNAMODB_CONCURRENCY; by default the concurrency the matching ceiling's sweep found
best for the scenario: the batch one for the offline mode, the conditional one for the live mode
and `sync`, the read one for `verify`, so that both drive the target alike), BENCH_MOTO_SERIAL (1:
moto serves one request at a time, as the project runs it), BENCH_BUDGET_SECONDS (480: after the
first round, a further round is run only if it still fits in this time, so that `make bench` stays
within 10 minutes on a busy machine), BENCH_RESULTS_DIR (bench/results: where latest.* go; point a
trial run elsewhere to keep the recorded results).
"""

from __future__ import annotations

import gc
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial
from importlib.metadata import version
from pathlib import Path
from typing import Any

import boto3

from bench import contenders, data, report, scale_out, stream, wide_mapping, write_budget
from bench import domain as domain_bench
from bench import statistics as statistics_bench
from bench.project import (
    ProjectRun,
    SyncRun,
    run_project,
    run_sync,
    run_verify,
    time_statistics,
    verify_available,
)
from user_migration.adapters.dynamodb.codec import encode_user
from user_migration.adapters.dynamodb.item_size import Item
from user_migration.domain.convert.rules import Rejection, prepare_user
from user_migration.domain.migrate.request import MAX_BATCH_SIZE
from user_migration.domain.migrate.run import DEFAULT_PAGES_IN_FLIGHT
from user_migration.entrypoints.demo.embedded import EmbeddedDynamoDb, EmbeddedPostgres, free_port

RESULTS = Path(os.environ.get("BENCH_RESULTS_DIR") or Path(__file__).resolve().parent / "results")
SOURCE_TABLE = "bench_users"
LIVE_TABLE = "bench_users_live"
LIVE_UUID_TABLE = "bench_users_live_uuid"
MEMORY_TABLE = "bench_users_memory"
CHANGES_TABLE = "bench_users_changes"
DELAY_MS = 5.0
CEILING_SWEEP = (2, 4, 8, 16, 32)
SWEEP_USERS = 4000
# The conditional ceiling's sweep: up to 64 in flight, on the live project's own users (BENCH_LIVE_USERS).
# It was 2..32 on 500 users, where setting up each connection weighs: the project beat it 2.3 times.
CONDITIONAL_SWEEP = (8, 16, 32, 64)
READ_SWEEP_USERS = 2000
# verify's page size (its default, `--batch-size` 1000): the read ceiling reads the same pages.
VERIFY_PAGE = MAX_BATCH_SIZE
CHANGE_PERCENT = (8, 1, 1)  # updated, inserted, deleted

_STARTED = time.perf_counter()


def _log(message: str) -> None:
    print(f"[bench {time.perf_counter() - _STARTED:6.1f}s] {message}", file=sys.stderr, flush=True)


def _setting(name: str, default: int) -> int:
    text = os.environ.get(name, "").strip()
    return int(text) if text else default


class Tables:
    """Fresh DynamoDB tables for each contender, dropped after it has been checked."""

    def __init__(self, endpoint_url: str) -> None:
        self._client = boto3.client("dynamodb", endpoint_url=endpoint_url, region_name="us-east-1")

    def create(self, prefix: str, key: str = "user_id", key_type: str = "N") -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        self._client.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": key, "AttributeType": key_type}],
            BillingMode="PAY_PER_REQUEST",
        )
        return name

    def count(self, name: str) -> int:
        return int(self._client.describe_table(TableName=name)["Table"]["ItemCount"])

    def drop(self, name: str) -> None:
        self._client.delete_table(TableName=name)

    @contextmanager
    def fresh(self, prefix: str, expected: int, key_type: str = "N") -> Iterator[str]:
        """A new users table; afterwards checks it holds `expected` items, then drops it."""
        name = self.create(prefix, key_type=key_type)
        try:
            yield name
            held = self.count(name)
            if held != expected:
                raise RuntimeError(f"{prefix}: table holds {held} items, expected {expected}")
        finally:
            self.drop(name)


@contextmanager
def latency_proxy(target_port: int, delay_ms: float) -> Iterator[str]:
    """The delaying proxy in a process of its own; yields its endpoint URL."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.latency_proxy", str(port), str(target_port), str(delay_ms)],
        cwd=Path(__file__).resolve().parent.parent,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the latency proxy did not start") from None
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def ready_items(count: int) -> list[Item]:
    """The items of users 1..count, prepared and encoded beforehand (the ceiling writes only): the
    very items the project writes, its `migration_digest` included."""
    migrated_at = datetime.now(UTC)
    items = []
    for user in data.users(1, count):
        prepared = prepare_user(user, migrated_at)
        assert not isinstance(prepared, Rejection), prepared
        items.append(encode_user(prepared, domain_bench.KEY_ATTRIBUTE))
    return items


class Bench:
    """One benchmark session: the servers, the seeded source and the measurements."""

    def __init__(
        self,
        dsn: str,
        endpoints: dict[str, str],
        users: int,
        live_users: int,
        naive_users: int,
        concurrency: int | None,
    ) -> None:
        self.dsn = dsn
        self.endpoints = endpoints
        self.users = users
        self.live_users = live_users
        self.naive_users = naive_users
        self.project_concurrency = concurrency
        self.uuid_mapping: str | None = None  # the mapping file of LIVE_UUID_TABLE
        self.tables = Tables(endpoints["local"])
        self.items = ready_items(users)
        names = (*report.ALL_CONTENDERS, *report.PROJECT_DETAILS)
        self.samples: dict[str, dict[str, list[float]]] = {
            scenario: {name: [] for name in names} for scenario in endpoints
        }
        self.best_concurrency: dict[str, dict[str, int]] = {kind: {} for kind in report.SWEEPS}
        self.sweeps: dict[str, dict[str, dict[int, float]]] = {kind: {} for kind in report.SWEEPS}
        self.stats: dict[str, Any] = {}
        self.stats_ms = 0.0
        # The table `sync` brought up to date, which `verify` and the read ceiling read in every round.
        self.verified: tuple[str, str] | None = None
        self.verified_rows = 0
        self.verify_counts: dict[str, int] | None = None
        self.verify_clean: bool | None = None
        self.verify_error: str | None = None
        self.sync: dict[str, Any] | None = None
        self.scan: dict[str, float] | None = None

    # --- sweeps: the concurrency at which the target takes the most requests from this client

    def _sweep(
        self,
        kind: str,
        scenario: str,
        measure: Callable[[int], tuple[int, float]],
        sweep: tuple[int, ...] = CEILING_SWEEP,
    ) -> None:
        rates = {}
        for concurrency in sweep:
            moved, seconds = measure(concurrency)
            rates[concurrency] = moved / seconds
        self.sweeps[kind][scenario] = rates
        self.best_concurrency[kind][scenario] = max(rates, key=lambda concurrency: rates[concurrency])
        shown = ", ".join(f"{concurrency}: {rate:,.0f}/s" for concurrency, rate in rates.items())
        _log(f"{scenario}: {kind} sweep {shown} -> concurrency {self.best_concurrency[kind][scenario]}")

    def sweep_ceiling(self, scenario: str) -> None:
        """Batched writes (the offline mode's bound)."""
        subset = self.items[:SWEEP_USERS]

        def measure(concurrency: int) -> tuple[int, float]:
            with self.tables.fresh("sweep", len(subset)) as table:
                return contenders.ceiling(self.endpoints[scenario], table, subset, concurrency)

        self._sweep("ceiling", scenario, measure)

    def sweep_conditional(self, scenario: str) -> None:
        """Conditional puts, one request per user (the live-safe mode's bound)."""
        subset = self.items[: self.live_users]

        def measure(concurrency: int) -> tuple[int, float]:
            with self.tables.fresh("sweep", len(subset)) as table:
                return contenders.conditional_ceiling(self.endpoints[scenario], table, subset, concurrency)

        self._sweep("conditional_ceiling", scenario, measure, CONDITIONAL_SWEEP)

    def sweep_reads(self, scenario: str) -> None:
        """Keyset pages plus consistent BatchGetItem (verify's bound), on the table sync brought up to date."""
        assert self.verified is not None
        table = self.verified[0]

        def measure(concurrency: int) -> tuple[int, float]:
            rows, found, seconds = contenders.read_ceiling(
                self.dsn, CHANGES_TABLE, self.endpoints[scenario], table, VERIFY_PAGE, concurrency, READ_SWEEP_USERS
            )
            if found != rows:
                raise RuntimeError(f"read sweep: {found} items for {rows} rows")
            return rows, seconds

        self._sweep("read_ceiling", scenario, measure)

    def concurrency_of(self, kind: str, scenario: str) -> int:
        """The project's DYNAMODB_CONCURRENCY for the work bounded by the ceiling `kind`."""
        return self.project_concurrency or self.best_concurrency[kind][scenario]

    # --- runs

    def _record(self, scenario: str, name: str, moved: int, seconds: float) -> None:
        self.samples[scenario][name].append(moved / seconds)
        _log(f"{scenario}: {name:<19} {moved:>7,} users in {seconds:6.2f} s = {moved / seconds:8,.0f} users/s")

    def run_project(
        self,
        scenario: str,
        source_table: str,
        users: int,
        offline: bool,
        time_stats: bool = False,
        mapping_file: str | None = None,
    ) -> ProjectRun:
        endpoint = self.endpoints[scenario]
        concurrency = self.concurrency_of("ceiling" if offline else "conditional_ceiling", scenario)
        key_type = "N" if mapping_file is None else "S"
        with self.tables.fresh("project", users, key_type) as table:
            state_table = self.tables.create("state", key="state_id", key_type="S")
            try:
                run = run_project(
                    self.dsn,
                    source_table,
                    endpoint,
                    table,
                    state_table,
                    concurrency,
                    offline,
                    mapping_file=mapping_file,
                )
                if time_stats:
                    self.stats, self.stats_ms = time_statistics(self.dsn, source_table, endpoint, table, state_table)
            finally:
                self.tables.drop(state_table)
        if run.migrated != users or run.failed:
            raise RuntimeError(f"project migrated {run.migrated} of {users} users, {run.failed} failed")
        return run

    def _record_project(self, scenario: str, name: str, run: ProjectRun) -> None:
        self._record(scenario, name, run.users, run.processing_seconds)
        self.samples[scenario][f"{name}_rss"].append(run.peak_rss_mb)
        self.samples[scenario][f"{name}_wall"].append(run.users / run.wall_seconds)
        _log(f"{scenario}: {name} wall {run.wall_seconds:.2f} s, peak RSS {run.peak_rss_mb:.1f} MB")

    def prepare_changes(self) -> None:
        """Migrate CHANGES_TABLE (offline mode: fast, and it records where the changes start), change
        10% of its rows, then `sync --once` (local): the table then holds what the source holds."""
        endpoint = self.endpoints["local"]
        table = self.tables.create("verified")
        state_table = self.tables.create("verified_state", key="state_id", key_type="S")
        self.verified = (table, state_table)
        migrated = run_project(
            self.dsn, CHANGES_TABLE, endpoint, table, state_table, self.concurrency_of("ceiling", "local"), True
        )
        if migrated.migrated != self.users or migrated.failed:
            raise RuntimeError(f"changes table: migrated {migrated.migrated} of {self.users}, {migrated.failed} failed")
        changed = data.change_source(self.dsn, CHANGES_TABLE, self.users, CHANGE_PERCENT)
        concurrency = self.concurrency_of("conditional_ceiling", "local")
        run: SyncRun = run_sync(self.dsn, CHANGES_TABLE, endpoint, table, state_table, concurrency)
        applied = run.written + run.deleted
        expected_written = changed["updated"] + changed["inserted"]
        self.verified_rows = self.users + changed["inserted"] - changed["deleted"]
        held = self.tables.count(table)
        self.sync = {
            "users": self.users,
            "changed": changed,
            "changes_seen": run.changes_seen,
            "written": run.written,
            "deleted": run.deleted,
            "skipped_newer": run.summary.get("skipped_newer"),
            "failed": run.failed,
            "applied": applied,
            "processing_seconds": round(run.processing_seconds, 2),
            "wall_seconds": round(run.wall_seconds, 2),
            "users_per_second": round(applied / run.processing_seconds, 1),
            "peak_rss_mb": round(run.peak_rss_mb, 1),
            "concurrency": concurrency,
            "exact": run.written == expected_written
            and run.deleted == changed["deleted"]
            and run.failed == 0
            and held == self.verified_rows,
            "items_after": held,
        }
        _log(
            f"local: sync --once after {changed}: saw {run.changes_seen:,}, wrote {run.written:,}, deleted "
            f"{run.deleted:,}, failed {run.failed:,} in {run.processing_seconds:.2f} s "
            f"({applied / run.processing_seconds:,.0f} changes/s; wall {run.wall_seconds:.2f} s); table holds {held:,}"
        )

    def run_reads(self, scenario: str) -> None:
        """The read ceiling and `verify` (when the library has it) of the whole table sync brought up to date."""
        assert self.verified is not None
        table, state_table = self.verified
        endpoint = self.endpoints[scenario]
        concurrency = self.concurrency_of("read_ceiling", scenario)
        rows, found, seconds = contenders.read_ceiling(
            self.dsn, CHANGES_TABLE, endpoint, table, VERIFY_PAGE, concurrency
        )
        if found != rows or rows != self.verified_rows:
            raise RuntimeError(f"read ceiling: {found} items for {rows} rows, expected {self.verified_rows}")
        self._record(scenario, "read_ceiling", rows, seconds)
        if not verify_available():
            self.verify_error = "the library had no `UserMigration.verify` when this ran"
            _log(f"{scenario}: verify not measured: {self.verify_error}")
            return
        try:
            run = run_verify(self.dsn, CHANGES_TABLE, endpoint, table, state_table, concurrency, VERIFY_PAGE)
        except Exception as error:  # verify was being written alongside: the other figures still count
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
            self.verify_error = f"it failed ({type(error).__name__}: {first_line})"
            _log(f"{scenario}: verify not measured: {self.verify_error}")
            return
        self._record(scenario, "verify", run.counts["checked"], run.seconds)
        self.verify_counts = run.counts
        self.verify_clean = run.clean if self.verify_clean is None else self.verify_clean and run.clean
        if not run.clean:
            _log(f"{scenario}: verify found differences: {run.counts}")

    def round(self, scenario: str) -> None:
        """Each contender once, in turn, each writer into an empty table."""
        endpoint = self.endpoints[scenario]
        with self.tables.fresh("ceiling", self.users) as table:
            moved, seconds = contenders.ceiling(endpoint, table, self.items, self.best_concurrency["ceiling"][scenario])
        self._record(scenario, "ceiling", moved, seconds)
        self._record_project(scenario, "project_offline", self.run_project(scenario, SOURCE_TABLE, self.users, True))

        with self.tables.fresh("naive", self.naive_users) as table:
            moved, seconds = contenders.naive(self.dsn, SOURCE_TABLE, endpoint, table, self.naive_users)
        self._record(scenario, "naive", moved, seconds)

        with self.tables.fresh("batch_writer", self.users) as table:
            moved, seconds = contenders.batch_writer(self.dsn, SOURCE_TABLE, endpoint, table)
        self._record(scenario, "batch_writer", moved, seconds)

        live_items = self.items[: self.live_users]
        with self.tables.fresh("conditional_ceiling", self.live_users) as table:
            moved, seconds = contenders.conditional_ceiling(
                endpoint, table, live_items, self.best_concurrency["conditional_ceiling"][scenario]
            )
        self._record(scenario, "conditional_ceiling", moved, seconds)
        self._record_project(scenario, "project_live", self.run_project(scenario, LIVE_TABLE, self.live_users, False))
        # The same users keyed by uuid (issue 29): within 10% of the integer key's users/s.
        uuid_run = self.run_project(scenario, LIVE_UUID_TABLE, self.live_users, False, mapping_file=self.uuid_mapping)
        self._record_project(scenario, "project_live_uuid", uuid_run)

        if scenario in report.READ_SCENARIOS:
            self.run_reads(scenario)

    def scan_extras(self) -> None:
        """Once, local: the keys-only scan `verify` adds to find extra items (not in the read ceiling)."""
        assert self.verified is not None
        keys, seconds = contenders.scan_keys(self.endpoints["local"], self.verified[0], VERIFY_PAGE)
        self.scan = {"keys": keys, "seconds": round(seconds, 2)}
        _log(f"local: keys-only scan of {keys:,} items in {seconds:.2f} s")

    def drop_verified(self) -> None:
        if self.verified is not None:
            for table in self.verified:
                self.tables.drop(table)
            self.verified = None

    # --- figures

    def median(self, scenario: str, name: str) -> float | None:
        values = self.samples[scenario][name]
        return statistics.median(values) if values else None

    def paired_ratio(self, scenario: str, name: str, versus: str) -> float | None:
        """Median over the rounds of `name`'s rate over `versus`'s in the same round: contenders
        of one round run minutes apart at most, so a slower spell of the machine touches both."""
        mine, theirs = self.samples[scenario][name], self.samples[scenario][versus]
        if not mine or not theirs:
            return None
        return statistics.median(a / b for a, b in zip(mine, theirs, strict=True))


def _timed(what: str, action: Callable[[], Any]) -> Any:
    started = time.perf_counter()
    result = action()
    _log(f"{what} in {time.perf_counter() - started:.1f} s")
    return result


def _rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def _results(bench: Bench, memory_run: ProjectRun, domain: dict[str, float], setup: dict[str, Any]) -> dict[str, Any]:
    scenarios: dict[str, dict[str, float | None]] = {}
    ratios: dict[str, dict[str, float | None]] = {}
    for scenario in report.SCENARIOS:
        figures = {name: _rounded(bench.median(scenario, name), 1) for name in report.ALL_CONTENDERS}
        for name in ("project_offline", "project_live"):
            figures[f"{name}_peak_rss_mb"] = _rounded(bench.median(scenario, f"{name}_rss"), 1)
        scenarios[scenario] = figures
        ratios[scenario] = {
            name: _rounded(bench.paired_ratio(scenario, name, ceiling), 3)
            for ceiling, names in report.GROUPS.items()
            for name in names
        }
    memory_users = memory_run.users
    results: dict[str, Any] = {
        "scenarios": scenarios,
        # Each contender's ratio to the ceiling of its group (report.GROUPS): the offline mode and the
        # scripts to `ceiling`, the live mode to `conditional_ceiling`, verify to `read_ceiling`.
        "ratios_to_ceiling": ratios,
        "project_versus": {
            scenario: {
                f"{mode}/{name}": _rounded(bench.paired_ratio(scenario, mode, name), 2)
                for mode in ("project_offline", "project_live")
                for name in ("naive", "batch_writer")
            }
            for scenario in report.SCENARIOS
        },
        # The live-safe mode on the same users keyed by uuid, against the integer key (paired by round).
        "uuid_versus_integer": {
            scenario: _rounded(bench.paired_ratio(scenario, "project_live_uuid", "project_live"), 3)
            for scenario in report.SCENARIOS
        },
        "ceiling_versus_batch_writer": {
            scenario: _rounded(bench.paired_ratio(scenario, "ceiling", "batch_writer"), 2)
            for scenario in report.SCENARIOS
        },
        # What one request per user costs on this server: the live mode's bound against the offline one's.
        "conditional_ceiling_versus_ceiling": {
            scenario: _rounded(bench.paired_ratio(scenario, "conditional_ceiling", "ceiling"), 3)
            for scenario in report.SCENARIOS
        },
        "memory": {
            "users": bench.users,
            "peak_rss_mb": _rounded(bench.median("local", "project_offline_rss"), 1),
            "users_10x": memory_users,
            "peak_rss_mb_10x": round(memory_run.peak_rss_mb, 1),
            "users_per_second_10x": round(memory_users / memory_run.processing_seconds, 1),
        },
        "domain_us_per_user": round(domain["prepare"], 2),
        "encode_us_per_user": round(domain["encode"], 2),
        "domain_plus_encode_us_per_user": round(domain["prepare_plus_encode"], 2),
        "mapping_20_columns": {
            "columns": wide_mapping.COLUMNS,
            "users": domain["users"],
            "us_per_user": round(domain["mapping_20_columns"], 2),
            "target_us_per_user": domain_bench.WIDE_TARGET_US,
        },
        "statistics": {"users": memory_run.users, "milliseconds": round(bench.stats_ms, 1), "answer": bench.stats},
        "sync": bench.sync,
        "verify": {
            "measured": bool(bench.samples["local"]["verify"]),
            "rows": bench.verified_rows,
            "counts": bench.verify_counts,
            "clean": bench.verify_clean,
            "not_measured_because": None if bench.samples["local"]["verify"] else bench.verify_error,
            "scan": bench.scan,
        },
        "ceiling_concurrency": bench.best_concurrency,
        "sweeps": {
            kind: {
                scenario: {str(c): round(rate, 1) for c, rate in rates.items()} for scenario, rates in sweeps.items()
            }
            for kind, sweeps in bench.sweeps.items()
        },
        "project_wall_users_per_second": {
            scenario: {
                name: _rounded(bench.median(scenario, f"{name}_wall"), 1)
                for name in ("project_offline", "project_live")
            }
            for scenario in report.SCENARIOS
        },
        "samples": {
            scenario: {name: [round(value, 1) for value in values] for name, values in samples.items()}
            for scenario, samples in bench.samples.items()
        },
        "setup": setup,
    }
    results["targets"] = [
        {"target": what, "measured": measured, "met": met} for what, measured, met in report.targets(results)
    ]
    return results


def main() -> int:
    data.fake_aws()
    users = _setting("BENCH_USERS", 20_000)
    live_users = min(_setting("BENCH_LIVE_USERS", 3000), users)
    repeats = _setting("BENCH_REPEATS", 3)
    naive_users = min(_setting("BENCH_NAIVE_USERS", 500), users)
    memory_users = users * _setting("BENCH_MEMORY_FACTOR", 10)
    concurrency = _setting("BENCH_PROJECT_CONCURRENCY", 0) or None
    serial = _setting("BENCH_MOTO_SERIAL", 1) == 1
    budget = _setting("BENCH_BUDGET_SECONDS", 480)
    RESULTS.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()[0]

    domain = _timed("domain cost", lambda: domain_bench.measure(min(users, 20_000)))
    _log(
        f"domain: prepare_user {domain['prepare']:.1f} µs per user, encode_user {domain['encode']:.1f}, "
        f"together {domain['prepare_plus_encode']:.1f}; mapping_20_columns {domain['mapping_20_columns']:.1f}"
    )

    with tempfile.TemporaryDirectory(prefix="bench-pg-") as data_dir:
        postgres = _timed(
            "PostgreSQL started", lambda: EmbeddedPostgres(Path(data_dir)).start({"wal_level": "logical"})
        )
        dynamodb = _timed("moto started", lambda: EmbeddedDynamoDb(serial=serial).start())
        try:
            for table, count in (
                (SOURCE_TABLE, users),
                (LIVE_TABLE, live_users),
                (CHANGES_TABLE, users),
                (MEMORY_TABLE, memory_users),
            ):
                _timed(f"seeded {count:,} users ({table})", partial(data.seed_source, postgres.dsn, table, count))
            _timed(
                f"copied {live_users:,} users keyed by uuid ({LIVE_UUID_TABLE})",
                partial(data.seed_uuid_copy, postgres.dsn, LIVE_TABLE, LIVE_UUID_TABLE),
            )
            uuid_mapping = Path(data_dir) / "uuid_mapping.toml"
            uuid_mapping.write_text(data.UUID_MAPPING.format(table=LIVE_UUID_TABLE))
            with latency_proxy(dynamodb.port, DELAY_MS) as proxy_url:
                endpoints = {"local": dynamodb.endpoint_url, "latency_5ms": proxy_url}
                bench = Bench(postgres.dsn, endpoints, users, live_users, naive_users, concurrency)
                bench.uuid_mapping = str(uuid_mapping)
                gc.collect()
                gc.freeze()  # the ready items stay alive all along: keep them out of every collection
                for scenario in report.SCENARIOS:
                    bench.sweep_ceiling(scenario)
                    bench.sweep_conditional(scenario)
                # The memory run and sync before the rounds: their length decides how many rounds fit in the budget.
                _log(f"memory: the project (offline mode) migrating {memory_users:,} users (local)")
                memory_run = bench.run_project("local", MEMORY_TABLE, memory_users, offline=True, time_stats=True)
                _log(
                    f"memory: {memory_users:,} users in {memory_run.processing_seconds:.1f} s "
                    f"({memory_users / memory_run.processing_seconds:,.0f} users/s), "
                    f"peak RSS {memory_run.peak_rss_mb:.1f} MB; statistics then {bench.stats_ms:.1f} ms: {bench.stats}"
                )
                if bench.stats.get("total_dynamo_users") != memory_users:
                    raise RuntimeError(f"statistics after the memory run are wrong: {bench.stats}")
                at_size = _timed(
                    "statistics at size", partial(statistics_bench.measure, postgres.dsn, endpoints["local"])
                )
                try:
                    _timed("migrated, changed and synced the changes table", bench.prepare_changes)
                    for scenario in report.READ_SCENARIOS:
                        bench.sweep_reads(scenario)
                    rounds, longest = 0, 0.0
                    while rounds < repeats:
                        if rounds and time.perf_counter() - _STARTED + longest > budget:
                            _log(f"stopping after {rounds} round(s) to stay within {budget} s")
                            break
                        round_started = time.perf_counter()
                        _log(f"round {rounds + 1} of {repeats}")
                        for scenario in report.SCENARIOS:
                            bench.round(scenario)
                        rounds += 1
                        longest = max(longest, time.perf_counter() - round_started)
                    bench.scan_extras()
                    budget_run = _timed(
                        "write budget: 3 processes sharing --max-write-units",
                        partial(write_budget.from_settings, postgres.dsn, dynamodb.endpoint_url),
                    )
                    _log(write_budget.describe(budget_run))
                    scale_rows = _timed(
                        "scale out: one run shared by 1, 2 and 4 worker processes",
                        partial(scale_out.from_settings, postgres.dsn, dynamodb.endpoint_url),
                    )
                    stream_row = _timed(
                        "change data capture: the stream against conditional writes, and the lag",
                        partial(stream.from_settings, postgres.dsn, dynamodb.endpoint_url),
                    )
                    _log(stream.describe(stream_row))
                finally:
                    bench.drop_verified()
        finally:
            dynamodb.stop()
            postgres.stop()

    setup = {
        "users": users,
        "live_users": live_users,
        "repeats": rounds,
        "naive_users": naive_users,
        "delay_ms": DELAY_MS,
        "project_concurrency": {
            kind: {scenario: bench.concurrency_of(kind, scenario) for scenario in bench.best_concurrency[kind]}
            for kind in report.SWEEPS
        },
        "project_pages_in_flight": DEFAULT_PAGES_IN_FLIGHT,
        "ceiling_sweep": list(CEILING_SWEEP),
        "ceiling_sweep_users": min(SWEEP_USERS, users),
        "conditional_sweep_users": min(live_users, users),
        "conditional_sweep": list(CONDITIONAL_SWEEP),
        "read_sweep_users": min(READ_SWEEP_USERS, users),
        "verify_page": VERIFY_PAGE,
        "change_percent": dict(zip(("updated", "inserted", "deleted"), CHANGE_PERCENT, strict=True)),
        "moto_mode": "serving one request at a time (the project's EmbeddedDynamoDb default)"
        if serial
        else "moto's own threaded server",
        "moto_version": version("moto"),
        "pgserver_version": version("pgserver"),
        "machine": f"{os.cpu_count()} CPUs, {platform.system()} {platform.machine()}, "
        f"Python {platform.python_version()}",
        "load_average_before": round(load_before, 2),
        "load_average_after": round(os.getloadavg()[0], 2),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "total_seconds": round(time.perf_counter() - _STARTED, 1),
    }
    results = _results(bench, memory_run, domain, setup)
    results["write_budget"] = write_budget.as_json(budget_run)
    results["scale_out"] = scale_out.as_json(scale_rows)
    results["stream"] = stream.as_json(stream_row)
    results["statistics_at_size"] = at_size
    report.write_json(results, RESULTS / "latest.json")
    (RESULTS / "latest.md").write_text(report.markdown(results))
    report.chart(results, RESULTS / "latest.png")
    _log(f"wrote {RESULTS / 'latest.json'}, latest.md and latest.png")
    print((RESULTS / "latest.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
