"""The write ledger on its own: one step's writes intended, fenced, settled once (in-memory ports)."""

from __future__ import annotations

import pytest

from tests.factories import prepared_user
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
