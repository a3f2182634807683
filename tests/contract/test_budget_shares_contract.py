"""The BudgetShares port's contract, run against the in-memory adapter and the state table on moto.

A "process" is a view of the shares: in DynamoDB each process has an adapter of its own (it
remembers its place) on one state table; in memory the processes share one instance, as they share
one table. The fixture is here rather than in conftest.py: only this suite uses it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from typing import Any

import pytest

from tests.real_adapters import create_dynamodb_tables
from user_migration.adapters.dynamodb.budget_shares import DynamoDbBudgetShares
from user_migration.adapters.dynamodb.client import dynamodb_client
from user_migration.adapters.memory.budget import InMemoryBudgetShares
from user_migration.domain.budget.shares import LIVE_SECONDS, PublishedRate
from user_migration.ports.write_budget import BudgetShares

NOW = 1_767_225_600.0  # 2026-01-01, Unix seconds
# Makes the shares of one table for `places` processes; each call of the result is one process's view.
SharesFactory = Callable[[int], Any]


@pytest.fixture(params=["memory", "dynamodb"])
async def make_shares(request: pytest.FixtureRequest) -> AsyncIterator[SharesFactory]:
    if request.param == "memory":

        async def memory(places: int = 32) -> Callable[[], BudgetShares]:
            shared = InMemoryBudgetShares(places)
            return lambda: shared

        yield memory
        return
    endpoint = request.getfixturevalue("dynamodb_endpoint")
    async with AsyncExitStack() as stack:
        client = await stack.enter_async_context(dynamodb_client(endpoint, "us-east-1"))

        async def dynamodb(places: int = 32) -> Callable[[], BudgetShares]:
            _, state_table = await create_dynamodb_tables(client)
            return lambda: DynamoDbBudgetShares(client, state_table, places)

        yield dynamodb


def by_member(rates: list[PublishedRate]) -> dict[str, tuple[float, float]]:
    return {rate.member: (rate.units_per_second, rate.published_at) for rate in rates}


async def test_a_published_rate_is_read_back(make_shares):
    process = (await make_shares())()
    assert await process.rates() == []
    assert await process.publish("a", 12.5, NOW) is True
    assert await process.rates() == [PublishedRate("a", 12.5, NOW)]


async def test_publishing_again_replaces_the_member_s_rate(make_shares):
    process = (await make_shares())()
    await process.publish("a", 12.5, NOW)
    await process.publish("a", 40.25, NOW + 5)
    assert await process.rates() == [PublishedRate("a", 40.25, NOW + 5)]


async def test_every_process_reads_every_rate(make_shares):
    view = await make_shares()
    first, second, third = view(), view(), view()
    await first.publish("a", 10, NOW)
    await second.publish("b", 20, NOW + 1)
    await third.publish("c", 30, NOW + 2)
    expected = {"a": (10, NOW), "b": (20, NOW + 1), "c": (30, NOW + 2)}
    for process in (first, second, third):
        assert by_member(await process.rates()) == expected


async def test_leaving_withdraws_only_one_s_own_rate(make_shares):
    view = await make_shares()
    first, second = view(), view()
    await first.publish("a", 10, NOW)
    await second.publish("b", 20, NOW)
    await first.leave("a")
    assert by_member(await second.rates()) == {"b": (20, NOW)}
    await first.leave("a")  # leaving twice is harmless


async def test_when_every_place_is_live_a_newcomer_is_told_so_and_takes_a_stale_place_later(make_shares):
    view = await make_shares(2)
    first, second, newcomer = view(), view(), view()
    await first.publish("a", 10, NOW)
    await second.publish("b", 20, NOW)
    assert await newcomer.publish("c", 30, NOW + 1) is False
    assert set(by_member(await newcomer.rates())) == {"a", "b"}
    # "a" goes silent; "b" keeps publishing: "a"'s place is the one taken over.
    await second.publish("b", 20, NOW + LIVE_SECONDS)
    later = NOW + LIVE_SECONDS + 1
    assert await newcomer.publish("c", 30, later) is True
    assert by_member(await newcomer.rates()) == {"b": (20, NOW + LIVE_SECONDS), "c": (30, later)}
    # "a" comes back: its place is gone, and no other is free.
    assert await first.publish("a", 10, later + 1) is False
    assert set(by_member(await first.rates())) == {"b", "c"}


async def test_a_member_whose_place_was_taken_finds_another_free_one(make_shares):
    view = await make_shares(3)
    first, second = view(), view()
    await first.publish("a", 10, NOW)
    later = NOW + LIVE_SECONDS + 1
    await second.publish("b", 20, later)  # may take "a"'s stale place, or a free one
    assert await first.publish("a", 11, later + 1) is True
    assert by_member(await first.rates()) == {"a": (11, later + 1), "b": (20, later)}
