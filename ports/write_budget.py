"""What the DynamoDB writes spend from, and where the processes that share a write budget meet."""

from __future__ import annotations

import abc

from user_migration.domain.budget.shares import PublishedRate


class WriteBudget(abc.ABC):
    """The write capacity units per second a process may spend on the users table.

    A target calls `acquire` with what a request is estimated to cost before it sends it, and `spend`
    with what it cost once it is answered (DynamoDB's own figure, else the estimate; 0 when it was
    refused without writing, e.g. throttled). Throttling and unprocessed items are told to
    `throttled`, so that the process slows down.
    """

    @abc.abstractmethod
    async def acquire(self, estimated_units: float) -> None:
        """Wait until a request estimated at `estimated_units` may go."""

    @abc.abstractmethod
    def spend(self, actual_units: float, estimated_units: float) -> None:
        """Settle a request that `acquire` let go with `estimated_units`: it cost `actual_units`."""

    @abc.abstractmethod
    def throttled(self) -> None:
        """DynamoDB throttled a request or left items unprocessed."""


class BudgetShares(abc.ABC):
    """The rates the processes sharing one budget published, so that each can take its share.

    Bounded: an adapter keeps a place for a limited number of processes; one that finds none free
    is told so (`publish` returns False) and may try again later.
    """

    @abc.abstractmethod
    async def publish(self, member: str, units_per_second: float, now: float) -> bool:
        """Publish `member`'s rate at wall-clock time `now`, replacing its earlier one; False when no
        place is free for it (every place holds another process's live rate)."""

    @abc.abstractmethod
    async def rates(self) -> list[PublishedRate]:
        """Every rate published and not withdrawn, old ones included (the caller judges their age)."""

    @abc.abstractmethod
    async def leave(self, member: str) -> None:
        """Withdraw `member`'s rate (it stops writing), so that the others take its part at once."""


class TableCapacity(abc.ABC):
    """The write capacity of the users table, for a budget given as a percentage of it."""

    @abc.abstractmethod
    async def write_units(self) -> float:
        """The table's write capacity units per second as it is now."""
