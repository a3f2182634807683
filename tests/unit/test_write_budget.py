"""The write budget (domain.write_budget, domain.budget_shares, domain.budget_upkeep) on simulated time.

Nothing here waits for real: `VirtualTime` is the clock and the sleep of the budget, and moves to
the next sleeper's wake-up as soon as every task is waiting. A simulated minute takes milliseconds.
"""

from __future__ import annotations

import asyncio
import heapq
import random
from collections.abc import Awaitable, Callable

import pytest

from user_migration.adapters.dynamodb.item_size import write_units_of
from user_migration.adapters.memory.budget import InMemoryBudgetShares
from user_migration.domain.budget.bucket import FLOOR_UNITS_PER_SECOND, TokenBucketBudget, write_units_for
from user_migration.domain.budget.shares import (
    LIVE_SECONDS,
    PublishedRate,
    expected_rate,
    is_saturated,
    joining_share,
    live_others,
    next_share,
)
from user_migration.domain.budget.upkeep import BudgetUpkeep


class VirtualTime:
    """A clock and a sleep for the code under test; `run_for` moves time on as tasks fall asleep."""

    def __init__(self) -> None:
        self.now = 1_000.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = 0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + max(seconds, 0.0), self._order, future))
        self._order += 1
        await future

    async def run_for(self, seconds: float) -> None:
        end = self.now + seconds
        while True:
            for _ in range(20):  # let every woken task run until it sleeps again (or waits for a lock)
                await asyncio.sleep(0)
            if not self._sleepers or self._sleepers[0][0] > end:
                self.now = end
                return
            wake, _, future = heapq.heappop(self._sleepers)
            self.now = max(self.now, wake)
            if not future.done():
                future.set_result(None)


def bucket(time: VirtualTime, units_per_second: float | None) -> TokenBucketBudget:
    return TokenBucketBudget(units_per_second, clock=time.clock, sleep=time.sleep)


async def writer(
    budget: TokenBucketBudget, time: VirtualTime, cost: Callable[[], tuple[int, int]], seconds: float = 0.02
) -> None:
    """A caller writing back to back: each request estimated, sent (taking `seconds`), then settled."""
    while True:
        estimated, actual = cost()
        await budget.acquire(estimated)
        await time.sleep(seconds)
        budget.spend(actual, estimated)


def start(*coroutines: Awaitable[None]) -> list[asyncio.Task[None]]:
    return [asyncio.ensure_future(coroutine) for coroutine in coroutines]


async def stop(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def test_write_units_are_charged_per_started_kilobyte():
    assert (write_units_for(0), write_units_for(1024), write_units_for(1025), write_units_for(4000)) == (1, 1, 2, 4)
    assert write_units_of({"user_id": {"N": "1"}, "blob": {"S": "x" * 3000}}) == 3


@pytest.mark.parametrize("units", [None, 0])
async def test_an_unlimited_budget_never_waits_and_only_counts(units):
    async def no_sleep(seconds: float) -> None:
        raise AssertionError("an unlimited budget slept")

    budget = TokenBucketBudget(units, clock=lambda: 0.0, sleep=no_sleep)
    for _ in range(1000):
        await budget.acquire(25)
        budget.spend(30, 25)
    budget.throttled()
    snapshot = budget.snapshot()
    assert (snapshot.units_spent, snapshot.throttled, snapshot.units_per_second, snapshot.budget) == (
        30_000,
        1,
        None,
        None,
    )


async def test_the_rate_over_a_simulated_minute_stays_within_10_percent_of_the_budget():
    time = VirtualTime()
    budget = bucket(time, 100)
    rng = random.Random(7)

    def cost() -> tuple[int, int]:  # mostly as estimated, now and then a unit more (a larger old item)
        estimated = rng.choice((1, 1, 1, 2, 3))
        return estimated, estimated + (1 if rng.random() < 0.1 else 0)

    tasks = start(*(writer(budget, time, cost) for _ in range(8)))
    await time.run_for(60)
    await stop(tasks)
    rate = budget.snapshot().units_spent / 60
    assert 90 <= rate <= 110, rate


async def test_a_negative_balance_makes_the_next_caller_wait_until_it_is_paid_back():
    time = VirtualTime()
    budget = bucket(time, 10)
    await budget.acquire(1)  # an empty bucket lets the first request go at once
    budget.spend(21, 1)  # it cost 20 units more than estimated: the balance is -21
    waited = asyncio.ensure_future(budget.acquire(1))
    await time.run_for(2.0)
    assert not waited.done()  # 21 units at 10 a second take 2.1 s to pay back
    await time.run_for(0.2)
    assert waited.done()


async def test_a_throttle_halves_the_rate_once_and_it_recovers_gradually():
    time = VirtualTime()
    budget = bucket(time, 100)
    tasks = start(writer(budget, time, lambda: (1, 1)))
    await time.run_for(5)
    budget.throttled()
    budget.throttled()  # requests in flight together: one signal, not two halvings
    assert budget.rate == 50
    await time.run_for(1.0)  # the hold: no recovery yet
    assert budget.rate == pytest.approx(50, abs=0.5)
    await time.run_for(2.0)  # +5% of the share per second of clean writes
    assert budget.rate == pytest.approx(60, abs=1)
    await time.run_for(6.0)
    assert budget.rate == pytest.approx(90, abs=1)
    await time.run_for(5.0)
    assert budget.rate == 100  # never above the share
    await stop(tasks)
    assert budget.snapshot().throttled == 2


async def test_repeated_throttles_stop_at_the_floor():
    time = VirtualTime()
    budget = bucket(time, 100)
    for _ in range(12):
        budget.throttled()
        await time.run_for(1.0)
        assert budget.rate >= FLOOR_UNITS_PER_SECOND
    budget.throttled()
    assert budget.rate == FLOOR_UNITS_PER_SECOND


async def test_a_new_budget_keeps_the_share_s_part_of_it():
    time = VirtualTime()
    budget = bucket(time, 100)
    budget.set_share(25)
    budget.set_budget(400)
    assert (budget.budget, budget.share) == (400, 100)


def test_a_process_alone_gets_the_whole_budget_and_one_joining_an_even_part():
    assert next_share(10, 300, 10, [], saturated=True) == 300
    assert joining_share(300, 0) == 300
    assert joining_share(300, 2) == 100


def test_only_live_rates_of_the_others_count():
    now = 10_000.0
    rates = [
        PublishedRate("me", 50, now),
        PublishedRate("fresh", 20, now - 3),
        PublishedRate("gone", 90, now - LIVE_SECONDS - 1),
    ]
    assert live_others(rates, "me", now) == [20]


def test_the_shares_of_three_saturated_processes_sum_to_the_budget():
    budget = 300.0
    # Joined one after another: the first saw nobody, the second one, the third two.
    shares = [joining_share(budget, 0), joining_share(budget, 1), joining_share(budget, 2)]
    for _ in range(5):
        rates = list(shares)  # saturated: each spent its whole share over the interval
        shares = [
            next_share(shares[index], budget, rates[index], rates[:index] + rates[index + 1 :], saturated=True)
            for index in range(3)
        ]
        assert sum(shares) == pytest.approx(budget, rel=0.01)


def test_what_an_idle_process_leaves_flows_to_the_others_and_it_keeps_an_even_part():
    budget = 300.0
    shares = [100.0, 100.0, 100.0]
    for _ in range(6):
        spent = [shares[0], shares[1], 0.0]  # the third writes nothing
        saturated = [is_saturated(rate, share) for rate, share in zip(spent, shares, strict=True)]
        published = [
            expected_rate(share, rate, full) for share, rate, full in zip(shares, spent, saturated, strict=True)
        ]
        shares = [
            next_share(
                shares[index], budget, spent[index], published[:index] + published[index + 1 :], saturated[index]
            )
            for index in range(3)
        ]
    assert shares[0] + shares[1] == pytest.approx(budget, rel=0.02)
    assert shares[2] == 100  # room to start writing, no claim on what the others use


def processes(time: VirtualTime, shares: InMemoryBudgetShares, budget: float, count: int = 3) -> list[BudgetUpkeep]:
    """`count` simulated processes sharing one budget through `shares` (their budgets: `upkeep.budget`)."""
    return [
        BudgetUpkeep(bucket(time, budget), shares, wall_clock=time.clock, sleep=time.sleep, member=f"p{index}")
        for index in range(count)
    ]


async def test_three_processes_sharing_a_budget_spend_it_within_10_percent_over_a_minute():
    time = VirtualTime()
    shares = InMemoryBudgetShares()
    upkeeps = processes(time, shares, 60)
    budgets = [upkeep.budget for upkeep in upkeeps]
    tasks: list[asyncio.Task[None]] = []
    for index, (budget, upkeep) in enumerate(zip(budgets, upkeeps, strict=True)):
        if index:
            await time.run_for(0.4)  # started one after another, as an operator would
        await upkeep.start()
        tasks += start(*(writer(budget, time, lambda: (1, 1)) for _ in range(4)))
    await time.run_for(60 - 0.8)
    await stop(tasks)
    for upkeep in upkeeps:
        await upkeep.stop()
    spent = sum(budget.snapshot().units_spent for budget in budgets)
    assert 0.9 * 60 <= spent / 60 <= 1.1 * 60, spent / 60
    assert sum(budget.share for budget in budgets) == pytest.approx(60, rel=0.1)
    assert await shares.rates() == []  # each left on stopping


async def test_processes_taking_turns_spend_the_budget_within_10_percent_over_a_minute():
    # As `migrate --all` processes do while one holds an id range the others wait for: one writes
    # for a while, the others are idle, then the next one writes.
    time = VirtualTime()
    upkeeps = processes(time, InMemoryBudgetShares(), 60)
    budgets = [upkeep.budget for upkeep in upkeeps]
    for upkeep in upkeeps:
        await upkeep.start()
    turn = asyncio.Lock()

    async def taking_turns(budget: TokenBucketBudget) -> None:
        while True:
            async with turn:
                writers = start(*(writer(budget, time, lambda: (1, 1)) for _ in range(4)))
                await time.sleep(12)
                await stop(writers)
            await time.sleep(0.5)

    tasks = start(*(taking_turns(budget) for budget in budgets))
    await time.run_for(60)
    await stop(tasks)
    for upkeep in upkeeps:
        await upkeep.stop()
    spent = sum(budget.snapshot().units_spent for budget in budgets)
    assert 0.9 * 60 <= spent / 60 <= 1.1 * 60, spent / 60


async def test_an_unreachable_state_table_leaves_the_budget_as_it_was():
    from user_migration.domain.errors import TargetUnavailable

    class Unreachable(InMemoryBudgetShares):
        async def rates(self) -> list[PublishedRate]:
            raise TargetUnavailable("DynamoDB is unavailable")

    time = VirtualTime()
    budget = bucket(time, 60)
    seen: list[str] = []
    upkeep = BudgetUpkeep(
        budget,
        Unreachable(),
        wall_clock=time.clock,
        sleep=time.sleep,
        on_unavailable=lambda action, _: seen.append(action),
    )
    await upkeep.start()
    await time.run_for(12)
    await upkeep.stop()
    assert budget.share == 60
    assert seen[0] == "joining the write budget's shares"
    assert "publishing the write budget's share" in seen
