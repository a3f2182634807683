"""The offline mode's worker migrates several segments side by side (`SEGMENTS_IN_FLIGHT`, 4 by
default offline), on AWS's DynamoDB Local and PostgreSQL: killed with SIGKILL while it holds
several segments, then run again, the run ends with each valid user written once (no item that
existed when the second run checked is written again, whoever wrote it), the counters exact, and
the items an application wrote before the run untouched."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlparse

import pytest

from tests.factories import valid_user
from tests.faults.fault_proxy import FaultProxy
from tests.real_adapters import fresh_environment, insert_users, run_leases
from user_migration.adapters.dynamodb.client import dynamodb_client
from user_migration.adapters.dynamodb.state import DynamoDbMigrationState
from user_migration.adapters.dynamodb.target import DynamoDbUserTarget
from user_migration.domain.migrate.request import MAX_USER_ID

USERS = 1_200  # 6 segments of 200 users (SEGMENT_MIN_USERS)
BATCH = 20  # 10 pages a segment
INVALID = {17: {"email": "nope"}, 600: {"status": "archived"}}
# Written by an application before the run: the offline mode finds them stored and leaves them.
APPLICATION_ITEMS = {5: "app-5@example.com", 534: "app-534@example.com", 1_199: "app-1199@example.com"}
# Short leases: the killed worker's segments and holds pass on within seconds.
LEASES = {"SEGMENT_LEASE_SECONDS": "4", "HOLD_LEASE_SECONDS": "6", "SEGMENT_MIN_USERS": "200"}


@pytest.fixture
async def local(dynamodb_local_endpoint: str) -> AsyncIterator[Any]:
    async with dynamodb_client(endpoint_url=dynamodb_local_endpoint, region_name="us-east-1") as client:
        yield client


@pytest.fixture
async def env(postgres_dsn: str, dynamodb_local_endpoint: str, local: Any) -> dict[str, str]:
    environment = await fresh_environment(postgres_dsn, dynamodb_local_endpoint, local)
    return {**environment, **LEASES, "OFFLINE_WRITES": "true"}


async def start_migrate(env: dict[str, str]) -> asyncio.subprocess.Process:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "DYNAMODB_", "SOURCE_"))}
    return await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "user_migration.entrypoints.cli", "migrate", "--all", "--batch-size", str(BATCH), "--json"),
        env={**base, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def items_and_counter(client: Any, env: dict[str, str]) -> tuple[dict[int, dict[str, Any]], int]:
    target = DynamoDbUserTarget(client, env["DYNAMODB_TABLE"])
    ids = [i async for page in target.scan_user_ids(0, MAX_USER_ID) for i in page]
    return await target.read_items(ids), await counter(client, env)  # type: ignore[return-value]


async def counter(client: Any, env: dict[str, str]) -> int:
    return (await DynamoDbMigrationState(client, env["DYNAMODB_STATE_TABLE"]).read_progress()).migrated_users


async def held_segments(client: Any, env: dict[str, str]) -> int:
    """Segments of the run leased and not done yet."""
    leases = await run_leases(client, env["DYNAMODB_STATE_TABLE"])
    return sum(lease.owner is not None and not lease.done for lease in leases)


async def test_an_offline_run_killed_with_several_segments_in_flight_resumes_to_each_user_once(
    env: dict[str, str], local: Any
):
    insert_users(
        env["DATABASE_URL"], env["SOURCE_TABLE"], [valid_user(i, **INVALID.get(i, {})) for i in range(1, USERS + 1)]
    )
    for user_id, email in APPLICATION_ITEMS.items():
        item = {"user_id": {"N": str(user_id)}, "email": {"S": email}}
        await local.put_item(TableName=env["DYNAMODB_TABLE"], Item=item)

    url = urlparse(env["DYNAMODB_ENDPOINT_URL"])
    with FaultProxy((url.hostname or "127.0.0.1", url.port or 80), http=True) as proxy:
        proxy.slow("BatchWriteItem", seconds=0.3)  # a run long enough to be killed in the middle
        doomed = await start_migrate({**env, "DYNAMODB_ENDPOINT_URL": proxy.url})
        most_held = 0
        async with asyncio.timeout(120):
            while most_held < 2 or await counter(local, env) < USERS // 4:
                assert doomed.returncode is None, "the run ended before it was killed"
                most_held = max(most_held, await held_segments(local, env))
                await asyncio.sleep(0.05)
        doomed.kill()
        await doomed.wait()
    assert most_held >= 2  # several segments were in flight in the one process
    at_kill, _ = await items_and_counter(local, env)
    assert len(at_kill) < USERS - len(INVALID)  # killed in the middle

    resumed = await start_migrate(env)
    async with asyncio.timeout(240):
        out, err = await resumed.communicate()
    assert resumed.returncode in (0, 1), err.decode()[-2000:]  # 1: an invalid user it read failed
    summary = json.loads(out.decode().strip().splitlines()[-1])
    assert set(summary["failed_user_ids"]) <= set(INVALID)  # those of pages the killed run finished are not read again
    assert summary["unfinished_segments"] == 0

    items, migrated = await items_and_counter(local, env)
    valid = set(range(1, USERS + 1)) - set(INVALID)
    assert set(items) == valid
    for user_id, email in APPLICATION_ITEMS.items():  # an application's items, never overwritten
        assert items[user_id] == {"user_id": {"N": str(user_id)}, "email": {"S": email}}
    # What was stored when the second run began was not written again (the same migrated_at).
    assert all(items[user_id] == item for user_id, item in at_kill.items())
    # Every user written by the migration counted once: the killed run's unsettled writes by
    # whoever took its holds over, the others where they were settled.
    assert migrated == len(valid) - len(APPLICATION_ITEMS)
    # Skipped are only items found stored: the application's, and those the killed run wrote in
    # pages it had not checkpointed (read again, found stored, not written again).
    assert summary["skipped_count"] <= len(at_kill)
