from __future__ import annotations

import asyncio
import contextlib

from user_migration.domain.write.range_locks import UserRangeLocks


async def test_overlapping_ranges_wait_for_each_other():
    locks = UserRangeLocks()
    events: list[str] = []

    async def work(name: str, lowest: int, highest: int) -> None:
        async with locks.hold(lowest, highest):
            events.append(f"{name} in")
            await asyncio.sleep(0.02)
            events.append(f"{name} out")

    await asyncio.gather(work("a", 1, 10), work("b", 10, 20))
    assert events == ["a in", "a out", "b in", "b out"]


async def test_disjoint_ranges_run_side_by_side():
    locks = UserRangeLocks()
    events: list[str] = []

    async def work(name: str, lowest: int, highest: int) -> None:
        async with locks.hold(lowest, highest):
            events.append(f"{name} in")
            await asyncio.sleep(0.02)
            events.append(f"{name} out")

    await asyncio.gather(work("a", 1, 9), work("b", 10, 20))
    assert events[:2] == ["a in", "b in"]


async def test_a_failing_holder_releases_its_range():
    locks = UserRangeLocks()

    async def fail() -> None:
        async with locks.hold(1, 5):
            raise RuntimeError("boom")

    with contextlib.suppress(RuntimeError):
        await fail()
    async with asyncio.timeout(1), locks.hold(1, 5):
        pass
