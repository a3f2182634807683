"""`make bench`: the project's migration side by side with the target's ceiling and two scripts.

    python -m bench.run

Starts a real PostgreSQL (pgserver) and moto's DynamoDB server in its own process, seeds
BENCH_USERS users (default 20,000), and runs `ceiling`, `project`, `naive` and `batch_writer` in
two scenarios: `local` (loopback) and `latency_5ms` (a proxy adds 5 ms to every DynamoDB request).
Writes bench/results/latest.json, latest.md and latest.png. First it measures the domain's own cost
(`bench/domain.py`; alone, without servers and in seconds: `python -m bench.domain`).

Environment: BENCH_USERS (20000), BENCH_REPEATS (3: rounds of every contender; medians are
reported), BENCH_NAIVE_USERS (500: the naive script moves only the first users), BENCH_MEMORY_FACTOR
(10: the users of the memory run, as a multiple of BENCH_USERS), BENCH_PROJECT_CONCURRENCY (the
project's DYNAMODB_CONCURRENCY; by default the concurrency the ceiling sweep found best for the
scenario, so that both drive the target alike), BENCH_MOTO_SERIAL (1: moto serves one request at
a time, as the project runs it), BENCH_BUDGET_SECONDS (480: after the first round, a further
round is run only if it still fits in this time, so that `make bench` stays within 10 minutes on a
busy machine).
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
from importlib.metadata import version
from pathlib import Path
from typing import Any

import boto3

from adapters.dynamodb_codec import encode_user
from bench import contenders, data, report
from bench import domain as domain_bench
from bench.project import ProjectRun, run_project, time_statistics
from domain.migration_run import DEFAULT_PAGES_IN_FLIGHT
from domain.model import Item
from domain.rules import Rejection, prepare_user
from entrypoints.demo.embedded import EmbeddedDynamoDb, EmbeddedPostgres, free_port

RESULTS = Path(__file__).resolve().parent / "results"
SOURCE_TABLE = "bench_users"
MEMORY_TABLE = "bench_users_memory"
DELAY_MS = 5.0
CEILING_SWEEP = (2, 4, 8, 16, 32)
SWEEP_USERS = 4000

_STARTED = time.perf_counter()


def _log(message: str) -> None:
    print(f"[bench {time.perf_counter() - _STARTED:6.1f}s] {message}", file=sys.stderr, flush=True)


def _setting(name: str, default: int) -> int:
    text = os.environ.get(name, "").strip()
    return int(text) if text else default


def _fake_aws() -> None:
    """Fake credentials: the benchmark can never reach a real account."""
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_SESSION_TOKEN="testing",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_REGION="us-east-1",
    )
    for name in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        os.environ.pop(name, None)


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
    def fresh(self, prefix: str, expected: int) -> Iterator[str]:
        """A new users table; afterwards checks it holds `expected` items, then drops it."""
        name = self.create(prefix)
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
        self, dsn: str, endpoints: dict[str, str], users: int, naive_users: int, concurrency: int | None
    ) -> None:
        self.dsn = dsn
        self.endpoints = endpoints
        self.users = users
        self.naive_users = naive_users
        self.project_concurrency = concurrency
        self.tables = Tables(endpoints["local"])
        self.items = ready_items(users)
        self.samples: dict[str, dict[str, list[float]]] = {
            scenario: {name: [] for name in (*report.CONTENDERS, "project_rss", "project_wall", "project_wall_seconds")}
            for scenario in endpoints
        }
        self.best_concurrency: dict[str, int] = {}
        self.stats: dict[str, Any] = {}
        self.stats_ms = 0.0

    def sweep_ceiling(self, scenario: str) -> None:
        """Find the concurrency at which the target takes the most writes from this client."""
        subset = self.items[:SWEEP_USERS]
        rates = {}
        for concurrency in CEILING_SWEEP:
            with self.tables.fresh("sweep", len(subset)) as table:
                moved, seconds = contenders.ceiling(self.endpoints[scenario], table, subset, concurrency)
            rates[concurrency] = moved / seconds
        self.best_concurrency[scenario] = max(rates, key=lambda concurrency: rates[concurrency])
        shown = ", ".join(f"{concurrency}: {rate:,.0f}/s" for concurrency, rate in rates.items())
        _log(f"{scenario}: ceiling sweep {shown} -> concurrency {self.best_concurrency[scenario]}")

    def concurrency_of(self, scenario: str) -> int:
        """The project's DYNAMODB_CONCURRENCY in this scenario."""
        return self.project_concurrency or self.best_concurrency[scenario]

    def _record(self, scenario: str, name: str, moved: int, seconds: float) -> None:
        self.samples[scenario][name].append(moved / seconds)
        _log(f"{scenario}: {name:<12} {moved:>7,} users in {seconds:6.2f} s = {moved / seconds:8,.0f} users/s")

    def run_project(self, scenario: str, source_table: str, users: int, time_stats: bool = False) -> ProjectRun:
        endpoint = self.endpoints[scenario]
        with self.tables.fresh("project", users) as table:
            state_table = self.tables.create("state", key="state_id", key_type="S")
            try:
                run = run_project(self.dsn, source_table, endpoint, table, state_table, self.concurrency_of(scenario))
                if time_stats:
                    self.stats, self.stats_ms = time_statistics(self.dsn, source_table, endpoint, table, state_table)
            finally:
                self.tables.drop(state_table)
        if run.migrated != users or run.failed:
            raise RuntimeError(f"project migrated {run.migrated} of {users} users, {run.failed} failed")
        return run

    def round(self, scenario: str) -> None:
        """Each contender once, in turn, each into an empty table."""
        endpoint = self.endpoints[scenario]
        with self.tables.fresh("ceiling", self.users) as table:
            moved, seconds = contenders.ceiling(endpoint, table, self.items, self.best_concurrency[scenario])
        self._record(scenario, "ceiling", moved, seconds)

        run = self.run_project(scenario, SOURCE_TABLE, self.users)
        self._record(scenario, "project", run.users, run.processing_seconds)
        self.samples[scenario]["project_rss"].append(run.peak_rss_mb)
        self.samples[scenario]["project_wall"].append(run.users / run.wall_seconds)
        self.samples[scenario]["project_wall_seconds"].append(run.wall_seconds)
        _log(f"{scenario}: project wall {run.wall_seconds:.2f} s, peak RSS {run.peak_rss_mb:.1f} MB")

        with self.tables.fresh("naive", self.naive_users) as table:
            moved, seconds = contenders.naive(self.dsn, SOURCE_TABLE, endpoint, table, self.naive_users)
        self._record(scenario, "naive", moved, seconds)

        with self.tables.fresh("batch_writer", self.users) as table:
            moved, seconds = contenders.batch_writer(self.dsn, SOURCE_TABLE, endpoint, table)
        self._record(scenario, "batch_writer", moved, seconds)

    def median(self, scenario: str, name: str) -> float:
        return statistics.median(self.samples[scenario][name])

    def paired_ratio(self, scenario: str, name: str, versus: str) -> float:
        """Median over the rounds of `name`'s rate over `versus`'s in the same round: contenders
        of one round run minutes apart at most, so a slower spell of the machine touches both."""
        pairs = zip(self.samples[scenario][name], self.samples[scenario][versus], strict=True)
        return statistics.median(mine / theirs for mine, theirs in pairs)


def _timed(what: str, action: Callable[[], Any]) -> Any:
    started = time.perf_counter()
    result = action()
    _log(f"{what} in {time.perf_counter() - started:.1f} s")
    return result


def _results(bench: Bench, memory_run: ProjectRun, domain: dict[str, float], setup: dict[str, Any]) -> dict[str, Any]:
    scenarios: dict[str, dict[str, float]] = {}
    ratios: dict[str, dict[str, float]] = {}
    for scenario in report.SCENARIOS:
        scenarios[scenario] = {name: round(bench.median(scenario, name), 1) for name in report.CONTENDERS}
        scenarios[scenario]["project_peak_rss_mb"] = round(bench.median(scenario, "project_rss"), 1)
        ratios[scenario] = {name: round(bench.paired_ratio(scenario, name, "ceiling"), 3) for name in report.CONTENDERS}
    memory_users = memory_run.users
    results: dict[str, Any] = {
        "scenarios": scenarios,
        "ratios_to_ceiling": ratios,
        "project_versus": {
            scenario: {
                name: round(bench.paired_ratio(scenario, "project", name), 2) for name in ("naive", "batch_writer")
            }
            for scenario in report.SCENARIOS
        },
        "ceiling_versus_batch_writer": {
            scenario: round(bench.paired_ratio(scenario, "ceiling", "batch_writer"), 2) for scenario in report.SCENARIOS
        },
        "memory": {
            "users": bench.users,
            "peak_rss_mb": round(bench.median("local", "project_rss"), 1),
            "users_10x": memory_users,
            "peak_rss_mb_10x": round(memory_run.peak_rss_mb, 1),
            "users_per_second_10x": round(memory_users / memory_run.processing_seconds, 1),
        },
        "domain_us_per_user": round(domain["prepare"], 2),
        "encode_us_per_user": round(domain["encode"], 2),
        "domain_plus_encode_us_per_user": round(domain["prepare_plus_encode"], 2),
        "mapping_20_columns": {
            "columns": domain_bench.wide_mapping.COLUMNS,
            "users": domain["users"],
            "us_per_user": round(domain["mapping_20_columns"], 2),
            "target_us_per_user": domain_bench.WIDE_TARGET_US,
        },
        "statistics": {"users": memory_run.users, "milliseconds": round(bench.stats_ms, 1), "answer": bench.stats},
        "ceiling_concurrency": bench.best_concurrency,
        "project_wall_users_per_second": {
            scenario: round(bench.median(scenario, "project_wall"), 1) for scenario in report.SCENARIOS
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
    _fake_aws()
    users = _setting("BENCH_USERS", 20_000)
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
        postgres = _timed("PostgreSQL started", lambda: EmbeddedPostgres(Path(data_dir)).start())
        dynamodb = _timed("moto started", lambda: EmbeddedDynamoDb(serial=serial).start())
        try:
            _timed(f"seeded {users:,} users", lambda: data.seed_source(postgres.dsn, SOURCE_TABLE, users))
            _timed(f"seeded {memory_users:,} users", lambda: data.seed_source(postgres.dsn, MEMORY_TABLE, memory_users))
            with latency_proxy(dynamodb.port, DELAY_MS) as proxy_url:
                endpoints = {"local": dynamodb.endpoint_url, "latency_5ms": proxy_url}
                bench = Bench(postgres.dsn, endpoints, users, naive_users, concurrency)
                gc.collect()
                gc.freeze()  # the ready items stay alive all along: keep them out of every collection
                for scenario in report.SCENARIOS:
                    bench.sweep_ceiling(scenario)
                # The memory run before the rounds: its length decides how many rounds fit in the budget.
                _log(f"memory: the project migrating {memory_users:,} users (local)")
                memory_run = bench.run_project("local", MEMORY_TABLE, memory_users, time_stats=True)
                _log(
                    f"memory: {memory_users:,} users in {memory_run.processing_seconds:.1f} s "
                    f"({memory_users / memory_run.processing_seconds:,.0f} users/s), "
                    f"peak RSS {memory_run.peak_rss_mb:.1f} MB; statistics then {bench.stats_ms:.1f} ms: {bench.stats}"
                )
                if bench.stats.get("total_dynamo_users") != memory_users:
                    raise RuntimeError(f"statistics after the memory run are wrong: {bench.stats}")
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
        finally:
            dynamodb.stop()
            postgres.stop()

    setup = {
        "users": users,
        "repeats": rounds,
        "naive_users": naive_users,
        "delay_ms": DELAY_MS,
        "project_concurrency": {scenario: bench.concurrency_of(scenario) for scenario in report.SCENARIOS},
        "project_pages_in_flight": DEFAULT_PAGES_IN_FLIGHT,
        "ceiling_sweep": list(CEILING_SWEEP),
        "ceiling_sweep_users": min(SWEEP_USERS, users),
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
    report.write_json(results, RESULTS / "latest.json")
    (RESULTS / "latest.md").write_text(report.markdown(results))
    report.chart(results, RESULTS / "latest.png")
    _log(f"wrote {RESULTS / 'latest.json'}, latest.md and latest.png")
    print((RESULTS / "latest.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
