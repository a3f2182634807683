"""Adapters under contract: every port's suite runs against each adapter listed here.

Each fixture yields a factory, so a test can seed the adapter with what it needs. Real adapters
join these lists through the same factories (see tests/real_adapters.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable

import pytest

from adapters.memory import InMemoryMigrationState, InMemoryUserSource, InMemoryUserTarget
from domain.model import User
from ports import MigrationState, UserSource, UserTarget

SourceFactory = Callable[[Iterable[User]], Awaitable[UserSource]]
TargetFactory = Callable[[], Awaitable[UserTarget]]
StateFactory = Callable[[], Awaitable[MigrationState]]


@pytest.fixture(params=["memory"])
async def make_source(request) -> AsyncIterator[SourceFactory]:
    async def memory(users: Iterable[User]) -> UserSource:
        return InMemoryUserSource(users)

    return memory


@pytest.fixture(params=["memory"])
async def make_target(request) -> AsyncIterator[TargetFactory]:
    async def memory() -> UserTarget:
        return InMemoryUserTarget()

    return memory


@pytest.fixture(params=["memory"])
async def make_state(request) -> AsyncIterator[StateFactory]:
    async def memory() -> MigrationState:
        return InMemoryMigrationState()

    return memory
