from __future__ import annotations

import asyncio

import pytest

from user_migration.domain.write.writes_in_flight import WritesInFlight


async def test_a_cancelled_caller_lets_the_step_finish_first():
    writes = WritesInFlight()
    finished: list[str] = []

    async def step() -> str:
        await asyncio.sleep(0.05)
        finished.append("step")
        return "done"

    caller = asyncio.create_task(writes.run(step()))
    await asyncio.sleep(0.01)
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert finished == ["step"]  # the cancellation went up only after the step had ended
    assert await writes.wait(within_seconds=0.1)


async def test_shutdown_waits_for_running_steps_within_a_bound():
    writes = WritesInFlight()
    release = asyncio.Event()

    async def step() -> None:
        await release.wait()

    runner = asyncio.create_task(writes.run(step()))
    await asyncio.sleep(0)
    assert not await writes.wait(within_seconds=0.05)
    release.set()
    assert await writes.wait(within_seconds=1)
    await runner
