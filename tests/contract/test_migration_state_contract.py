"""The MigrationState contract, for every adapter in tests/contract/conftest.py."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime

from user_migration.domain.model import ChangeCursor, MigrationProgress


async def settle(state, lowest, highest, landed, unsure=()):
    async with state.hold_users(lowest, highest) as hold:
        await hold.intend([*landed, *unsure])
        await hold.settle(landed, unsure)
        return hold.inherited


async def hold_a_while(state, events: list[str], name: str, lowest: int, highest: int) -> None:
    """Hold lowest..highest for 50 ms, noting when the hold starts and ends."""
    async with state.hold_users(lowest, highest) as held:
        events.append(f"{name} in")
        await asyncio.sleep(0.05)
        events.append(f"{name} out")
        await held.settle([])


async def test_fresh_state(make_state):
    state = await make_state()
    assert await state.read_progress() == MigrationProgress(0, None)


async def test_what_settles_is_counted_and_the_highest_id_only_rises(make_state):
    state = await make_state()
    await settle(state, 1, 10, [3, 7, 10])
    await settle(state, 1, 5, [1, 5])
    assert await state.read_progress() == MigrationProgress(5, 10)
    await settle(state, 11, 20, [11])
    assert await state.read_progress() == MigrationProgress(6, 11)
    await settle(state, 30, 40, [])
    assert await state.read_progress() == MigrationProgress(6, 11)


async def test_concurrent_holds_count_exactly(make_state):
    state = await make_state()
    await asyncio.gather(*(settle(state, i, i, [i]) for i in range(1, 31)))
    assert await state.read_progress() == MigrationProgress(30, 30)


async def test_a_hold_left_without_settling_hands_its_intent_to_the_next_holder(make_state):
    state = await make_state()
    with contextlib.suppress(RuntimeError):
        async with state.hold_users(1, 100) as hold:
            assert hold.inherited == frozenset()
            await hold.intend([4, 5, 6])
            raise RuntimeError("the write failed half-way")
    async with asyncio.timeout(5), state.hold_users(5, 10) as hold:  # a holder of some of those ids: its own
        assert hold.inherited == frozenset({5, 6})
        await hold.settle([6])  # of those, 6 turned out to be stored
    async with state.hold_users(1, 100) as hold:  # 4 waited for a holder of its range
        assert hold.inherited == frozenset({4})
        await hold.settle([4])
    async with state.hold_users(1, 100) as hold:
        assert hold.inherited == frozenset()
        await hold.settle([])
    assert await state.read_progress() == MigrationProgress(2, 6)


async def test_unsure_writes_are_handed_on_and_not_counted(make_state):
    state = await make_state()
    await settle(state, 1, 10, [1, 2], unsure=[3])
    assert (await state.read_progress()).migrated_users == 2
    inherited = await settle(state, 1, 10, [3])
    assert inherited == frozenset({3})
    assert await state.read_progress() == MigrationProgress(3, 3)


async def test_checkpoint_is_kept_beside_the_counters(make_state):
    state = await make_state()
    await settle(state, 1, 9, [9, 8, 7, 6])
    await state.record_checkpoint(10)
    assert await state.read_progress() == MigrationProgress(4, 9, 10)
    await state.record_checkpoint(7)
    assert (await state.read_progress()).resume_from_user_id == 7


async def test_holds_on_overlapping_ranges_exclude_each_other(make_state):
    state = await make_state()
    events: list[str] = []

    def hold(name: str, lowest: int, highest: int):
        return hold_a_while(state, events, name, lowest, highest)

    await asyncio.gather(hold("a", 1, 3), hold("b", 3, 4))
    assert events in (["a in", "a out", "b in", "b out"], ["b in", "b out", "a in", "a out"])


async def test_holds_on_disjoint_ranges_run_side_by_side(make_state):
    # Each hold stays until the other is in: both are held at once, or neither ends. (It was "each holds 50 ms,
    # the second comes in before the first goes out", which a loaded machine failed: a's 50 ms were over
    # before b's take was answered.) A hold that waited for the other would wait out its lease, 60 s.
    state = await make_state()
    inside = {"a": asyncio.Event(), "b": asyncio.Event()}

    async def hold(name: str, other: str, lowest: int, highest: int) -> None:
        async with state.hold_users(lowest, highest) as held:
            inside[name].set()
            await inside[other].wait()
            await held.settle([])

    async with asyncio.timeout(20):
        await asyncio.gather(hold("a", "b", 1, 2), hold("b", "a", 2**40, 2**40 + 1))


async def test_a_hold_is_released_when_the_work_fails(make_state):
    state = await make_state()
    with contextlib.suppress(RuntimeError):
        async with state.hold_users(7, 7):
            raise RuntimeError("the work failed")
    async with asyncio.timeout(5), state.hold_users(7, 7) as hold:
        await hold.settle([])


async def test_removals_are_taken_off_the_count_and_a_failed_holder_hands_them_on(make_state):
    state = await make_state()
    await settle(state, 1, 10, [1, 2, 3, 4])
    async with state.hold_users(1, 10) as hold:
        await hold.intend_removal([1, 2])
        await hold.settle([], removed=[1], unsure_removed=[2])
    assert (await state.read_progress()).migrated_users == 3
    with contextlib.suppress(RuntimeError):
        async with state.hold_users(1, 10) as hold:
            assert hold.inherited_removals == frozenset({2})
            await hold.intend_removal([3])
            raise RuntimeError("died between the delete and the settle")
    async with asyncio.timeout(5), state.hold_users(1, 10) as hold:
        assert hold.inherited_removals == frozenset({2, 3})
        await hold.settle([], removed=[2, 3])  # both turned out to be gone
    async with state.hold_users(1, 10) as hold:
        assert hold.inherited_removals == frozenset()
        await hold.settle([])
    assert (await state.read_progress()).migrated_users == 1


async def test_the_change_cursor_is_kept_beside_the_counters(make_state):
    state = await make_state()
    assert (await state.read_progress()).change_cursor is None
    cursor = ChangeCursor("pg-xmin:12345", datetime(2026, 12, 2, 13, 0, 1, 250000, tzinfo=UTC))
    await state.record_change_cursor(cursor, applied=7)
    await settle(state, 1, 10, [5])
    later = ChangeCursor("pg-xmin:12399", datetime(2026, 12, 2, 13, 5, tzinfo=UTC))
    await state.record_change_cursor(later, applied=3)
    progress = await state.read_progress()
    assert progress.change_cursor == later
    assert progress.changes_applied == 10
    assert progress.migrated_users == 1


async def test_failing_users_are_counted_until_an_attempt_succeeds(make_state):
    state = await make_state()
    failed = {2: ["write_failed"], 3: ["missing_email", "invalid_username"], 110: ["write_failed"], 120: ["other"]}
    async with state.hold_users(1, 120) as hold:
        await hold.intend([1, 2, 60, 110])
        await hold.settle([1, 60], failed=failed, succeeded=[1, 60])
    assert (await state.read_progress()).failed_users == 4
    assert await state.failing_users() == {
        2: ("write_failed",),
        3: ("invalid_username", "missing_email"),
        110: ("write_failed",),
        120: ("other",),
    }
    async with state.hold_users(2, 110) as hold:  # a retry: 2 and 110 written now, 3 fails again, otherwise
        await hold.intend([2, 110])
        await hold.settle([2, 110], failed={3: ["invalid_email"]}, succeeded=[2, 110])
    progress = await state.read_progress()
    assert (progress.failed_users, progress.migrated_users, progress.last_migrated_user_id) == (2, 4, 110)
    assert await state.failing_users() == {3: ("invalid_email",), 120: ("other",)}


async def test_a_hold_across_segments_counts_each_user_once_and_hands_on_what_it_left(make_state):
    state = await make_state()
    with contextlib.suppress(RuntimeError):
        async with state.hold_users(40, 140) as hold:
            await hold.intend([45, 55, 105])
            raise RuntimeError("died before settling")
    async with asyncio.timeout(5), state.hold_users(1, 200) as hold:
        assert hold.inherited == frozenset({45, 55, 105})
        await hold.settle([45, 55, 105, 130])
    assert await state.read_progress() == MigrationProgress(4, 130)


async def test_a_sync_pass_is_recorded_once_and_never_an_older_one(make_state):
    state = await make_state()
    cursor = ChangeCursor("pg-xmin:500", datetime(2026, 12, 3, 9, 0, tzinfo=UTC))
    assert await state.record_sync_pass(2, cursor, applied=4)
    # Its other workers, and a worker that crashed after recording it, find it recorded.
    assert not await state.record_sync_pass(2, cursor, applied=4)
    older = ChangeCursor("pg-xmin:400", datetime(2026, 12, 3, 8, 0, tzinfo=UTC))
    assert not await state.record_sync_pass(1, older, applied=9)
    later = ChangeCursor("pg-xmin:650", datetime(2026, 12, 3, 9, 5, tzinfo=UTC))
    assert await state.record_sync_pass(3, later, applied=1)
    progress = await state.read_progress()
    assert (progress.change_cursor, progress.changes_applied) == (later, 5)
