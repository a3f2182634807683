"""An in-memory change stream, for the test harness: transactions committed by the test."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from datetime import UTC, datetime

from user_migration.domain.errors import SetupError
from user_migration.domain.sync.row_changes import ChangeBatch, CommittedChanges, RowChange, StreamHealth
from user_migration.ports.change_stream import ChangeStream

# Each transaction takes this many "bytes" of log, so that positions look like WAL positions.
_STEP = 100


class InMemoryChangeStream(ChangeStream):
    """Keeps every committed transaction until it is acknowledged; `open` again delivers what
    was not (as a slot does after a reconnect)."""

    def __init__(self, start: int = 1_000) -> None:
        self._log: list[CommittedChanges] = []
        self._end = start  # the log's end: where the next commit goes
        self._acknowledged = start
        self._delivered = start
        self._open = False
        self._committed = asyncio.Event()
        self.acknowledgements: list[int] = []
        # WAL a real source keeps besides (its restart point lags behind the acknowledged one).
        self.held_wal = 0

    def commit(self, changes: Iterable[RowChange], at: datetime | None = None) -> int:
        """Commit a transaction of these row changes; its position."""
        self._end += _STEP
        self._log.append(CommittedChanges(self._end, at or datetime.now(UTC), tuple(changes)))
        self._committed.set()
        return self._end

    def commit_elsewhere(self) -> int:
        """A transaction that touched no user: the log moves on, nothing is delivered."""
        self._end += _STEP
        return self._end

    async def open(self) -> None:
        self._delivered = self._acknowledged
        self._open = True

    async def read(self, max_changes: int, wait_seconds: float) -> ChangeBatch:
        if not self._open:
            raise SetupError(["the change stream is not open"], "change stream")
        if not self._pending():
            self._committed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._committed.wait(), timeout=wait_seconds)
        taken: list[CommittedChanges] = []
        for transaction in self._pending():
            if taken and sum(len(t.changes) for t in taken) + len(transaction.changes) > max_changes:
                break
            taken.append(transaction)
        if len(taken) == len(self._pending()):
            self._delivered = self._end
        elif taken:
            self._delivered = taken[-1].position
        return ChangeBatch(tuple(taken), self._delivered)

    def _pending(self) -> list[CommittedChanges]:
        return [transaction for transaction in self._log if transaction.position > self._delivered]

    async def acknowledge(self, position: int) -> None:
        self._acknowledged = max(self._acknowledged, position)
        self.acknowledgements.append(position)

    async def confirmed_position(self) -> int:
        return self._acknowledged

    async def health(self) -> StreamHealth:
        behind = self._end - self._acknowledged
        return StreamHealth(retained_wal_bytes=behind + self.held_wal, lag_bytes=behind, active=self._open)

    async def close(self) -> None:
        self._open = False
