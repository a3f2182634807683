"""The MigrationState contract, for every adapter in tests/contract/conftest.py."""

from __future__ import annotations

import asyncio

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
