"""Keeping a process's write budget current while it runs.

Two things change under a running budget: the share (other processes start and stop writing the
same table: `domain.budget.shares`, published and read every PUBLISH_SECONDS), and, for a budget that
is a percentage of the table's capacity, the capacity itself (provisioned capacity is changed by hand
or by auto scaling; read again every CAPACITY_SECONDS, as the EMR DynamoDB connector does).

Neither may stop the migration: a state table or DescribeTable that cannot be reached now leaves the
budget as it was (told to `on_unavailable`) and is tried again at the next interval. Until the
capacity was read once, a percentage budget allows only the floor (1 unit/s): what the table can
take is not known yet, and writes to a table that cannot even be described would fail anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
import uuid
from collections.abc import Awaitable, Callable

from user_migration.domain.budget.bucket import Clock, Sleep, TokenBucketBudget
from user_migration.domain.budget.shares import (
    CHECK_SECONDS,
    FIRST_PUBLISH_SECONDS,
    PUBLISH_SECONDS,
    expected_rate,
    is_saturated,
    joining_share,
    live_others,
    next_share,
)
from user_migration.domain.errors import DependencyUnavailable, SetupError
from user_migration.ports.write_budget import BudgetShares, TableCapacity

CAPACITY_SECONDS = 300.0
# How long starting (the first capacity reading and joining) may hold up the first write.
START_SECONDS = 3.0
# What the state table or DescribeTable may raise when they cannot be used now.
_UNAVAILABLE = (DependencyUnavailable, SetupError, TimeoutError)


class BudgetUpkeep:
    """Runs beside the migration (started and stopped with the process's resources)."""

    def __init__(
        self,
        budget: TokenBucketBudget,
        shares: BudgetShares | None = None,
        capacity: TableCapacity | None = None,
        capacity_percent: float | None = None,
        member: str | None = None,
        wall_clock: Clock = time.time,
        sleep: Sleep = asyncio.sleep,
        on_unavailable: Callable[[str, Exception], None] | None = None,
    ) -> None:
        self.budget = budget
        self.member = member or uuid.uuid4().hex
        self._shares = shares if budget.limited else None
        self._capacity = capacity if budget.limited and capacity_percent else None
        self._percent = capacity_percent or 0.0
        self._wall_clock = wall_clock
        self._sleep = sleep
        self._on_unavailable = on_unavailable
        self._capacity_read = False
        self._published_at = -math.inf
        self._published_saturated = True  # what it claims on joining: its part, to spend at once
        self._confirm = False
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self, within_seconds: float = START_SECONDS) -> None:
        """Read the capacity and join the others before the first write (for `within_seconds` at
        most), then keep both current in the background."""
        if self._capacity is not None:
            await self._guarded("reading the table's capacity", self._read_capacity(), within_seconds)
            self._tasks.append(asyncio.create_task(self._keep_capacity()))
        if self._shares is not None:
            await self._guarded("joining the write budget's shares", self._join(self._shares), within_seconds)
            self._tasks.append(asyncio.create_task(self._keep_share(self._shares)))

    async def stop(self, within_seconds: float = START_SECONDS) -> None:
        """Stop the background work and withdraw this process's rate, so the others take its part."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self._shares is not None:
            await self._guarded("leaving the write budget's shares", self._shares.leave(self.member), within_seconds)

    async def _guarded(self, action: str, work: Awaitable[None], within_seconds: float = 2 * PUBLISH_SECONDS) -> None:
        try:
            await asyncio.wait_for(work, within_seconds)
        except _UNAVAILABLE as error:
            if self._on_unavailable is not None:
                self._on_unavailable(action, error)

    async def _read_capacity(self) -> None:
        assert self._capacity is not None
        units = await self._capacity.write_units()
        self.budget.set_budget(units * self._percent / 100)
        self._capacity_read = True

    async def _keep_capacity(self) -> None:
        while True:
            # Until it was read once, try again soon: the budget is at the floor meanwhile.
            await self._sleep(CAPACITY_SECONDS if self._capacity_read else PUBLISH_SECONDS)
            await self._guarded("reading the table's capacity", self._read_capacity(), PUBLISH_SECONDS)

    async def _join(self, shares: BudgetShares) -> None:
        now = self._wall_clock()
        others = live_others(await shares.rates(), self.member, now)
        share = joining_share(self.budget.budget, len(others))
        self.budget.set_share(share)
        # What it is about to spend, so that processes joining right after count it at once.
        await shares.publish(self.member, share, now)
        self._published_at = now
        self.budget.measure()  # the first interval starts now

    async def _rescale_and_publish(self, shares: BudgetShares, lately: float | None = None) -> None:
        """Rescale on what the others published, and publish; `lately` is the rate of the last check, for a
        publication because the process went idle or busy (the interval's average would mix both). After a
        change of its state or a cut of its share, it publishes again at the next check (`_confirm`): news of
        the others crossing its own (one stopping as this one starts, a joiner's claim it will not use for a
        while) is then seen a second later, not five."""
        share_before = self.budget.share
        interval = self.budget.measure()
        my_rate = interval if lately is None else lately
        saturated = is_saturated(my_rate, self.budget.rate)
        now = self._wall_clock()
        others = live_others(await shares.rates(), self.member, now)
        self.budget.set_share(next_share(self.budget.share, self.budget.budget, my_rate, others, saturated))
        await shares.publish(self.member, expected_rate(self.budget.rate, my_rate, saturated), now)
        changed = saturated != self._published_saturated or self.budget.share < share_before
        self._published_at, self._published_saturated = now, saturated
        self._confirm = changed and not self._confirm

    async def _keep_share(self, shares: BudgetShares) -> None:
        await self._sleep(FIRST_PUBLISH_SECONDS)
        await self._guarded("publishing the write budget's share", self._rescale_and_publish(shares))
        while True:
            spent_before = self.budget.snapshot().units_spent
            await self._sleep(CHECK_SECONDS)
            # Its own counters only (no I/O): did it go idle, or busy, since it last published?
            lately = (self.budget.snapshot().units_spent - spent_before) / CHECK_SECONDS
            if is_saturated(lately, self.budget.rate) != self._published_saturated or self._confirm:
                await self._guarded("publishing the write budget's share", self._rescale_and_publish(shares, lately))
            elif self._wall_clock() - self._published_at >= PUBLISH_SECONDS:
                await self._guarded("publishing the write budget's share", self._rescale_and_publish(shares))
