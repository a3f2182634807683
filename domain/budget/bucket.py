"""A write budget: the DynamoDB write capacity units per second this process may spend.

Why: a migration that writes as fast as it can takes the table's capacity from the application that
uses it (throttling the application's own writes), or spends more on an on-demand table than the
operator meant to. The budget is a token bucket counted in capacity units, as amazon-dynamodb-tools'
bulk executor keeps one:
- each write request waits for the bucket first (`acquire`, with its estimated units), and what
  DynamoDB says it consumed is what is debited (`spend`): the estimate only holds the place, so that
  requests sent side by side do not all pass on the same units;
- the bucket saves up at most BURST_SECONDS of the rate (an idle process does not burst for long) and
  may go negative (a request that cost more than estimated): callers then wait until it is paid back;
- throttling, or items DynamoDB left unprocessed, halve the rate at once (down to the floor), at most
  once per THROTTLE_HOLD_SECONDS: the requests in flight together when DynamoDB pushed back are one
  signal, not thirty-two. The rate then grows back by RECOVERY_PER_SECOND of the share per second
  without throttling (slowly, not in a burst), never above the share.
The share is this process's part of the budget when several processes write one table
(`domain.budget.shares`); alone it is the whole budget.

A budget of None or 0 is unlimited: nothing waits, the units are only counted.
Time comes from the injected clock (monotonic seconds) and waiting from the injected sleep, so that
a test runs a simulated minute in microseconds.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable

import attrs

from user_migration.ports.write_budget import WriteBudget

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

# DynamoDB charges one write unit per started KB of the item written (or deleted), at least one.
WRITE_UNIT_BYTES = 1024
BURST_SECONDS = 2.0
FLOOR_UNITS_PER_SECOND = 1.0
RECOVERY_PER_SECOND = 0.05
THROTTLE_HOLD_SECONDS = 1.0
# A step of recovery credits at most this much time: a pause in writing is not a clean second of writes.
LONGEST_RECOVERY_STEP = 1.0
# Float sums of rate x elapsed may miss zero by a hair: that is paid back, not a reason to sleep again.
_PAID_BACK = -1e-9


def write_units_for(size_bytes: int) -> int:
    """The write units DynamoDB charges for writing an item of `size_bytes`."""
    return max(1, -(-size_bytes // WRITE_UNIT_BYTES))


@attrs.frozen
class BudgetSnapshot:
    """What the budget did so far and allows now (for /metrics and the progress output)."""

    units_spent: float
    throttled: int
    # The units per second this process may spend now: its share, lowered while DynamoDB throttles.
    # None: unlimited.
    units_per_second: float | None
    # The budget of all the processes writing the table together; None: unlimited.
    budget: float | None


class TokenBucketBudget(WriteBudget):
    """The process's write budget; see the module's docstring."""

    def __init__(
        self, units_per_second: float | None = None, clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep
    ) -> None:
        self._limited = bool(units_per_second)
        self._budget = float(units_per_second or 0.0)
        self._share = self._budget
        self._ceiling: float | None = None  # set while recovering from throttling
        self._clock = clock
        self._sleep = sleep
        now = clock()
        # The bucket starts empty at the first request, not when it was made: a process that reads its first
        # page for a while must not begin with a burst of what it saved up meanwhile.
        self._tokens = 0.0
        self._updated_at: float | None = None
        self._throttled_at = -math.inf
        self._units_spent = 0.0
        self._throttled = 0
        self._measured_units = 0.0
        self._measured_since = now
        self._turn = asyncio.Lock()  # waiters take their turn in order

    @property
    def limited(self) -> bool:
        """Whether requests wait for the budget at all."""
        return self._limited

    @property
    def budget(self) -> float:
        """The budget of all the processes together (0: unlimited)."""
        return self._budget

    @property
    def share(self) -> float:
        """This process's part of the budget, before throttling lowers it."""
        return self._share

    @property
    def rate(self) -> float:
        """The units per second this process may spend now (0: unlimited)."""
        return self._share if self._ceiling is None else min(self._share, self._ceiling)

    def _bounded(self, units_per_second: float) -> float:
        return min(max(units_per_second, FLOOR_UNITS_PER_SECOND), self._budget)

    def _advance(self, now: float) -> None:
        """Fill the bucket for the time since the last look, and let the rate recover."""
        rate = self.rate
        updated_at = now if self._updated_at is None else self._updated_at
        self._tokens = min(self._tokens + max(0.0, now - updated_at) * rate, BURST_SECONDS * rate)
        if self._ceiling is not None and now - self._throttled_at >= THROTTLE_HOLD_SECONDS:
            step = min(now - max(updated_at, self._throttled_at + THROTTLE_HOLD_SECONDS), LONGEST_RECOVERY_STEP)
            self._ceiling += RECOVERY_PER_SECOND * self._share * max(step, 0.0)
            if self._ceiling >= self._share:
                self._ceiling = None
        self._updated_at = now

    async def acquire(self, estimated_units: float) -> None:
        if not self._limited:
            return
        async with self._turn:
            while True:
                self._advance(self._clock())
                if self._tokens >= _PAID_BACK:
                    break
                await self._sleep(-self._tokens / self.rate)
            self._tokens -= estimated_units

    def spend(self, actual_units: float, estimated_units: float) -> None:
        self._units_spent += actual_units
        self._measured_units += actual_units
        if not self._limited:
            return
        self._advance(self._clock())
        self._tokens = min(self._tokens + estimated_units - actual_units, BURST_SECONDS * self.rate)

    def throttled(self) -> None:
        self._throttled += 1
        if not self._limited:
            return
        now = self._clock()
        self._advance(now)
        if now - self._throttled_at < THROTTLE_HOLD_SECONDS:
            return
        self._throttled_at = now
        self._ceiling = max(self.rate / 2, FLOOR_UNITS_PER_SECOND)
        self._tokens = min(self._tokens, BURST_SECONDS * self.rate)

    def set_budget(self, units_per_second: float) -> None:
        """A new budget for all processes (the table's capacity was read again); the share keeps its
        part of it. Ignored by an unlimited budget."""
        if not self._limited:
            return
        self._advance(self._clock())
        part = self._share / self._budget
        self._budget = max(units_per_second, FLOOR_UNITS_PER_SECOND)
        self._share = self._bounded(self._budget * part)

    def set_share(self, units_per_second: float) -> None:
        """This process's new part of the budget (from `domain.budget.shares`)."""
        if not self._limited:
            return
        self._advance(self._clock())
        self._share = self._bounded(units_per_second)

    def measure(self) -> float:
        """The units per second spent since the last call (what this process publishes)."""
        now = self._clock()
        elapsed = now - self._measured_since
        rate = self._measured_units / elapsed if elapsed > 0 else 0.0
        self._measured_units = 0.0
        self._measured_since = now
        return rate

    def snapshot(self) -> BudgetSnapshot:
        """Units spent and throttling met so far, and the rate allowed now."""
        return BudgetSnapshot(
            units_spent=self._units_spent,
            throttled=self._throttled,
            units_per_second=self.rate if self._limited else None,
            budget=self._budget if self._limited else None,
        )
