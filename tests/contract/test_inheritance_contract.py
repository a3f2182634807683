"""What a hold inherits, for every MigrationState adapter (tests/contract/conftest.py): only the ids
of its own range, so that an intent left unsettled is counted once, by a holder that no other
holder can overtake, whatever the holds of other pages do meanwhile."""

from __future__ import annotations

import contextlib

from tests.factories import prepared_user
from user_migration.adapters.memory.harness import InMemoryUserTarget
from user_migration.domain.write.ledger import Attempt, WriteLedger, no_fence


class PageFailed(Exception):
    """A page's step failed before it settled (a timeout, a lease found lost)."""


async def write(ledger: WriteLedger, ids: list[int]) -> None:
    async with ledger.hold(ids) as step:
        await step.write_new([prepared_user(i) for i in ids], Attempt(ids, {}), no_fence)


async def test_a_page_that_fails_after_the_next_page_was_written_leaves_nothing_to_count_again(make_state):
    # A worker took the segment over from one whose page 11..20 intended its users and stopped (its
    # lease ran out before it wrote): 11..20 are left unsettled. The new worker's pages 1..10 (read
    # again: its checkpoint came too late) and 11..20 are in flight side by side; 1..10 takes its hold
    # first, then 11..20 is held, written and counted, then 1..10 fails before it settles.
    state = await make_state()
    target = InMemoryUserTarget()
    ledger = WriteLedger(target, state)
    with contextlib.suppress(PageFailed):
        async with state.hold_users(11, 20) as hold:
            await hold.intend(range(11, 21))
            raise PageFailed
    with contextlib.suppress(PageFailed):
        async with ledger.hold(list(range(1, 11))):
            await write(ledger, list(range(11, 21)))
            raise PageFailed
    await write(ledger, list(range(21, 31)))  # the next page, anywhere in the segment
    progress = await state.read_progress()
    assert (progress.migrated_users, len(target.items)) == (20, 20)


async def test_a_hold_inherits_only_the_unsettled_ids_of_its_range(make_state):
    state = await make_state()
    with contextlib.suppress(PageFailed):
        async with state.hold_users(1, 20) as hold:
            await hold.intend([4, 15])
            raise PageFailed
    async with state.hold_users(10, 20) as hold:
        assert hold.inherited == frozenset({15})
        await hold.settle([15])
    async with state.hold_users(11, 30) as hold:  # 4 is not this range's either
        assert hold.inherited == frozenset()
        await hold.settle([])
    async with state.hold_users(1, 5) as hold:
        assert hold.inherited == frozenset({4})
        await hold.settle([4])
    assert (await state.read_progress()).migrated_users == 2


async def test_a_hold_inherits_only_the_unsettled_removals_of_its_range(make_state):
    state = await make_state()
    await write(WriteLedger(InMemoryUserTarget(), state), [2, 8])
    with contextlib.suppress(PageFailed):
        async with state.hold_users(1, 10) as hold:
            await hold.intend_removal([2, 8])
            raise PageFailed
    async with state.hold_users(6, 10) as hold:
        assert (hold.inherited_removals, hold.inherited) == (frozenset({8}), frozenset())
        await hold.settle([], removed=[8])
    async with state.hold_users(1, 5) as hold:
        assert hold.inherited_removals == frozenset({2})
        await hold.settle([], removed=[2])
    assert (await state.read_progress()).migrated_users == 0
