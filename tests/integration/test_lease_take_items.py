"""A worker reads the lease table once and takes from that list (the KCL's lease taker), and a
segment's ledger starts from the item its lease take got back instead of reading it: on the real
DynamoDB adapters (moto). A take item made stale by another process is only a stale snapshot: the
first write fails its condition, the item is read again, and the hold is not untouched."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.factories import valid_user
from tests.real_adapters import create_dynamodb_tables
from user_migration.adapters.dynamodb.holds import ProgressLedger
from user_migration.adapters.dynamodb.leases import DynamoDbSegmentLeases
from user_migration.adapters.dynamodb.plan import PlanStore
from user_migration.adapters.dynamodb.segment_items import SegmentItems
from user_migration.adapters.dynamodb.state import DynamoDbMigrationState
from user_migration.adapters.dynamodb.target import DynamoDbUserTarget
from user_migration.adapters.memory.harness import InMemoryUserSource
from user_migration.domain.keys import UserId
from user_migration.domain.migrate.migration import Migration
from user_migration.domain.parallel.leased_pass import LeasedPass
from user_migration.domain.parallel.migrate_worker import SegmentWorker

USERS = 1_200
SEGMENTS = 4


class CountedLeases(DynamoDbSegmentLeases):
    def __init__(self, *arguments: Any, **keywords: Any) -> None:
        super().__init__(*arguments, **keywords)
        self.reads = 0

    async def leases(self):  # type: ignore[no-untyped-def]
        self.reads += 1
        return await super().leases()


def _plans(client: Any, table: str, source: InMemoryUserSource) -> PlanStore:
    async def propose() -> list[UserId]:
        return await source.segment_boundaries(SEGMENTS)

    return PlanStore(client, table, propose=propose)


async def test_one_worker_reads_the_leases_twice_and_no_segment_item_before_its_holds(dynamodb, monkeypatch):
    users_table, state_table = await create_dynamodb_tables(dynamodb)
    source = InMemoryUserSource([valid_user(i) for i in range(1, USERS + 1)])
    plans = _plans(dynamodb, state_table, source)
    target = DynamoDbUserTarget(dynamodb, users_table)
    state = DynamoDbMigrationState(dynamodb, state_table, plans=plans)
    leases = CountedLeases(dynamodb, state_table, plans)
    ledger_reads: list[str] = []
    real_read = ProgressLedger.read

    async def read(self: ProgressLedger) -> tuple[dict[str, Any], int]:
        ledger_reads.append(self._key["state_id"]["S"])
        return await real_read(self)

    monkeypatch.setattr(ProgressLedger, "read", read)
    worker = SegmentWorker(source, Migration(source, target, state, offline=True), LeasedPass(leases), 2, 2, 2)
    summary = await asyncio.wait_for(worker.run(batch_size=100), 60)
    assert (summary.leases.segments_done, summary.leases.lease_takes, summary.leases.unfinished_segments) == (4, 4, 0)
    assert leases.reads == 2  # the list to take from, and the run seen finished
    assert [key for key in ledger_reads if key.startswith("segment#")] == []
    assert await target.count_users() == USERS
    assert (await state.read_progress()).migrated_users == USERS


async def test_a_take_item_made_stale_by_another_process_is_read_again_and_the_hold_is_not_untouched(dynamodb):
    _, state_table = await create_dynamodb_tables(dynamodb)
    source = InMemoryUserSource([valid_user(i) for i in range(1, USERS + 1)])
    plans = _plans(dynamodb, state_table, source)
    ours = DynamoDbMigrationState(dynamodb, state_table, plans=plans)
    leases = DynamoDbSegmentLeases(dynamodb, state_table, plans)
    first = (await leases.leases())[0]
    assert await leases.take(first, "w") is not None  # its item noted: no hold on it yet
    # Another process holds (and settles) users of that segment after the take.
    theirs = DynamoDbMigrationState(dynamodb, state_table, plans=_plans(dynamodb, state_table, source))
    async with theirs.hold_users(1, 10) as hold:
        await hold.intend([1])
        await hold.settle([1])
    async with ours.hold_users(11, 20, intend_if_untouched=[11]) as hold:
        assert (hold.untouched, hold.intended_by_take, hold.inherited) == (False, frozenset(), frozenset())
        await hold.intend([11])
        await hold.settle([11])
    assert (await ours.read_progress()).migrated_users == 2


def test_a_take_item_is_kept_only_until_its_ledger_has_asked_once():
    items = SegmentItems()
    items.note(3, {"version": {"N": "1"}})
    assert items.take(3) == {"version": {"N": "1"}}
    items.note(3, {"version": {"N": "2"}})  # a later take of the same segment: its ledger has started
    assert items.take(3) is None
    assert items.take(4) is None
