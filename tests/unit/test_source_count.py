"""The source's count kept for the statistics: one count however many ask, the moment it holds
for, the estimate when asked for speed, and the refresher's period; a fake clock and a slow
fake source."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from tests.factories import valid_user
from user_migration.adapters.memory.harness import InMemoryMigrationState, InMemoryUserSource
from user_migration.domain.errors import InvalidParameter, SourceUnavailable
from user_migration.domain.observe.source_count import CountMode, SourceCount, SourceCounter
from user_migration.domain.observe.statistics import Statistics, plan_statistics

START = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
ESTIMATE = 9  # what the planner would say of the 10 users


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class SlowSource(InMemoryUserSource):
    """Ten users; each count waits for `finish` (and takes `seconds` of the fake clock)."""

    def __init__(self, clock: Clock, seconds: float = 0.8) -> None:
        super().__init__(valid_user(i) for i in range(1, 11))
        self.clock = clock
        self.seconds = seconds
        self.counts = 0
        self.failures: list[Exception] = []
        self.finish = asyncio.Event()

    async def count_users(self, start_user_id: int = 0) -> int:
        self.counts += 1
        await self.finish.wait()
        self.clock.advance(self.seconds)
        if self.failures:
            raise self.failures.pop(0)
        return await super().count_users(start_user_id)

    async def estimate_user_count(self) -> int:
        return ESTIMATE


class Pauses:
    """The refresher's sleep: records each pause and returns, advancing the clock, when let go."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.taken: list[float] = []
        self._go = asyncio.Event()

    async def __call__(self, seconds: float) -> None:
        self.taken.append(seconds)
        await self._go.wait()
        self._go.clear()
        self.clock.advance(seconds)

    def end_one(self) -> None:
        self._go.set()


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def source(clock):
    return SlowSource(clock)


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_concurrent_callers_share_one_count_stating_when_it_began(clock, source):
    counter = SourceCounter(source, clock)
    callers = [asyncio.ensure_future(counter.current(CountMode.EXACT)) for _ in range(50)]
    await settle()
    source.finish.set()
    answers = await asyncio.gather(*callers)
    assert source.counts == 1
    assert set(answers) == {SourceCount(10, START, exact=True)}  # as of the count's start, not its end
    assert counter.latest == answers[0]


async def test_a_caller_that_goes_away_leaves_the_count_to_the_others(clock, source):
    counter = SourceCounter(source, clock)
    leaving, staying = asyncio.ensure_future(counter.count()), asyncio.ensure_future(counter.count())
    await settle()
    leaving.cancel()
    await settle()
    source.finish.set()
    assert (await staying).users == 10
    assert leaving.cancelled()
    assert source.counts == 1


async def test_the_estimate_when_asked_for_speed(clock, source):
    counter = SourceCounter(source, clock)
    clock.advance(5)
    assert await counter.current(CountMode.ESTIMATE) == SourceCount(ESTIMATE, START + timedelta(seconds=5), False)
    assert source.counts == 0


async def test_without_a_refresher_a_count_is_reused_for_the_period_then_taken_again(clock, source):
    source.finish.set()
    counter = SourceCounter(source, clock, refresh_seconds=30)
    first = await counter.current()
    clock.advance(29 - source.seconds)
    assert await counter.current() == first
    assert source.counts == 1
    clock.advance(1)
    again = await counter.current()
    assert (again.as_of, again.exact, source.counts) == (START + timedelta(seconds=30), True, 2)


async def test_with_the_refresher_requests_never_wait_and_the_count_is_renewed_every_period(clock, source):
    pauses = Pauses(clock)
    counter = SourceCounter(source, clock, refresh_seconds=30, sleep=pauses)
    refresher = asyncio.ensure_future(counter.keep_fresh())
    try:
        await settle()
        assert source.counts == 1  # counted at start
        # No exact count yet: the estimate at once, saying so, rather than waiting for the count.
        assert await counter.current() == SourceCount(ESTIMATE, START, exact=False)

        source.finish.set()
        await settle()
        assert pauses.taken == [30]
        first = SourceCount(10, START, exact=True)
        clock.advance(3600)  # however old: from memory, no count of its own
        assert await counter.current() == first
        assert source.counts == 1

        source.put(valid_user(11))
        pauses.end_one()
        await settle()
        assert source.counts == 2
        assert await counter.current() == SourceCount(11, START + timedelta(seconds=3600.8 + 30), exact=True)
        assert pauses.taken == [30, 30]
    finally:
        refresher.cancel()
        await asyncio.gather(refresher, return_exceptions=True)
    assert refresher.cancelled()
    # Stopped: a request counts on demand again.
    clock.advance(31)
    asked_at = clock.now
    assert (await counter.current()).as_of == asked_at


async def test_a_failing_count_leaves_the_last_one_standing_and_the_next_is_tried(clock, source):
    pauses = Pauses(clock)
    source.finish.set()
    counter = SourceCounter(source, clock, refresh_seconds=30, sleep=pauses)
    refresher = asyncio.ensure_future(counter.keep_fresh())
    try:
        await settle()
        first = counter.latest
        assert first is not None
        source.failures.append(SourceUnavailable("PostgreSQL query timed out"))
        pauses.end_one()
        await settle()
        assert (source.counts, counter.latest, await counter.current()) == (2, first, first)
        pauses.end_one()
        await settle()
        assert source.counts == 3
        assert counter.latest is not None
        assert counter.latest.as_of > first.as_of
        assert not refresher.done()
    finally:
        refresher.cancel()
        await asyncio.gather(refresher, return_exceptions=True)


async def test_statistics_from_the_count_and_the_counters(clock, source):
    source.finish.set()
    state = InMemoryMigrationState()
    state.count(range(1, 15))  # more than the source holds: pending stays at 0
    state.failed.update({3: ("missing_email",), 4: ("write_failed",)})
    stats = await Statistics(SourceCounter(source, clock), state).read()
    assert (stats.total_postgres_users, stats.total_dynamo_users, stats.pending_migration) == (10, 14, 0)
    assert (stats.total_postgres_users_as_of, stats.total_postgres_users_exact) == (START, True)
    assert stats.failed_users == 2
    estimated = await Statistics(SourceCounter(source, clock), state, default=CountMode.ESTIMATE).read()
    assert (estimated.total_postgres_users, estimated.total_postgres_users_exact) == (ESTIMATE, False)


@pytest.mark.parametrize(
    ("query", "mode"),
    [
        ([], None),
        ([("postgres_count", "exact")], CountMode.EXACT),
        ([("postgres_count", "Estimate")], CountMode.ESTIMATE),
    ],
)
def test_the_query_of_the_stats_endpoint(query, mode):
    assert plan_statistics(query) is mode
    assert plan_statistics([("batch_size", "30"), *query]) is mode  # other parameters are left alone, as ever


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ([("postgres_count", "banana")], "postgres_count"),
        ([("postgres_count", "")], "postgres_count"),
        ([("postgres_count", "exact"), ("postgres_count", "estimate")], "postgres_count"),
    ],
)
def test_a_bad_query_names_the_parameter(query, parameter):
    with pytest.raises(InvalidParameter) as raised:
        plan_statistics(query)
    assert raised.value.parameter == parameter


async def test_stopping_the_refresher_stops_its_count_too(clock, source):
    counter = SourceCounter(source, clock, sleep=Pauses(clock))
    refresher = asyncio.ensure_future(counter.keep_fresh())
    await settle()
    assert source.counts == 1  # waiting for `finish`
    refresher.cancel()
    await asyncio.gather(refresher, return_exceptions=True)
    assert refresher.cancelled()
    assert counter.latest is None
    assert [task for task in asyncio.all_tasks() if task is not asyncio.current_task()] == []
