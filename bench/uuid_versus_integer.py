"""The live-safe `migrate --all` of the same users keyed by integer and by uuid, alternately, round after round.

    python -m bench.uuid_versus_integer [ROUNDS] [local|latency_5ms]

`make bench`'s `project_live` and `project_live_uuid` rows (`Bench.run_project` on `LIVE_TABLE` and
`LIVE_UUID_TABLE`, BENCH_LIVE_USERS users, 3,000 by default), without the rest of the benchmark: one
PostgreSQL, one serial moto, the two runs in turn (their order swapped every round), so that a busy
spell of the machine touches both. Prints each round's users/s and their ratio, and the CPU seconds
the run's own process and moto spent (moto serves one request at a time: on a machine shared with
other work, CPU is steadier than users/s), then the medians. ROUNDS is 6 by default; concurrency is
BENCH_PROJECT_CONCURRENCY, else 16 local and 8 with latency (the conditional sweep's choice here).
"""

from __future__ import annotations

import contextlib
import os
import statistics
import sys
import tempfile
from pathlib import Path

from bench import data
from bench.run import DELAY_MS, LIVE_TABLE, LIVE_UUID_TABLE, Bench, latency_proxy
from user_migration.entrypoints.demo.embedded import EmbeddedDynamoDb, EmbeddedPostgres

_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """The CPU seconds process `pid` has used (user and system)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def main(arguments: list[str]) -> int:
    rounds = int(arguments[0]) if arguments else 6
    scenario = arguments[1] if len(arguments) > 1 else "local"
    users = int(os.environ.get("BENCH_LIVE_USERS") or 3000)
    concurrency = int(os.environ.get("BENCH_PROJECT_CONCURRENCY") or (16 if scenario == "local" else 8))
    data.fake_aws()
    with tempfile.TemporaryDirectory(prefix="bench-pg-") as folder:
        postgres = EmbeddedPostgres(Path(folder)).start()
        dynamodb = EmbeddedDynamoDb(serial=True).start()
        assert dynamodb._process is not None
        moto = dynamodb._process.pid
        try:
            data.seed_source(postgres.dsn, LIVE_TABLE, users)
            data.seed_uuid_copy(postgres.dsn, LIVE_TABLE, LIVE_UUID_TABLE)
            mapping = Path(folder) / "uuid_mapping.toml"
            mapping.write_text(data.UUID_MAPPING.format(table=LIVE_UUID_TABLE))
            delayed = latency_proxy(dynamodb.port, DELAY_MS) if scenario != "local" else None
            with delayed or contextlib.nullcontext(dynamodb.endpoint_url) as endpoint:
                endpoints = {"local": dynamodb.endpoint_url, scenario: endpoint}
                bench = Bench(postgres.dsn, endpoints, users, users, 1, concurrency)
                rates, cpu = [], []
                for number in range(rounds):
                    rate, spent = {}, {}
                    for keyed_by_uuid in (False, True) if number % 2 == 0 else (True, False):
                        before = cpu_seconds(moto)
                        run = bench.run_project(
                            scenario,
                            LIVE_UUID_TABLE if keyed_by_uuid else LIVE_TABLE,
                            users,
                            False,
                            mapping_file=str(mapping) if keyed_by_uuid else None,
                        )
                        rate[keyed_by_uuid] = run.users / run.processing_seconds
                        spent[keyed_by_uuid] = run.cpu_seconds + cpu_seconds(moto) - before
                    rates.append(rate[True] / rate[False])
                    cpu.append(spent[False] / spent[True])
                    print(
                        f"round {number + 1}: integer {rate[False]:.0f} users/s, uuid {rate[True]:.0f} users/s, "
                        f"ratio {rates[-1]:.3f}; CPU (migrate + moto) integer {spent[False]:.2f} s, "
                        f"uuid {spent[True]:.2f} s; load {os.getloadavg()[0]:.1f}",
                        flush=True,
                    )
        finally:
            dynamodb.stop()
            postgres.stop()
    print(
        f"{scenario}, {users:,} users, concurrency {concurrency}, {rounds} rounds: uuid/integer users/s median "
        f"{statistics.median(rates):.3f} (each: {', '.join(f'{ratio:.2f}' for ratio in rates)}); integer/uuid CPU "
        f"median {statistics.median(cpu):.3f}; load average {', '.join(f'{load:.1f}' for load in os.getloadavg())}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
