"""Several `migrate --all --workers 1` processes (as on several hosts) share one run over leased
segments, against the real servers: each user is read about once, counted exactly once, and a
worker that dies or stalls leaves nothing uncounted and writes nothing after its lease."""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
from typing import Any
from urllib.parse import urlparse

import pytest

from tests.cli_runner import cli_beside
from tests.factories import valid_user
from tests.faults.fault_proxy import FaultProxy
from tests.real_adapters import fresh_environment, insert_users
from user_migration.adapters.dynamodb.client import dynamodb_client
from user_migration.adapters.dynamodb.leases import DynamoDbSegmentLeases
from user_migration.adapters.dynamodb.plan import PlanStore
from user_migration.adapters.dynamodb.state import DynamoDbMigrationState
from user_migration.adapters.dynamodb.target import DynamoDbUserTarget
from user_migration.domain.migrate.request import MAX_USER_ID

# Short leases, so that a dead worker's segments and holds pass on within seconds (a page's
# writes take well under the holds' lease, even with 8 workers on one moto server).
SEGMENT_LEASE = 4.0
# Segments of 100 users (`SEGMENT_MIN_USERS`), so that 400 users make the plan's 4 segments of the
# default floor's 2,000, in pages of 25: every step of the protocol, at a fifth of the requests.
SEGMENT_USERS = 100
LEASES = {
    "SEGMENT_LEASE_SECONDS": str(SEGMENT_LEASE),
    "HOLD_LEASE_SECONDS": "10",
    "SEGMENT_MIN_USERS": str(SEGMENT_USERS),
}
BATCH = 25
USERS = 4 * SEGMENT_USERS
INVALID = {17: {"email": "nope"}, 350: {"status": "archived"}}


@pytest.fixture
async def env(postgres_dsn, dynamodb_endpoint, dynamodb) -> dict[str, str]:
    return {**await fresh_environment(postgres_dsn, dynamodb_endpoint, dynamodb), **LEASES}


def users(ids: list[int]) -> list:
    return [valid_user(i, **INVALID.get(i, {})) for i in ids]


def worker_arguments(*extra: str) -> tuple[str, ...]:
    return ("migrate", "--all", "--workers", "1", "--batch-size", str(BATCH), "--json", *extra)


async def start_worker(env: dict[str, str], *extra: str) -> asyncio.subprocess.Process:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "DYNAMODB_", "SOURCE_"))}
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "user_migration.entrypoints.cli",
        *worker_arguments(*extra),
        env={**base, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def summary_of(process: asyncio.subprocess.Process) -> dict[str, Any]:
    async with asyncio.timeout(240):
        out, err = await process.communicate()
    assert process.returncode in (0, 1), err.decode()[-2000:]
    summary: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return summary


async def summary_here(env: dict[str, str], *extra: str) -> dict[str, Any]:
    """The summary of a worker run in the test process (`tests.cli_runner`), which spares a process's
    start: for a worker whose process is not the point, the only one in this process (a pass leases
    under an owner id of its own, not the process's)."""
    result = await cli_beside(env, *worker_arguments(*extra))
    assert result.returncode in (0, 1), result.stderr[-2000:]
    summary: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return summary


# The tests' own reads of what was stored wait longer than a worker would: moto answers one request
# at a time, and on a loaded machine the workers' last requests may still be queued before them.
READ_TIMEOUT_SECONDS = 60.0


async def stored(env: dict[str, str]) -> tuple[dict[int, dict[str, Any]], int]:
    """(the items of the users table by id, the migrated_users counter)."""
    async with dynamodb_client(
        env["DYNAMODB_ENDPOINT_URL"], "us-east-1", timeout_seconds=READ_TIMEOUT_SECONDS
    ) as client:
        target = DynamoDbUserTarget(client, env["DYNAMODB_TABLE"])
        ids = [i async for page in target.scan_user_ids(0, MAX_USER_ID) for i in page]
        items = await target.read_items(ids)
        progress = await DynamoDbMigrationState(client, env["DYNAMODB_STATE_TABLE"]).read_progress()
    return items, progress.migrated_users


async def counter(env: dict[str, str]) -> int:
    async with dynamodb_client(
        env["DYNAMODB_ENDPOINT_URL"], "us-east-1", timeout_seconds=READ_TIMEOUT_SECONDS
    ) as client:
        return (await DynamoDbMigrationState(client, env["DYNAMODB_STATE_TABLE"]).read_progress()).migrated_users


async def wait_for_counter(env: dict[str, str], at_least: int, process: asyncio.subprocess.Process) -> None:
    async with asyncio.timeout(120):
        while await counter(env) < at_least:
            assert process.returncode is None, "the worker ended before it was interrupted"
            await asyncio.sleep(0.1)


async def assert_exactly(env: dict[str, str], ids: list[int]) -> dict[int, dict[str, Any]]:
    valid = set(ids) - set(INVALID)
    items, migrated = await stored(env)
    assert set(items) == valid
    assert migrated == len(valid)
    return items


def rereads_allowed(summaries: list[dict]) -> int:
    """Users read twice: the pages of a lease taken over after it expired, and for each lease lost,
    the pages its worker had in hand and settled (its own, counted) that the next owner reads again
    (at most the pages in flight, 2)."""
    return 2 * BATCH * (1 + sum(summary["leases_lost"] for summary in summaries))


async def test_four_workers_share_the_run_and_read_each_user_once(env):
    ids = list(range(1, USERS + 1))
    insert_users(env["DATABASE_URL"], env["SOURCE_TABLE"], users(ids))
    processes = [await start_worker(env) for _ in range(4)]
    summaries = [await summary_of(process) for process in processes]
    await assert_exactly(env, ids)
    read = sum(summary["users_read"] for summary in summaries)
    # Each user once, give or take the pages of a lease taken over (none expire here).
    assert len(ids) <= read <= len(ids) + rereads_allowed(summaries), summaries
    # A worker claims what it settled; a page whose checkpoint came too late for its lease may be
    # read again by the segment's next owner and found stored (skipped), never counted twice.
    claimed = sum(summary["migrated_count"] + summary["skipped_count"] for summary in summaries)
    assert len(ids) - len(INVALID) <= claimed <= read - len(INVALID)
    assert sum(summary["migrated_count"] for summary in summaries) == len(ids) - len(INVALID)
    assert sorted(i for summary in summaries for i in summary["failed_user_ids"]) == sorted(INVALID)
    assert sum(summary["segments_done"] for summary in summaries) == 4  # 400 users: 4 segments
    assert all(summary["unfinished_segments"] == 0 for summary in summaries)
    assert sum(summary["segments_done"] > 0 for summary in summaries) >= 2  # the work was shared
    # What each spent of the write budget (unlimited here: counted, never waited for).
    assert sum(summary["write_units_spent"] for summary in summaries) >= len(ids) - len(INVALID)

    again = await summary_here(env)  # the run is finished: nothing to read
    assert (again["users_read"], again["segments_done"]) == (0, 0)
    restarted = await summary_here(env, "--restart")
    assert (restarted["run"], restarted["users_read"], restarted["migrated_count"]) == (2, len(ids), 0)
    assert restarted["skipped_count"] == len(ids) - len(INVALID)
    await assert_exactly(env, ids)


async def test_the_segments_of_a_worker_killed_with_sigkill_are_finished_by_the_others(env):
    ids = list(range(1, USERS + 1))  # 4 segments: the doomed one's, and 3 for the others to start on
    insert_users(env["DATABASE_URL"], env["SOURCE_TABLE"], users(ids))
    doomed = await start_worker(env)
    await wait_for_counter(env, SEGMENT_USERS - 20, doomed)
    survivors = [await start_worker(env) for _ in range(2)]
    doomed.kill()
    await doomed.wait()
    summaries = [await summary_of(process) for process in survivors]
    await assert_exactly(env, ids)
    assert sum(summary["lease_steals"] for summary in summaries) >= 1, summaries  # the dead one's lease
    async with dynamodb_client(env["DYNAMODB_ENDPOINT_URL"], "us-east-1") as client:
        table = env["DYNAMODB_STATE_TABLE"]
        activity = await DynamoDbSegmentLeases(client, table, PlanStore(client, table)).activity()
    assert activity.steals >= 1  # what /metrics shows, from the lease table
    assert activity.takes > sum(summary["lease_takes"] for summary in summaries)  # and the dead one's
    assert all(summary["unfinished_segments"] == 0 for summary in summaries)


async def test_eight_workers_over_sparse_64_bit_ids(env):
    rng = random.Random(64)
    ids = sorted(rng.sample(range(1, 2**63 - 1), USERS))
    insert_users(env["DATABASE_URL"], env["SOURCE_TABLE"], users(ids))
    processes = [await start_worker(env) for _ in range(8)]
    summaries = [await summary_of(process) for process in processes]
    valid = set(ids) - set(INVALID)
    items, migrated = await stored(env)
    assert set(items) == valid  # every valid user stored, and no other
    # Boundaries from the ids themselves: 4 segments of about 100 users, not 4 slices of the id
    # space (which would put every user in one).
    assert sum(summary["segments_done"] for summary in summaries) == 4
    read = sum(summary["users_read"] for summary in summaries)
    assert len(ids) <= read <= len(ids) + rereads_allowed(summaries), summaries
    assert migrated == len(valid)  # each stored user counted once


async def test_a_worker_stalled_past_its_lease_writes_and_counts_nothing_more(env):
    """Stalled: every answer it gets from DynamoDB comes later than its lease lasts (as for a
    process paused by its host; SIGSTOP itself would stall the test's one-request-at-a-time moto
    server with the stopped process's open request)."""
    ids = list(range(1, USERS + 1))  # 4 segments: the stalled one's, and 3 for the other to start on
    insert_users(env["DATABASE_URL"], env["SOURCE_TABLE"], users(ids))
    url = urlparse(env["DYNAMODB_ENDPOINT_URL"])
    with FaultProxy((url.hostname or "127.0.0.1", url.port or 80), http=True) as proxy:
        stale = await start_worker({**env, "DYNAMODB_ENDPOINT_URL": proxy.url})
        await wait_for_counter(env, SEGMENT_USERS // 2, stale)
        proxy.delay(SEGMENT_LEASE + 2)
        other = await summary_here(env)  # the stalled one is the process
        assert other["lease_steals"] >= 1, other
        before = await assert_exactly(env, ids)
        proxy.heal()
        summary = await summary_of(stale)
    after = await assert_exactly(env, ids)
    assert after == before  # not one item written again once its lease had run out
    assert summary["leases_lost"] >= 1, summary
    # Each claims what it wrote (the stalled one its checkpointed pages and the writes it settled
    # before it found its lease lost): between them, every user moved, none twice.
    assert summary["migrated_count"] + other["migrated_count"] == len(ids) - len(INVALID)
