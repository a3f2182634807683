"""The write budget's shares in memory: for the test harness, and for tests that simulate several
processes (they share one instance, as processes share one state table)."""

from __future__ import annotations

from user_migration.domain.budget.shares import SHARING_PLACES, PublishedRate, is_live
from user_migration.ports.write_budget import BudgetShares


class InMemoryBudgetShares(BudgetShares):
    """At most `places` members, as in DynamoDB (`adapters.dynamodb.budget_shares`): a place whose
    rate is no longer live may be taken by another member."""

    def __init__(self, places: int = SHARING_PLACES) -> None:
        self._places = places
        self._rates: dict[int, PublishedRate] = {}

    async def publish(self, member: str, units_per_second: float, now: float) -> bool:
        rate = PublishedRate(member, units_per_second, now)
        mine = [place for place, held in self._rates.items() if held.member == member]
        free = [
            place for place in range(self._places) if place not in self._rates or not is_live(self._rates[place], now)
        ]
        chosen = mine or free
        if not chosen:
            return False
        self._rates[chosen[0]] = rate
        return True

    async def rates(self) -> list[PublishedRate]:
        return list(self._rates.values())

    async def leave(self, member: str) -> None:
        self._rates = {place: rate for place, rate in self._rates.items() if rate.member != member}
