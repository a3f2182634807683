"""The offline `migrate --all` on DynamoDB Local, paired with the bare BatchWriteItem client, round
after round: users/s, client CPU µs per user, and the requests in flight over the run (how long
DynamoDB Local sits idle while the project works between its steps).

    python -m bench.offline_timeline [NAME=ENV,ENV ...]   (BENCH_LOCAL_USERS, BENCH_ROUNDS)

Each argument is a contender: a name and the environment it runs with (`seg16=SEGMENTS_IN_FLIGHT=16`;
`base=PYTHONPATH=/some/checkout` runs other code). Per round: the ceiling (BatchWriteItem, 8 in
flight), then each contender into an empty table (`bench.timeline_cli`: each request's start and
end, in the child). DynamoDB Local's own CPU µs per user is read around the ceiling and each run
(its process's /proc stat). Printed per run: users/s over the run's own processing time and over `main`
(set-up included), µs CPU/user (from `main`), seconds before the first request and after the last,
the share of the run with no request in flight, and the mean requests in flight while any is.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench import ceilings
from bench.local_servers import seeded_servers
from bench.project import ROOT, _environment
from bench.run import Tables, ready_items
from bench.uuid_versus_integer import cpu_seconds

SOURCE_TABLE = "bench_offline_timeline"


def in_flight(spans: list[list[Any]], end: float) -> dict[str, float]:
    """Idle share and mean requests in flight, from the first request to the last answer."""
    events = sorted([(s, 1) for _, s, _ in spans] + [(e, -1) for _, _, e in spans])
    first, last = events[0][0], events[-1][0]
    busy = weighted = 0.0
    depth, at = 0, first
    for time, step in events:
        if depth:
            busy += time - at
            weighted += depth * (time - at)
        depth, at = depth + step, time
    writes = [s for s in spans if s[0] == "BatchWriteItem"]
    return {
        "before_first": first,
        "after_last": end - last,
        "idle_share": 1 - busy / (last - first),
        "mean_in_flight": weighted / busy if busy else 0.0,
        "requests": len(spans),
        "writes": len(writes),
        "write_seconds": sum(e - s for _, s, e in writes),
    }


def run_offline(
    dsn: str, endpoint: str, server: int, tables: Tables, extra: dict[str, str], users: int
) -> dict[str, Any]:
    table, state = tables.create("users"), tables.create("state", key="state_id", key_type="S")
    try:
        environment = {**_environment(dsn, SOURCE_TABLE, endpoint, table, state), "OFFLINE_WRITES": "true"}
        environment["DYNAMODB_CONCURRENCY"] = "16"
        with tempfile.TemporaryDirectory(prefix="bench-timeline-") as folder:
            files = {name: Path(folder) / name for name in ("rss", "cpu", "timeline")}
            environment.update(
                BENCH_PEAK_RSS_FILE=str(files["rss"]),
                BENCH_CPU_FILE=str(files["cpu"]),
                BENCH_TIMELINE_FILE=str(files["timeline"]),
                **extra,
            )
            server_cpu = cpu_seconds(server)
            done = subprocess.run(
                [sys.executable, "-m", "bench.timeline_cli", "migrate", "--all", "--json"],
                cwd=ROOT,
                env=environment,
                capture_output=True,
                text=True,
                check=False,
            )
            server_cpu = cpu_seconds(server) - server_cpu
            if done.returncode:
                raise RuntimeError(done.stderr[-3000:])
            summary = json.loads(done.stdout.strip().splitlines()[-1])
            timeline = json.loads(files["timeline"].read_text())
            cpu, rss = float(files["cpu"].read_text()), int(files["rss"].read_text()) / 1024
        held = tables.count(table)
    finally:
        tables.drop(table)
        tables.drop(state)
    if summary["migrated_count"] != users or held != users:
        raise RuntimeError(f"migrated {summary['migrated_count']}, {held} items of {users}")
    seconds = summary["processing_time_ms"] / 1000
    return {
        "users_per_s": users / seconds,
        "users_per_s_main": users / timeline["end"],
        "cpu_us": cpu / users * 1e6,
        "server_cpu_us": server_cpu / users * 1e6,
        "rss_mb": rss,
        **in_flight(timeline["spans"], timeline["end"]),
    }


def line(run: dict[str, Any], ceiling: ceilings.Measured) -> str:
    ratio = run["users_per_s"] / ceiling.users_per_second
    return (
        f"{run['users_per_s']:6,.0f}/s ({ratio:.3f}) main {run['users_per_s_main']:6,.0f}/s "
        f"{run['cpu_us']:4.0f} µs/user server {run['server_cpu_us']:4.0f} µs/user "
        f"rss {run['rss_mb']:.0f} MB; first req {run['before_first']:.2f}s after last {run['after_last']:.2f}s "
        f"idle {run['idle_share']:.1%} in flight {run['mean_in_flight']:.1f}; {run['requests']} req, "
        f"writes {run['write_seconds']:.1f} req-s"
    )


def main(argv: list[str]) -> int:
    users = int(os.environ.get("BENCH_LOCAL_USERS") or 10_000)
    rounds = int(os.environ.get("BENCH_ROUNDS") or 3)
    contenders = {}
    for argument in argv or ["default="]:
        name, _, settings = argument.partition("=")
        contenders[name] = dict(s.split("=", 1) for s in settings.split(",") if s)
    with seeded_servers(SOURCE_TABLE, users) as (dsn, endpoint, server):
        tables = Tables(endpoint)
        items = ready_items(users)
        for _ in range(2):  # warm-up (the JVM's JIT), untimed
            with tables.fresh("warm", min(users, 3000)) as table:
                ceilings.batch_write(endpoint, table, items[:3000], 8)
            run_offline(dsn, endpoint, server, tables, {}, users)
        for number in range(rounds):
            with tables.fresh("ceiling", users) as table:
                server_cpu = cpu_seconds(server)
                ceiling = ceilings.batch_write(endpoint, table, items, 8)
                server_cpu = cpu_seconds(server) - server_cpu
            print(
                f"round {number + 1} load {os.getloadavg()[0]:.1f} ceiling {ceiling.users_per_second:,.0f}/s "
                f"{ceiling.cpu_us_per_user:.0f} µs/user server {server_cpu / users * 1e6:.0f} µs/user",
                flush=True,
            )
            for name, extra in contenders.items():
                run = run_offline(dsn, endpoint, server, tables, extra, users)
                print(f"  {name:<10} {line(run, ceiling)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
