"""The run's counter against the items on moto, where several processes hold pages of one segment:
what one holder left unsettled is counted once, by the holder of its range, even when the hold of
another page that was taken meanwhile stalls past its lease (the `migrated_users` over-count of one
or two pages with several workers, in tests/integration/test_workers.py under load)."""

from __future__ import annotations

import asyncio
import contextlib

from tests.factories import prepared_user
from tests.real_adapters import create_dynamodb_tables
from user_migration.adapters.dynamodb.holds import ProgressLedger, stored_ids
from user_migration.adapters.dynamodb.plan import segment_key
from user_migration.adapters.dynamodb.state import DynamoDbMigrationState
from user_migration.adapters.dynamodb.target import DynamoDbUserTarget
from user_migration.domain.write.ledger import Attempt, WriteLedger, no_fence

LEASE_SECONDS = 0.5


class LeaseLost(Exception):
    """A worker found its segment lease lost after it intended a page, before writing it."""


async def write_page(state: DynamoDbMigrationState, target: DynamoDbUserTarget, ids: list[int]) -> None:
    async with WriteLedger(target, state).hold(ids) as step:
        await step.write_new([prepared_user(i) for i in ids], Attempt(ids, {}), no_fence)


async def test_a_page_held_by_a_stalled_worker_hands_on_no_intent_of_another_page(dynamodb):
    users_table, state_table = await create_dynamodb_tables(dynamodb)
    target = DynamoDbUserTarget(dynamodb, users_table)

    def worker() -> DynamoDbMigrationState:  # each its own process: its own snapshots of the items
        return DynamoDbMigrationState(dynamodb, state_table, lease_seconds=LEASE_SECONDS)

    # The first worker intended page 11..20 and stopped before writing it: the intent is left unsettled.
    with contextlib.suppress(LeaseLost):
        async with worker().hold_users(11, 20) as hold:
            await hold.intend(range(11, 21))
            raise LeaseLost
    # The next owner of the segment holds page 1..10 again (read again after the takeover) and stalls
    # there, past its hold's lease, without settling.
    stalled = ProgressLedger(dynamodb, state_table, lease_seconds=LEASE_SECONDS, key=segment_key(0))
    await stalled.take(1, 10)
    # Meanwhile page 11..20 is written and counted, by whichever worker holds it.
    await write_page(worker(), target, list(range(11, 21)))
    await asyncio.sleep(LEASE_SECONDS + 0.2)
    # Another worker takes page 1..10 over from the stalled hold.
    await write_page(worker(), target, list(range(1, 11)))

    progress = await worker().read_progress()
    stored = [i async for page in target.scan_user_ids(0, 100) for i in page]
    state = (await dynamodb.get_item(TableName=state_table, Key=segment_key(0), ConsistentRead=True))["Item"]
    left = stored_ids(state.get("unsettled")), state.get("holds", {}).get("M", {})
    assert (progress.migrated_users, sorted(stored), left) == (20, list(range(1, 21)), (set(), {}))
