"""The MigrationState contract, for every adapter in tests/contract/conftest.py."""

from __future__ import annotations

import asyncio
import contextlib

from domain.model import MigrationProgress


async def test_fresh_state(make_state):
    state = await make_state()
    assert await state.read_progress() == MigrationProgress(0, None)


async def test_counts_add_up_and_the_highest_id_only_rises(make_state):
    state = await make_state()
    await state.record_written(3, 10)
    await state.record_written(2, 5)
    assert await state.read_progress() == MigrationProgress(5, 10)
    await state.record_written(1, 11)
    assert await state.read_progress() == MigrationProgress(6, 11)


async def test_concurrent_updates_are_exact(make_state):
    state = await make_state()
    await asyncio.gather(*(state.record_written(1, i) for i in range(1, 31)))
    assert await state.read_progress() == MigrationProgress(30, 30)


async def test_checkpoint_is_kept_beside_the_counters(make_state):
    state = await make_state()
    await state.record_written(4, 9)
    await state.record_checkpoint(10)
    assert await state.read_progress() == MigrationProgress(4, 9, 10)
    await state.record_checkpoint(7)
    assert (await state.read_progress()).resume_from_user_id == 7


async def test_holds_on_the_same_users_exclude_each_other(make_state):
    state = await make_state()
    events: list[str] = []

    async def hold(name: str, user_ids: list[int]) -> None:
        async with state.hold_users(user_ids):
            events.append(f"{name} in")
            await asyncio.sleep(0.05)
            events.append(f"{name} out")

    await asyncio.gather(hold("a", [1, 2, 3]), hold("b", [3, 4]))
    assert events in (["a in", "a out", "b in", "b out"], ["b in", "b out", "a in", "a out"])


async def test_holds_on_far_apart_users_run_side_by_side(make_state):
    state = await make_state()
    events: list[str] = []

    async def hold(name: str, user_ids: list[int]) -> None:
        async with state.hold_users(user_ids):
            events.append(f"{name} in")
            await asyncio.sleep(0.05)
            events.append(f"{name} out")

    await asyncio.gather(hold("a", [1, 2]), hold("b", [2**40, 2**40 + 1]))
    assert events[:2] in (["a in", "b in"], ["b in", "a in"])


async def test_a_hold_is_released_when_the_work_fails(make_state):
    state = await make_state()
    with contextlib.suppress(RuntimeError):
        async with state.hold_users([7]):
            raise RuntimeError("the work failed")
    async with asyncio.timeout(5), state.hold_users([7]):
        pass
