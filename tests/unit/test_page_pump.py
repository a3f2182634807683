"""The page engine on its own, with a step that is not a migration: any per-page work shares it."""

from __future__ import annotations

import asyncio

import pytest

from user_migration.domain.engine.pump import PagePump

PAGES = {0: [1, 2], 2: [3, 4], 4: [5]}


async def read_page(start: int) -> tuple[list[int], int | None]:
    page = PAGES[start]
    return page, (start + 2 if start + 2 in PAGES else None)


async def test_outcomes_arrive_in_page_order_though_pages_overlap():
    started: list[int] = []
    finished: list[tuple[list[int], int]] = []
    slow_first = asyncio.Event()

    async def step(page: list[int]) -> int:
        started.append(page[0])
        if page[0] == 1:
            await slow_first.wait()  # the second page runs meanwhile
        else:
            slow_first.set()
        return sum(page)

    async def finish(page: list[int], outcome: int) -> None:
        finished.append((page, outcome))

    result = await PagePump(read_page, step, finish, in_flight=2).run(0)
    assert started[:2] == [1, 3]
    assert finished == [([1, 2], 3), ([3, 4], 7), ([5], 5)]
    assert not result.stopped_early


async def test_a_stop_finishes_the_pages_in_hand_and_says_so():
    stop = asyncio.Event()
    finished: list[list[int]] = []

    async def step(page: list[int]) -> None:
        stop.set()

    async def finish(page: list[int], outcome: None) -> None:
        finished.append(page)

    result = await PagePump(read_page, step, finish, in_flight=1).run(0, stop)
    assert finished == [[1, 2]]
    assert result.stopped_early


async def test_a_reader_failure_is_raised_after_the_pages_in_hand():
    finished: list[list[int]] = []

    async def failing_read(start: int) -> tuple[list[int], int | None]:
        if start == 2:
            raise ConnectionError("source gone")
        return await read_page(start)

    async def step(page: list[int]) -> None:
        return None

    async def finish(page: list[int], outcome: None) -> None:
        finished.append(page)

    with pytest.raises(ConnectionError, match="source gone"):
        await PagePump(failing_read, step, finish).run(0)
    assert finished == [[1, 2]]
