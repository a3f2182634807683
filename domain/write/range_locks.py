"""Serializes work on overlapping user-id ranges within one process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from user_migration.domain.keys import UserId


class UserRangeLocks:
    """Lets one holder at a time work on any given user id.

    Two batches whose id ranges overlap run one after the other, so the second one's existence
    check sees what the first one wrote; batches on disjoint ranges run side by side.
    """

    def __init__(self) -> None:
        self._held: list[tuple[UserId, UserId]] = []
        self._changed = asyncio.Condition()

    def _overlaps(self, lowest: UserId, highest: UserId) -> bool:
        # Every id of a process is of the key's one kind: ints with ints, strs with strs.
        return any(
            lowest <= held_high and held_low <= highest  # type: ignore[operator]
            for held_low, held_high in self._held
        )

    @asynccontextmanager
    async def hold(self, lowest: UserId, highest: UserId) -> AsyncIterator[None]:
        """Wait until no holder works on [lowest, highest], then hold that range."""
        span = (lowest, highest)
        async with self._changed:
            await self._changed.wait_for(lambda: not self._overlaps(lowest, highest))
            self._held.append(span)
        try:
            yield
        finally:
            async with self._changed:
                self._held.remove(span)
                self._changed.notify_all()
