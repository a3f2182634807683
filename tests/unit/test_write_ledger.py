"""The write ledger on its own: one step's writes intended, fenced, settled once (in-memory ports)."""

from __future__ import annotations

import pytest

from tests.factories import prepared_user
from user_migration.adapters.dynamodb.codec import encode_user
from user_migration.adapters.memory.harness import InMemoryMigrationState, InMemoryUserTarget
from user_migration.domain.convert.rules import Reason
from user_migration.domain.write.ledger import Attempt, WriteLedger, no_fence


class LeaseRanOut(Exception):
    pass


async def test_a_step_writes_the_absent_counts_them_once_and_names_the_stored():
    target, state = InMemoryUserTarget(), InMemoryMigrationState()
    ledger = WriteLedger(target, state)
    users = [prepared_user(i) for i in (1, 2, 3)]
    async with ledger.hold([1, 2, 3]) as step:
        written, stored = await step.write_new(users[:2], Attempt([1, 2], {}), no_fence)
    assert (sorted(written.written), stored) == ([1, 2], set())
    async with ledger.hold([1, 2, 3]) as step:
        written, stored = await step.write_new(
            users, Attempt([1, 2, 3], {9: [Reason("invalid_email", "email is not an address")]}), no_fence
        )
    assert (sorted(written.written), stored) == ([3], {1, 2})
    progress = await state.read_progress()
    assert (progress.migrated_users, sorted(target.items)) == (3, [1, 2, 3])
    assert await state.failing_users() == {9: ("invalid_email",)}


async def test_a_fence_that_refuses_stops_the_step_before_anything_is_written():
    target, state = InMemoryUserTarget(), InMemoryMigrationState()
    ledger = WriteLedger(target, state)

    def fence() -> None:
        raise LeaseRanOut

    with pytest.raises(LeaseRanOut):
        async with ledger.hold([1, 2]) as step:
            await step.write_new([prepared_user(1), prepared_user(2)], Attempt([1, 2], {}), fence)
    assert (target.items, (await state.read_progress()).migrated_users) == ({}, 0)


async def test_a_removal_takes_the_users_off_the_counters():
    target, state = InMemoryUserTarget(), InMemoryMigrationState()
    ledger = WriteLedger(target, state)
    async with ledger.hold([1, 2]) as step:
        await step.write_new([prepared_user(1), prepared_user(2)], Attempt([1, 2], {}), no_fence)
    async with ledger.hold([2]) as step:
        outcome = await step.remove([2])
    assert (list(outcome.deleted), sorted(target.items), (await state.read_progress()).migrated_users) == ([2], [1], 1)


async def test_an_inherited_user_counted_as_landed_is_not_left_unsure_for_the_next_holder():
    # An earlier holder intended user 5 and went away before settling, its write still on its way. This
    # step finds no item, intends 5 and writes it; the earlier write lands first and this one gets no
    # answer (failed, unsure). Before settling the step looks at what it inherited: 5 landed, counted.
    target, state = InMemoryUserTarget(), InMemoryMigrationState()
    state.unsettled.add(5)
    ledger = WriteLedger(target, state)
    users = [prepared_user(i) for i in range(1, 6)]
    write_users_if = target.write_users_if

    async def earlier_write_lands_first(to_write, rule):
        target.items[5] = encode_user(prepared_user(5), target.key_attribute)
        target.refuse[5] = "no answer"
        return await write_users_if(to_write, rule)

    target.write_users_if = earlier_write_lands_first  # type: ignore[method-assign]
    async with ledger.hold([1, 2, 3, 4, 5]) as step:
        written, _ = await step.write_new(users, Attempt([1, 2, 3, 4, 5], {}), no_fence)
    assert (sorted(written.written), list(written.failed)) == ([1, 2, 3, 4], [5])
    assert (await state.read_progress()).migrated_users == 5
    # Counted once: the next holder has nothing of 5 left to look at, and counts it no second time.
    assert state.unsettled == set()
    async with ledger.hold([5]) as step:
        await step.settle_failing({})
    assert (await state.read_progress()).migrated_users == 5
