"""How many requests the DynamoDB target keeps in flight, as a proxy in front of moto sees them."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from tests.factories import prepared_user
from tests.faults.conftest import World, both_write_modes
from user_migration.adapters.dynamodb.client import dynamodb_client
from user_migration.adapters.dynamodb.target import DynamoDbUserTarget
from user_migration.domain.model import WriteRule

MIGRATED_AT = datetime(2026, 12, 1, tzinfo=UTC)


@both_write_modes
async def test_reads_and_writes_each_keep_to_the_bound_and_reads_do_not_queue_behind_writes(world: World):
    """Offline: 8 BatchWriteItems of 25 (`write_users`); live: 16 conditional PutItems
    (`write_users_if`, fewer users: one request each, at 0.2 s a request two at a time)."""
    proxy = world.dynamodb_proxy
    operation = world.write_operation
    proxy.slow(operation, seconds=0.2)
    count = 200 if world.offline else 16
    items = [prepared_user(i, MIGRATED_AT) for i in range(1, count + 1)]
    async with asyncio.timeout(30), dynamodb_client(proxy.url, "us-east-1") as client:
        target = DynamoDbUserTarget(client, world.users_table, concurrency=2)
        write = target.write_users(items) if world.offline else target.write_users_if(items, WriteRule.ABSENT)
        writing = asyncio.create_task(write)
        await asyncio.sleep(0.05)  # the writes start: two go out, the others wait for a slot
        existing = await target.existing_user_ids(range(1001, 1301))  # 3 checks of 100 keys
        outcome = await writing
    assert existing == set()
    assert sorted(outcome.written) == list(range(1, count + 1))
    assert proxy.most_in_flight[operation] == 2
    assert proxy.most_in_flight["BatchGetItem"] <= 2
    # The checks went out while writes still waited for their turn, not after all of them.
    arrivals = proxy.arrivals
    last_write = len(arrivals) - 1 - arrivals[::-1].index(operation)
    assert arrivals.count("BatchGetItem") == 3
    assert arrivals.index("BatchGetItem") < last_write
