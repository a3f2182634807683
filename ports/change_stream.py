"""Where the source's committed changes come from, in commit order (PostgreSQL's logical
replication in production)."""

from __future__ import annotations

import abc

from user_migration.domain.sync.row_changes import ChangeBatch, StreamHealth


class ChangeStream(abc.ABC):
    """The users table's committed transactions, from the last acknowledged position on.

    What was read but not acknowledged is delivered again by the next `open` (after a crash, the
    consumer sees it twice: its versions make that harmless); what was acknowledged never again.
    """

    @abc.abstractmethod
    async def open(self) -> None:
        """Start delivering after the last acknowledged position. Raises `SetupError` when the
        stream is not set up (no slot); `ChangeStreamInUse` (a `DependencyUnavailable`) while another
        consumer holds it, naming that consumer; `DependencyUnavailable` when the source cannot be
        reached."""

    @abc.abstractmethod
    async def read(self, max_changes: int, wait_seconds: float) -> ChangeBatch:
        """The next transactions, whole, in commit order: as many as are there, up to about
        `max_changes` row changes (a transaction is never split), waiting up to `wait_seconds`
        for the first one; each is seen by the source's reads that start after this returns
        (one committed but not seen yet is held back). An empty batch still tells how far
        delivery got."""

    @abc.abstractmethod
    async def acknowledge(self, position: int) -> None:
        """Everything up to `position` is stored: the source may forget it."""

    @abc.abstractmethod
    async def confirmed_position(self) -> int:
        """The last acknowledged position (for a new stream: where it begins), once every
        transaction committed before it is seen by the source's reads that start after this
        returns (where to start a backfill)."""

    @abc.abstractmethod
    async def health(self) -> StreamHealth:
        """The WAL the source keeps for this stream, and how far behind the stream is."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Stop delivering (what was acknowledged is told to the source first)."""
