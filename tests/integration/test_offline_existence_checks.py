"""The offline mode's existence checks, on the real DynamoDB adapters (moto): a worker that found the
users table empty when it started checks no page whose users no hold was ever taken on; an item
stored before the run makes every page checked (and is never overwritten); a hold on a segment's
item by anyone else, an earlier hold of the same users, or an intent left to settle makes the next
page checked again."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

from tests.factories import to_item, valid_user
from tests.real_adapters import create_dynamodb_tables
from user_migration.adapters.dynamodb.holds import ProgressLedger
from user_migration.adapters.dynamodb.leases import DynamoDbSegmentLeases
from user_migration.adapters.dynamodb.plan import PlanStore
from user_migration.adapters.dynamodb.state import DynamoDbMigrationState
from user_migration.adapters.dynamodb.target import DynamoDbUserTarget
from user_migration.adapters.memory.harness import InMemoryUserSource
from user_migration.domain.keys import UserId
from user_migration.domain.migrate.migration import Migration
from user_migration.domain.parallel.leased_pass import LeasedPass
from user_migration.domain.parallel.migrate_worker import SegmentWorker

USERS = 1_200
BATCH = 100
SEGMENTS = 4  # of 300 users: 3 pages each


class CheckedTarget(DynamoDbUserTarget):
    """The target, noting each existence check (the users it asked about)."""

    def __init__(self, client: Any, table: str) -> None:
        super().__init__(client, table)
        self.checks: list[list[UserId]] = []

    async def existing_user_ids(self, user_ids: Collection[UserId]) -> set[UserId]:
        self.checks.append(sorted(user_ids))  # type: ignore[type-var]  # ids of one kind
        return await super().existing_user_ids(user_ids)


async def offline_run(client: Any, users_table: str, state_table: str) -> tuple[CheckedTarget, DynamoDbMigrationState]:
    """One offline worker (a process of its own: adapters of its own) over users 1..USERS."""
    source = InMemoryUserSource([valid_user(i) for i in range(1, USERS + 1)])

    async def propose() -> list[UserId]:
        return await source.segment_boundaries(SEGMENTS)

    plans = PlanStore(client, state_table, propose=propose)
    target = CheckedTarget(client, users_table)
    state = DynamoDbMigrationState(client, state_table, plans=plans)
    migration = Migration(source, target, state, offline=True)
    leased = LeasedPass(DynamoDbSegmentLeases(client, state_table, plans))
    worker = SegmentWorker(source, migration, leased, segments_in_flight=4)
    summary = await asyncio.wait_for(worker.run(batch_size=BATCH), 60)
    assert summary.leases.unfinished_segments == 0
    return target, state


async def test_an_offline_worker_that_found_the_table_empty_checks_no_page(dynamodb):
    users_table, state_table = await create_dynamodb_tables(dynamodb)
    target, state = await offline_run(dynamodb, users_table, state_table)
    assert target.checks == []
    assert await target.count_users() == USERS
    assert (await state.read_progress()).migrated_users == USERS


async def test_an_item_stored_before_the_run_is_kept_and_every_page_is_checked(dynamodb):
    users_table, state_table = await create_dynamodb_tables(dynamodb)
    application = to_item(valid_user(450, email="app-450@example.com"), datetime(2026, 1, 2, tzinfo=UTC))
    await dynamodb.put_item(TableName=users_table, Item=application)
    target, state = await offline_run(dynamodb, users_table, state_table)
    assert len(target.checks) == USERS // BATCH
    assert sorted(i for page in target.checks for i in page) == list(range(1, USERS + 1))
    assert (await target.read_item(450)) == application
    assert (await state.read_progress()).migrated_users == USERS - 1


async def test_a_second_run_on_the_filled_table_checks_every_page(dynamodb):
    users_table, state_table = await create_dynamodb_tables(dynamodb)
    await offline_run(dynamodb, users_table, state_table)
    fresh_state = (await create_dynamodb_tables(dynamodb))[1]  # a new run's state, the same users table
    target, state = await offline_run(dynamodb, users_table, fresh_state)
    assert len(target.checks) == USERS // BATCH
    assert (await state.read_progress()).migrated_users == 0  # every user found stored


async def test_a_hold_is_untouched_only_while_every_hold_on_its_users_item_was_this_process_own(dynamodb):
    _, state_table = await create_dynamodb_tables(dynamodb)
    ours = DynamoDbMigrationState(dynamodb, state_table)
    theirs = DynamoDbMigrationState(dynamodb, state_table)  # another process on the same state

    async def untouched(state: DynamoDbMigrationState, lowest: int, highest: int) -> bool:
        async with state.hold_users(lowest, highest) as hold:
            await hold.intend([lowest])
            await hold.settle([lowest])
            return hold.untouched

    assert await untouched(ours, 1, 10)
    assert await untouched(ours, 11, 20)
    assert not await untouched(ours, 5, 15)  # users this process held before
    assert await untouched(ours, 21, 30)
    assert not await untouched(theirs, 31, 40)  # the item had holds before this process came
    assert not await untouched(ours, 41, 50)  # another process held users of the item meanwhile
    assert not await untouched(ours, 51, 60)  # and ever after


async def test_a_hold_inheriting_an_intent_is_not_untouched(dynamodb):
    _, state_table = await create_dynamodb_tables(dynamodb)
    ours = DynamoDbMigrationState(dynamodb, state_table)
    with contextlib.suppress(RuntimeError):
        async with ours.hold_users(1, 10) as hold:
            assert hold.untouched
            await hold.intend([3])
            raise RuntimeError("the write failed half-way")
    async with ours.hold_users(2, 4) as hold:  # the intent left is this range's to settle
        assert hold.inherited == frozenset({3})
        assert not hold.untouched
        await hold.settle([])


async def test_an_untouched_hold_intends_in_its_take_what_it_was_given_and_hands_it_on(dynamodb):
    _, state_table = await create_dynamodb_tables(dynamodb)
    ours = DynamoDbMigrationState(dynamodb, state_table)
    with contextlib.suppress(RuntimeError):
        async with ours.hold_users(1, 10, intend_if_untouched=[2, 4]) as hold:
            assert (hold.untouched, hold.intended_by_take) == (True, frozenset({2, 4}))
            raise RuntimeError("killed before writing")
    async with ours.hold_users(1, 10, intend_if_untouched=[2, 4]) as hold:  # users held before: touched
        assert (hold.untouched, hold.intended_by_take, hold.inherited) == (False, frozenset(), frozenset({2, 4}))
        await hold.settle([])


async def test_an_offline_worker_on_an_empty_table_sends_no_intent_of_its_own(dynamodb):
    users_table, state_table = await create_dynamodb_tables(dynamodb)
    intents: list[object] = []
    real_intend = ProgressLedger.intend

    async def intend(self: ProgressLedger, *arguments: Any, **keywords: Any) -> None:
        intents.append(arguments)
        await real_intend(self, *arguments, **keywords)

    ProgressLedger.intend = intend  # type: ignore[method-assign]
    try:
        _, state = await offline_run(dynamodb, users_table, state_table)
    finally:
        ProgressLedger.intend = real_intend  # type: ignore[method-assign]
    assert intents == []
    assert (await state.read_progress()).migrated_users == USERS
