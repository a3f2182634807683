"""A bounded, ordered pipeline of pages for any per-page step.

The next pages are read while the current ones are worked on: at most `prefetch` pages wait and
`in_flight` are worked on at once, so memory stays flat however large the table is. Outcomes are
handed to `finish` in page order, after the next page has started (so the target is not left
idle during a page's bookkeeping). A failure of the reader is raised only after the pages in hand
are finished; a failing step stops the pages behind it; setting `stop` ends the pump after the
pages in hand.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from typing import Any, Generic, TypeVar, cast

import attrs

Page = TypeVar("Page", bound=Sequence[object])
Outcome = TypeVar("Outcome")
Start = TypeVar("Start")

_END = object()


T = TypeVar("T")


async def next_scanned_page(pages: AsyncIterator[list[T]]) -> tuple[list[T], AsyncIterator[list[T]] | None]:
    """A `read_page` for pages that an async iterator yields (a scan): the next page, and the
    iterator again as where the following one starts (None once it is exhausted)."""
    try:
        return await anext(pages), pages
    except StopAsyncIteration:
        return [], None


@attrs.frozen
class PumpResult:
    """How a pump ended: `stopped_early` when `stop` ended it while the source had more."""

    stopped_early: bool


@attrs.define(eq=False, slots=False)
class PagePump(Generic[Start, Page, Outcome]):
    """Pumps pages from `read_page` through `step` into `finish`; see the module's docstring."""

    # The page at a position, and where the next one starts (None: no more pages).
    _read_page: Callable[[Start], Awaitable[tuple[Page, Start | None]]]
    _step: Callable[[Page], Coroutine[Any, Any, Outcome]]
    _finish: Callable[[Page, Outcome], Awaitable[None]]
    _prefetch: int = 2
    _in_flight: int = 2

    async def run(self, first: Start, stop: asyncio.Event | None = None) -> PumpResult:
        """Pump every page from `first` on."""
        pages: asyncio.Queue[object] = asyncio.Queue(maxsize=self._prefetch)
        reader = asyncio.create_task(self._read_all(first, pages))
        working: deque[tuple[Page, asyncio.Task[Outcome]]] = deque()
        source_failure: BaseException | None = None
        more = True  # the source may have further pages

        def stopping() -> bool:
            return stop is not None and stop.is_set()

        async def start_pages() -> None:
            nonlocal source_failure, more
            while more and len(working) < self._in_flight and not stopping():
                page = await pages.get()
                if page is _END or isinstance(page, BaseException):
                    # The pages in hand are finished (and their bookkeeping done) first.
                    source_failure = page if isinstance(page, BaseException) else None
                    more = False
                    return
                taken = cast(Page, page)
                working.append((taken, asyncio.create_task(self._step(taken))))

        try:
            await start_pages()
            while working:
                page, task = working.popleft()
                outcome = await task
                await start_pages()  # the next page starts before this one's bookkeeping
                await self._finish(page, outcome)
        finally:
            reader.cancel()
            for _, task in working:  # left only after a failure: the pages behind it stop
                task.cancel()
            await asyncio.gather(reader, *(task for _, task in working), return_exceptions=True)
        if source_failure is not None:
            raise source_failure
        return PumpResult(stopped_early=more and stopping())

    async def _read_all(self, first: Start, pages: asyncio.Queue[object]) -> None:
        start: Start | None = first
        try:
            while start is not None:
                page, start = await self._read_page(start)
                await pages.put(page)
        except Exception as error:  # handed to the consumer, which raises it
            await pages.put(error)
            return
        await pages.put(_END)
