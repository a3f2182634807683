"""A hold on ids that span several segments: one hold in each segment's item, taken in segment
order (so two such holds never wait on each other in a cycle), each settled with its own ids.

Each segment's settle is exact on its own, so a process that dies between two of them leaves
only the unsettled segments' intents, which their next holders inherit as usual.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Collection, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from user_migration.adapters.dynamodb.holds import ProgressLedger, stored_ids
from user_migration.domain.keys import UserId
from user_migration.domain.parallel.segments import SegmentPlan
from user_migration.ports.migration_state import Settlement, UsersHold


class SegmentsHold(UsersHold):
    """The holds of one range, segment by segment, seen as one."""

    def __init__(self, plan: SegmentPlan, holds: Sequence[tuple[int, UsersHold]]) -> None:
        self._plan = plan
        self._holds = dict(holds)
        self.inherited = frozenset().union(*(hold.inherited for hold in self._holds.values()))
        self.inherited_removals = frozenset().union(*(hold.inherited_removals for hold in self._holds.values()))
        self.untouched = all(hold.untouched for hold in self._holds.values())
        self.intended_by_take = frozenset().union(*(hold.intended_by_take for hold in self._holds.values()))

    def _split(self, user_ids: Collection[UserId]) -> dict[int, list[UserId]]:
        return self._plan.group(user_ids)

    # Intents and settles never wait on other holders, so the segments' are sent at once.
    async def intend(self, user_ids: Collection[UserId]) -> None:
        await asyncio.gather(*(self._holds[index].intend(ids) for index, ids in self._split(user_ids).items()))

    async def intend_removal(self, user_ids: Collection[UserId]) -> None:
        split = self._split(user_ids).items()
        await asyncio.gather(*(self._holds[index].intend_removal(ids) for index, ids in split))

    async def apply(self, settlement: Settlement) -> None:
        parts = settlement.split(self._plan.index_of, self._holds.keys())
        outcomes = await asyncio.gather(
            *(hold.apply(parts[index]) for index, hold in self._holds.items()),
            return_exceptions=True,
        )
        # Each settle ran to its end; a segment that could not settle hands its ids on as usual.
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome


@asynccontextmanager
async def hold_across(
    plan: SegmentPlan,
    ledgers: dict[UserId, ProgressLedger],
    lowest: UserId,
    highest: UserId,
    intend_if_untouched: Collection[UserId] = (),
) -> AsyncIterator[UsersHold]:
    """Hold lowest..highest in every segment it touches, until exit (each segment's part of
    `intend_if_untouched` intended by its take where that segment's hold is untouched)."""
    intents = plan.group(intend_if_untouched)
    async with AsyncExitStack() as stack:
        holds: list[tuple[int, UsersHold]] = []
        for segment in plan.covering(lowest, highest):
            low, high = max(lowest, segment.lowest), min(highest, segment.highest)
            hold = await stack.enter_async_context(
                ledgers[segment.index].hold(low, high, intents.get(segment.index, ()))
            )
            holds.append((segment.index, hold))
        if len(holds) == 1:
            yield holds[0][1]
            return
        yield SegmentsHold(plan, holds)


class WithEarlierLeftovers(UsersHold):
    """A hold that also holds the `progress` item, where versions before the segments kept their
    holds: the ids they left unsettled (a process of theirs died) are inherited with this hold's
    own, and settled back there, so they are counted once, like any other inherited ids."""

    def __init__(self, hold: UsersHold, earlier: UsersHold) -> None:
        self._hold = hold
        self._earlier = earlier
        self._theirs = earlier.inherited | earlier.inherited_removals
        self.inherited = hold.inherited | earlier.inherited
        self.inherited_removals = hold.inherited_removals | earlier.inherited_removals

    async def intend(self, user_ids: Collection[UserId]) -> None:
        await self._hold.intend(user_ids)

    async def intend_removal(self, user_ids: Collection[UserId]) -> None:
        await self._hold.intend_removal(user_ids)

    async def apply(self, settlement: Settlement) -> None:
        await self._hold.apply(settlement.only(lambda user_id: user_id not in self._theirs))
        await self._earlier.apply(settlement.only(lambda user_id: user_id in self._theirs))


def has_leftovers(item: dict[str, Any]) -> bool:
    """Whether the `progress` item still has holds or unsettled ids of an earlier version."""
    unsettled = (stored_ids(item.get(name)) for name in ("unsettled", "unsettled_removals"))
    return bool(item.get("holds", {}).get("M")) or any(unsettled)
