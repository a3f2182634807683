"""The requests the offline `migrate --all` sends, counted by table, operation and kind: deterministic,
so load does not move them (the users/s are in `bench.dynamodb_local`).

    python -m bench.offline_requests        (BENCH_LOCAL_USERS users, 10,000 by default)

Starts PostgreSQL (pgserver) and DynamoDB Local, seeds the users, and runs `user-migration migrate
--all --offline --json` in a child process through `bench.scale_out`'s counting proxy into empty
tables; prints the requests by (table, operation) and the state table's writes by kind.
"""

from __future__ import annotations

import os
import sys

from bench.local_servers import seeded_servers
from bench.project import run_project
from bench.run import Tables
from bench.scale_out import counting_proxy

SOURCE_TABLE = "bench_offline_requests"


def main() -> int:
    users = int(os.environ.get("BENCH_LOCAL_USERS") or 10_000)
    with seeded_servers(SOURCE_TABLE, users) as (dsn, endpoint, _):
        tables = Tables(endpoint)
        table = tables.create("users")
        state = tables.create("state", key="state_id", key_type="S")
        with counting_proxy(endpoint) as (url, proxy):
            run = run_project(dsn, SOURCE_TABLE, url, table, state, 16, offline=True)
        held = tables.count(table)
    if run.migrated != users or held != users or run.failed:
        print(f"migrated {run.migrated}, {held} items, {run.failed} failed of {users}", file=sys.stderr)
        return 1
    total = 0
    print(f"offline migrate --all, {users:,} users ({run.processing_seconds:.2f} s, not a measure: proxied)")
    print("| table | operation | requests | refused |\n|---|---|---:|---:|")
    for name, label in ((table, "users"), (state, "state")):
        sent, refused = proxy.of_table(name)
        for operation, count in sorted(sent.items()):
            total += count
            print(f"| {label} | {operation} | {count} | {refused.get(operation, 0)} |")
    print(f"| all | | {total} | |")
    kinds, refused_kinds = proxy.kinds_of(state)
    print("\n| state write | requests | refused |\n|---|---:|---:|")
    for kind, count in kinds.items():
        print(f"| {kind} | {count} | {refused_kinds.get(kind, 0)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
