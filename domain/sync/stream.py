"""`sync --follow --changes logical`: the source's committed changes, streamed (a replication
slot), carried into the target in commit order, each position acknowledged only once stored.

1. Backfill, once per stream: every row is read *after* the stream's position P was fixed (the
   slot exists, nothing past P is acknowledged), so each row's state is at least as new as P; it
   is written with version P (`ChangeSync.backfill`), and the migration's items whose rows are gone
   are deleted. Every change committed after P has a higher position and is still in the stream:
   nothing falls in a gap, and a change the backfill already saw is applied again with its own,
   higher version (idempotent). The stream is not applied meanwhile: a delete applied before the
   backfill wrote an older read of the row would otherwise leave the user behind. A backfill cut
   short is done again from the start (the mark that it finished is recorded only at its end).
2. Then batch after batch of whole transactions: per user the last change wins (`net_changes`).
   An inserted or updated row is read again from the source and written with the position of its
   last change as its version, where the stored item is older (`ChangeWrites.apply`): the
   read is at least as new as that change, also for large values the stream leaves out as
   unchanged (TOAST). A row found gone was deleted later: that delete is further on in the
   stream. A deleted row's item is deleted where it is the migration's own, unchanged, and older
   than the delete (`ChangeWrites.remove`).
3. Only when every change of the batch is stored is its end acknowledged to the source. A sync
   killed at any point is delivered the unacknowledged transactions again: applying them again
   writes nothing that is not newer, and the holds count every user once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from datetime import UTC, datetime

import attrs

from user_migration.domain.errors import ChangeStreamInUse, DependencyUnavailable
from user_migration.domain.keys import UserId
from user_migration.domain.migrate.report import ChangeOutcome
from user_migration.domain.migrate.request import check_batch_size
from user_migration.domain.model import ChangeCursor, DeleteOutcome, WriteRule
from user_migration.domain.sync.poll import ChangeSync, SyncSummary, SyncTally
from user_migration.domain.sync.request import StreamRequest
from user_migration.domain.sync.row_changes import ChangeBatch, StreamHealth, net_changes, stream_version
from user_migration.domain.write.changes import ChangeWrites
from user_migration.ports.change_stream import ChangeStream
from user_migration.ports.migration_state import MigrationState
from user_migration.ports.user_source import UserSource
from user_migration.ports.user_target import UserTarget

DEFAULT_HEALTH_SECONDS = 5.0
_WAIT_SECONDS = 0.5


def backfill_pending_mark(stream_name: str) -> str:
    """The change cursor recorded when a stream is set up: its backfill is still to be done."""
    return f"stream:{stream_name}:backfill-pending"


def backfilled_mark(stream_name: str) -> str:
    """The change cursor recorded once the stream's backfill is done."""
    return f"stream:{stream_name}:backfilled"


def is_stream_mark(position: str) -> bool:
    """Whether a change cursor is a stream's mark rather than a polling position."""
    return position.startswith("stream:")


def _utc_now() -> datetime:
    return datetime.now(UTC)


@attrs.frozen
class StreamProgress:
    """Where the stream stands: what it applied so far, how far behind it is, and whether the
    WAL the source keeps for it is past the operator's limit."""

    transactions: int
    changes_seen: int
    written: int
    deleted: int
    failed: int
    acknowledged: int
    lag_seconds: float
    health: StreamHealth | None
    over_limit: bool
    elapsed_seconds: float


@attrs.define
class StreamSummary:
    """What a stream did in all (the backfill's own summary apart): `tally` counts the items
    written, deleted, kept and failed, `transactions` and `changes_seen` what was delivered."""

    backfill: SyncSummary | None = None
    transactions: int = 0
    changes_seen: int = 0
    tally: SyncTally = attrs.Factory(SyncTally)
    acknowledged: int = 0
    lag_seconds: float = 0.0
    health: StreamHealth | None = None
    elapsed_seconds: float = 0.0
    stopped_early: bool = False

    @property
    def failures(self) -> dict[UserId, tuple[str, ...]]:
        """Every user that failed, in the backfill or in the stream (the stream's reasons last), by id."""
        backfilled = self.backfill.failures if self.backfill is not None else {}
        return dict(sorted({**backfilled, **self.tally.failures}.items()))


StreamProgressCallback = Callable[[StreamProgress], None]


@attrs.frozen
class _Applied:
    changes: ChangeOutcome
    deletes: DeleteOutcome

    @property
    def finished(self) -> bool:
        return not self.changes.write_failed and not self.deletes.failed


@attrs.define(eq=False, slots=False)
class StreamSync:
    """Backfills once, then carries the stream's transactions over; see the module's docstring."""

    _stream: ChangeStream
    _stream_name: str
    _source: UserSource
    _target: UserTarget
    _state: MigrationState
    _changes: ChangeWrites
    _change_sync: ChangeSync
    _clock: Callable[[], datetime] = _utc_now
    _health_seconds: float = DEFAULT_HEALTH_SECONDS
    _retry_seconds: float = 5.0

    async def needs_backfill(self) -> bool:
        """Whether this stream's backfill was not finished yet."""
        cursor = await self._state.read_change_cursor()
        return cursor is None or cursor.position != backfilled_mark(self._stream_name)

    async def follow(self, request: StreamRequest) -> StreamSummary:
        """Backfill when needed, then stream until `stop` is set. A batch that could not be stored
        whole (DynamoDB or PostgreSQL unavailable) is told to `on_unavailable` and applied again
        after a pause, never acknowledged before; a stream another consumer holds is told at once
        and opened again after each pause until it is free; without `on_unavailable` either error
        ends it."""
        stop, batch_size, on_unavailable = request.stop, request.batch_size, request.on_unavailable
        check_batch_size(batch_size)
        started = time.perf_counter()
        summary = StreamSummary()
        if not await self._open(stop, on_unavailable):
            summary.stopped_early = True
            summary.elapsed_seconds = time.perf_counter() - started
            return summary
        try:
            if await self.needs_backfill():
                position = await self._stream.confirmed_position()  # every commit before it is seen now
                summary.backfill = await self._change_sync.backfill(
                    stream_version(position), batch_size, stop, request.on_backfill_progress
                )
                if not summary.backfill.caught_up:
                    summary.stopped_early = summary.backfill.stopped_early
                    return summary
                applied = summary.backfill.written + summary.backfill.deleted
                await self._state.record_change_cursor(
                    ChangeCursor(backfilled_mark(self._stream_name), self._clock()), applied
                )
                summary.acknowledged = position
            await self._stream_until(
                stop, batch_size, request.max_retained_wal, summary, started, request.on_progress, on_unavailable
            )
        finally:
            summary.elapsed_seconds = time.perf_counter() - started
            await self._stream.close()
        return summary

    async def _stream_until(
        self,
        stop: asyncio.Event,
        batch_size: int,
        max_retained_wal: int | None,
        summary: StreamSummary,
        started: float,
        on_progress: StreamProgressCallback | None,
        on_unavailable: Callable[[DependencyUnavailable], None] | None,
    ) -> None:
        health_at = 0.0
        while not stop.is_set():
            try:
                batch = await self._stream.read(batch_size, _WAIT_SECONDS)
            except DependencyUnavailable as error:
                # The connection went away: open again after a pause, from the last acknowledged
                # position (what was read and not stored is delivered again).
                if on_unavailable is None:
                    raise
                on_unavailable(error)
                if not await self._reopen(stop, on_unavailable):
                    break
                continue
            if batch.transactions and not await self._store(batch, summary, stop, on_unavailable):
                summary.stopped_early = True
                return
            if batch.delivered_through > summary.acknowledged:
                await self._stream.acknowledge(batch.delivered_through)  # stored: the source may forget it
                summary.acknowledged = batch.delivered_through
            summary.lag_seconds = (
                max(0.0, (self._clock() - batch.transactions[-1].committed_at).total_seconds())
                if batch.transactions
                else 0.0
            )
            if time.perf_counter() - health_at >= self._health_seconds:
                health_at = time.perf_counter()
                summary.health = await self._health(on_unavailable)
            if on_progress is not None:
                on_progress(self._progress(summary, max_retained_wal, started))
        summary.stopped_early = True

    async def _open(self, stop: asyncio.Event, on_unavailable: Callable[[DependencyUnavailable], None] | None) -> bool:
        """Open the stream. While another consumer holds it (a stream that runs, or what one that died
        left on the source until the source finds it dead), that is told to `on_unavailable` at once
        and the stream tried again after each pause; False when `stop` came first."""
        try:
            await self._stream.open()
        except ChangeStreamInUse as error:
            if on_unavailable is None:
                raise
            on_unavailable(error)
            return await self._reopen(stop, on_unavailable)
        return True

    async def _reopen(self, stop: asyncio.Event, on_unavailable: Callable[[DependencyUnavailable], None]) -> bool:
        """Open the stream again, pausing between tries; False when `stop` came first."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self._retry_seconds)
            if stop.is_set():
                return False
            try:
                await self._stream.open()
            except DependencyUnavailable as error:
                on_unavailable(error)
            else:
                return True

    async def _health(self, on_unavailable: Callable[[DependencyUnavailable], None] | None) -> StreamHealth | None:
        try:
            return await self._stream.health()
        except DependencyUnavailable as error:
            if on_unavailable is None:
                raise
            on_unavailable(error)
            return None

    async def _store(
        self,
        batch: ChangeBatch,
        summary: StreamSummary,
        stop: asyncio.Event,
        on_unavailable: Callable[[DependencyUnavailable], None] | None,
    ) -> bool:
        """Apply the batch until all of it is stored; False when `stop` came first."""
        while True:
            try:
                applied = await self._apply(batch)
                if applied.finished:
                    self._count(batch, applied, summary)
                    return True
                unstored = len(applied.changes.write_failed) + len(applied.deletes.failed)
                error = DependencyUnavailable(f"{unstored} change(s) could not be stored; not acknowledged")
            except DependencyUnavailable as caught:
                error = caught
            if on_unavailable is None:
                raise error
            on_unavailable(error)  # the same batch again after a pause: applying it twice is harmless
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self._retry_seconds)
            if stop.is_set():
                return False

    async def _apply(self, batch: ChangeBatch) -> _Applied:
        net = net_changes(batch.transactions)
        rows = await self._source.read_users(list(net.upserts)) if net.upserts else []
        versioned = [attrs.evolve(row, version=stream_version(net.upserts[row.id])) for row in rows]
        changes = await self._changes.apply(versioned, WriteRule.OLDER) if versioned else ChangeOutcome()
        deletes = DeleteOutcome()
        if net.deletes:
            stored = await self._target.read_stored(list(net.deletes))
            older = [
                user_id
                for user_id, position in net.deletes.items()
                if user_id in stored
                and ((version := stored[user_id].version) is None or version < stream_version(position))
            ]
            deletes = await self._changes.remove(older) if older else DeleteOutcome()
        return _Applied(changes, deletes)

    @staticmethod
    def _progress(summary: StreamSummary, max_retained_wal: int | None, started: float) -> StreamProgress:
        health = summary.health
        over = max_retained_wal is not None and health is not None and health.retained_wal_bytes > max_retained_wal
        return StreamProgress(
            summary.transactions,
            summary.changes_seen,
            summary.tally.written,
            summary.tally.deleted,
            len(summary.tally.failures),
            summary.acknowledged,
            summary.lag_seconds,
            health,
            over,
            time.perf_counter() - started,
        )

    @staticmethod
    def _count(batch: ChangeBatch, applied: _Applied, summary: StreamSummary) -> None:
        summary.transactions += len(batch.transactions)
        summary.changes_seen += batch.change_count
        summary.tally.add_changes(applied.changes)
        summary.tally.add_deletes(applied.deletes)
