"""How many users the source holds, as of a moment that is stated with the number.

An exact count of a big table takes a while (a `count(*)` of 10 million rows: most of a
second), so it is kept: taken when the service starts and again `refresh_seconds` after each
count ends (`keep_fresh`), and answered from memory with the moment it was taken. However many
callers ask at once, the source counts once (`count` joins the count in progress). The planner's
estimate is there for a caller who asks for speed, and while no exact count exists yet.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import attrs

from user_migration.domain.errors import MigrationError
from user_migration.ports.user_source import UserSource

DEFAULT_REFRESH_SECONDS = 30.0


def _utc_now() -> datetime:
    return datetime.now(UTC)


class CountMode(enum.Enum):
    """What a caller wants of the source's count."""

    # Exact as of a stated moment: the kept count (an estimate only while there is none yet).
    EXACT = "exact"
    # The planner's estimate, now: answered in constant time, whatever the table's size.
    ESTIMATE = "estimate"


@attrs.frozen
class SourceCount:
    """The source's users as of `as_of`: exactly (a count that saw every row committed before
    `as_of`), or the planner's estimate at that moment (`exact` False)."""

    users: int
    as_of: datetime
    exact: bool


class SourceCounter:
    """The source's count, kept, with the clock, the pause between counts and the source injected.

    Where `keep_fresh` runs (the HTTP service), `current` answers from memory and never waits
    for a count: the last exact one, or the estimate until the first is done. Elsewhere (the
    command line, the library), an exact count is reused while younger than `refresh_seconds`
    and otherwise taken on the spot.
    """

    def __init__(
        self,
        source: UserSource,
        clock: Callable[[], datetime] = _utc_now,
        refresh_seconds: float = DEFAULT_REFRESH_SECONDS,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._source = source
        self._clock = clock
        self._refresh_seconds = refresh_seconds
        self._sleep = sleep
        self._latest: SourceCount | None = None
        self._counting: asyncio.Future[SourceCount] | None = None
        self._kept_fresh = False

    @property
    def latest(self) -> SourceCount | None:
        """The last exact count, or None before the first one finished."""
        return self._latest

    async def current(self, mode: CountMode = CountMode.EXACT) -> SourceCount:
        """The count as `mode` asks for it (see the class)."""
        if mode is CountMode.ESTIMATE:
            return await self.estimate()
        latest = self._latest
        if self._kept_fresh:
            return latest if latest is not None else await self.estimate()
        if latest is not None and self._clock() - latest.as_of < timedelta(seconds=self._refresh_seconds):
            return latest
        return await self.count()

    async def estimate(self) -> SourceCount:
        """The planner's estimate, now."""
        as_of = self._clock()
        return SourceCount(await self._source.estimate_user_count(), as_of, exact=False)

    async def count(self) -> SourceCount:
        """An exact count, now: the one in progress when there is one, so that callers arriving
        together share a single count. A caller that goes away leaves it running for the others."""
        if self._counting is None:
            self._counting = asyncio.ensure_future(self._count())
            self._counting.add_done_callback(self._counted)
        return await asyncio.shield(self._counting)

    async def keep_fresh(self) -> None:
        """Count now and again `refresh_seconds` after each count ends, until cancelled. A count
        that fails (the source down or timing out) leaves the last one standing, stating its
        moment; the next is tried after the pause. Cancelled, it stops the count in progress
        too (only the refresher waits for counts then), so nothing outlives the service's pool."""
        self._kept_fresh = True
        try:
            while True:
                with contextlib.suppress(MigrationError):
                    await self.count()
                await self._sleep(self._refresh_seconds)
        finally:
            self._kept_fresh = False
            counting = self._counting
            if counting is not None:
                counting.cancel()
                await asyncio.wait([counting])

    async def _count(self) -> SourceCount:
        # Read before the query: every row committed before this moment is in the count.
        as_of = self._clock()
        count = SourceCount(await self._source.count_users(), as_of, exact=True)
        self._latest = count
        return count

    def _counted(self, counting: asyncio.Future[SourceCount]) -> None:
        self._counting = None
        if not counting.cancelled():
            counting.exception()  # seen by every caller that waited; retrieved here for those that left
