"""The change stream from PostgreSQL's logical replication: a slot with the `pgoutput` plugin.

aiopg cannot speak the replication protocol, so one thread of its own owns a psycopg2
`LogicalReplicationConnection`: it reads messages without blocking (`read_message`), decodes
them (`adapters.postgres.pgoutput`), gathers the users table's transactions and hands them to the event
loop in lists, at most a few lists ahead (the thread waits when the consumer is behind). It also
sends the acknowledged position to the server (`send_feedback(flush_lsn=...)`): only what the
consumer acknowledged, never what was merely received, so a crash makes the server deliver the
rest again. When no transaction is open, the server's keepalives tell how far it has decoded:
every transaction before that was delivered, so an idle stream acknowledges that far too and
the slot does not hold WAL that other tables' writes make.
"""

from __future__ import annotations

import asyncio
import contextlib
import select
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import aiopg
import psycopg2
import psycopg2.extras

from user_migration.adapters.postgres.cdc import (
    CaptureNames,
    running_transactions_ended,
    slot_health,
    slot_position,
    visible,
)
from user_migration.adapters.postgres.pgoutput import PgoutputError, decode, lsn_text
from user_migration.adapters.postgres.pgoutput_transactions import TransactionAssembler
from user_migration.adapters.postgres.plan import first_line, quote_table_name
from user_migration.adapters.postgres.slot_holder import in_use_error
from user_migration.adapters.postgres.source import connection_failure
from user_migration.domain.convert.mapping import UserMapping
from user_migration.domain.errors import ChangeStreamInUse, SetupError, SourceUnavailable
from user_migration.domain.sync.row_changes import ChangeBatch, CommittedChanges, StreamHealth
from user_migration.ports.change_stream import ChangeStream

# Lists of transactions handed over but not yet read: the thread waits beyond this.
_LISTS_AHEAD = 4
_CHANGES_PER_LIST = 1_000
# How often the thread looks for an acknowledgement to send, at most (also its idle wait).
_POLL_SECONDS = 0.05
# A status update at least this often, so that the server does not time the stream out.
_FEEDBACK_SECONDS = 10.0
_VISIBLE_WITHIN_SECONDS = 60.0
_OBJECT_IN_USE = "55006"
_UNDEFINED_OBJECT = "42704"


def _stream_failure(error: BaseException, dsn: str, names: CaptureNames) -> Exception:
    if isinstance(error, psycopg2.Error):
        if error.pgcode == _OBJECT_IN_USE:  # told in full by `open` (who holds it, what frees it)
            return ChangeStreamInUse(first_line(error))
        if error.pgcode == _UNDEFINED_OBJECT:
            return SetupError(
                [f"{first_line(error)}: run `user-migration cdc setup` first"], "the change stream cannot start"
            )
        return connection_failure(error, dsn)
    if isinstance(error, PgoutputError):
        return SetupError([f"the change stream sent what it cannot carry: {error}"], "the change stream stopped")
    if isinstance(error, OSError):
        return connection_failure(error, dsn)
    return error if isinstance(error, Exception) else RuntimeError(str(error))


class _Feedback:
    """The acknowledged position, told to the server when it moved, and every few seconds."""

    def __init__(self, cursor: Any, acknowledged: Callable[[], int]) -> None:
        self._cursor = cursor
        self._acknowledged = acknowledged
        self._sent = 0
        self._sent_at = time.monotonic()

    def send_when_due(self, force: bool = False) -> None:
        position = self._acknowledged()
        if force or position > self._sent or time.monotonic() - self._sent_at > _FEEDBACK_SECONDS:
            self._cursor.send_feedback(flush_lsn=position, force=force)
            self._sent, self._sent_at = position, time.monotonic()


def _settle(started: asyncio.Future[None], failure: Exception | None) -> None:
    if started.done():
        return
    if failure is None:
        started.set_result(None)
    else:
        started.set_exception(failure)


class PostgresChangeStream(ChangeStream):
    """The users table's changes through the slot and publication of `names`; see the module."""

    def __init__(self, dsn: str, pool: aiopg.Pool, mapping: UserMapping, names: CaptureNames) -> None:
        self._dsn = dsn
        self._pool = pool
        self._mapping = mapping
        self._names = names
        self._queue: asyncio.Queue[list[Any]] = asyncio.Queue()
        self._room = threading.Semaphore(_LISTS_AHEAD)
        self._acknowledged = 0  # written by the loop, read by the thread
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._held: deque[CommittedChanges | int] = deque()  # read from the queue, not yet handed out
        self._through = 0

    async def open(self) -> None:
        await self.close()
        schema, table = await self._table()
        position = await slot_position(self._pool, self._names.slot)
        if position is None:
            raise self._no_slot()
        self._acknowledged = self._through = position
        self._queue = asyncio.Queue()
        self._room = threading.Semaphore(_LISTS_AHEAD)
        self._held = deque()
        self._stopping = threading.Event()
        started: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._thread = threading.Thread(
            target=self._run,
            args=(
                asyncio.get_running_loop(),
                started,
                TransactionAssembler(schema, table, self._mapping.key, self._mapping.key_kind),
            ),
            name=f"replication {self._names.slot}",
            daemon=True,
        )
        self._thread.start()
        try:
            await started
        except ChangeStreamInUse as error:  # at once, with who holds the slot and what frees it
            self._thread = None
            raise await in_use_error(self._pool, self._names.slot, error) from None

    async def _table(self) -> tuple[str, str]:
        async with self._pool.acquire() as connection, connection.cursor() as cursor:
            await cursor.execute(
                "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE c.oid = to_regclass(%s)",
                (quote_table_name(self._mapping.table),),
            )
            found = await cursor.fetchone()
        if found is None:
            raise SetupError([f"table {self._mapping.table} does not exist"], "the change stream cannot start")
        return str(found[0]), str(found[1])

    def _run(self, loop: asyncio.AbstractEventLoop, started: asyncio.Future[None], assembler: Any) -> None:
        connection = None
        try:
            connection = psycopg2.connect(self._dsn, connection_factory=psycopg2.extras.LogicalReplicationConnection)
            cursor = connection.cursor()
            cursor.start_replication(
                slot_name=self._names.slot,
                decode=False,
                options={"proto_version": "1", "publication_names": self._names.publication},
            )
        except BaseException as error:
            if connection is not None:
                connection.close()
            loop.call_soon_threadsafe(_settle, started, _stream_failure(error, self._dsn, self._names))
            return
        loop.call_soon_threadsafe(_settle, started, None)
        feedback = _Feedback(cursor, lambda: self._acknowledged)

        def hand(items: list[Any]) -> None:
            # While the consumer is behind, the server still hears from us: it would end a silent
            # stream after wal_sender_timeout.
            while not self._room.acquire(timeout=_POLL_SECONDS):
                if self._stopping.is_set():
                    return
                feedback.send_when_due()
            loop.call_soon_threadsafe(self._queue.put_nowait, items)

        try:
            self._stream(cursor, connection, assembler, hand, feedback)
        except BaseException as error:
            hand([_stream_failure(error, self._dsn, self._names)])
        finally:
            with contextlib.suppress(psycopg2.Error):
                feedback.send_when_due(force=True)
            connection.close()

    def _stream(
        self, cursor: Any, connection: Any, assembler: TransactionAssembler, hand: Any, feedback: _Feedback
    ) -> None:
        pending: list[Any] = []
        changes = 0
        told = 0  # the last position handed over
        while not self._stopping.is_set():
            message = cursor.read_message()
            if message is not None:
                transaction = assembler.feed(decode(message.payload))
                if transaction is not None:
                    pending.append(transaction)
                    changes += len(transaction.changes)
                    told = transaction.position
                elif not assembler.in_transaction and message.data_start > told:  # other tables' commit
                    pending.append(told := int(message.data_start))
                if changes >= _CHANGES_PER_LIST:
                    hand(pending)
                    pending, changes = [], 0
                continue
            if not assembler.in_transaction and cursor.wal_end > told:
                pending.append(told := int(cursor.wal_end))  # decoded this far: every commit before was sent
            if pending:
                hand(pending)
                pending, changes = [], 0
            feedback.send_when_due()
            select.select([connection], [], [], _POLL_SECONDS)

    async def read(self, max_changes: int, wait_seconds: float) -> ChangeBatch:
        if self._thread is None:
            raise SetupError(["the change stream is not open"], "change stream")
        if not self._held and self._queue.empty():
            with contextlib.suppress(TimeoutError):
                self._take(await asyncio.wait_for(self._queue.get(), timeout=wait_seconds))
        while not self._queue.empty() and len(self._held) < 2 * max_changes:
            self._take(self._queue.get_nowait())
        taken: list[CommittedChanges] = []
        count, popped, through = 0, 0, self._through
        for item in self._held:
            if isinstance(item, CommittedChanges):
                if taken and count + len(item.changes) > max_changes:
                    break
                taken.append(item)
                count += len(item.changes)
                through = max(through, item.position)
            else:  # a position every transaction before was delivered up to
                through = max(through, item)
            popped += 1
        if taken and not await visible(self._pool, [transaction.transaction_id for transaction in taken], wait_seconds):
            return ChangeBatch((), self._through)  # kept for the next read
        for _ in range(popped):
            self._held.popleft()
        self._through = through
        return ChangeBatch(tuple(taken), through)

    def _take(self, items: list[Any]) -> None:
        self._room.release()
        for item in items:
            if isinstance(item, BaseException):
                self._thread = None
                raise item
        self._held.extend(items)

    async def acknowledge(self, position: int) -> None:
        self._acknowledged = max(self._acknowledged, position)

    async def confirmed_position(self) -> int:
        position = await slot_position(self._pool, self._names.slot)
        if position is None:
            raise self._no_slot()
        # A commit before the position may not be seen yet (synchronous replication waiting for a
        # standby): a backfill from it must see it, so it waits for what runs now to end.
        if not await running_transactions_ended(self._pool, _VISIBLE_WITHIN_SECONDS):
            raise SourceUnavailable(
                f"transactions running at {lsn_text(position)} have not ended after {_VISIBLE_WITHIN_SECONDS:g} s "
                "(a long transaction, or synchronous replication waiting for a standby): the backfill waits for them"
            )
        return position

    async def health(self) -> StreamHealth:
        health = await slot_health(self._pool, self._names.slot)
        if health is None:
            raise self._no_slot()
        return health

    def _no_slot(self) -> SetupError:
        return SetupError(
            [f"replication slot {self._names.slot} does not exist: run `user-migration cdc setup` first"],
            "no change stream",
        )

    async def close(self) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stopping.set()
        await asyncio.to_thread(thread.join, 10)
