"""The PostgreSQL change stream holds back a transaction until other sessions see it: its commit
is in the WAL (and so in the stream) before its rows are visible, for as long as synchronous
replication waits for a standby. Reading such a row again too early would carry its older state."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

import aiopg
import psycopg2
import psycopg2.extras
import pytest

from tests.real_adapters import create_source_table, unique_name
from tests.real_adapters import quote_table_name as quoted
from user_migration.adapters.postgres.cdc import CaptureNames, set_up_change_capture, tear_down_change_capture
from user_migration.adapters.postgres.replication import PostgresChangeStream
from user_migration.adapters.postgres.source import create_pool
from user_migration.domain.convert.mapping import default_mapping
from user_migration.domain.errors import ChangeStreamInUse, SetupError
from user_migration.domain.sync.row_changes import RowChange


def autocommit(dsn: str, sql: str) -> list[tuple[object, ...]]:
    connection = psycopg2.connect(dsn)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetchall() if cursor.description else []
    finally:
        connection.close()


@pytest.fixture
async def captured(logical_postgres_dsn: str) -> AsyncIterator[tuple[str, CaptureNames, aiopg.Pool]]:
    """A users table with its publication and slot (and the pool that set them up)."""
    table = unique_name("users")
    create_source_table(logical_postgres_dsn, table)
    names = CaptureNames(slot=unique_name("slot"), publication=unique_name("pub"))
    pool = await create_pool(logical_postgres_dsn)

    async def no_mark() -> None:
        return None

    await set_up_change_capture(pool, default_mapping(table), names, no_mark)
    yield table, names, pool
    await tear_down_change_capture(pool, names)
    pool.close()
    await pool.wait_closed()


@pytest.fixture
async def stream(
    logical_postgres_dsn: str, captured: tuple[str, CaptureNames, aiopg.Pool]
) -> AsyncIterator[tuple[PostgresChangeStream, str]]:
    table, names, pool = captured
    changes = PostgresChangeStream(logical_postgres_dsn, pool, default_mapping(table), names)
    await changes.open()
    yield changes, table
    await changes.close()


@contextmanager
def waiting_for_a_standby(dsn: str, sql: str) -> Iterator[None]:
    """`sql` committed under synchronous replication to a standby that never answers: in the WAL,
    unseen by other sessions, until the block ends (the setting is reset: the commit returns)."""
    autocommit(dsn, "ALTER SYSTEM SET synchronous_standby_names = 'nobody'")
    autocommit(dsn, "SELECT pg_reload_conf()")
    committing = threading.Thread(target=autocommit, args=(dsn, sql))
    try:
        committing.start()
        deadline = time.monotonic() + 10
        while not autocommit(dsn, "SELECT 1 FROM pg_stat_activity WHERE wait_event = 'SyncRep'"):
            assert time.monotonic() < deadline, "the commit never waited for the standby"
            time.sleep(0.05)
        yield
    finally:
        autocommit(dsn, "ALTER SYSTEM RESET synchronous_standby_names")
        autocommit(dsn, "SELECT pg_reload_conf()")
        committing.join(timeout=10)


def insert_of(table: str, user_id: int) -> str:
    return (
        f"INSERT INTO {quoted(table)} (id, username, email, created_at, updated_at, status) "
        f"VALUES ({user_id}, 'u{user_id}', 'u{user_id}@example.com', now(), now(), 'active')"
    )


async def test_a_commit_others_cannot_see_yet_is_held_back_until_they_can(stream, logical_postgres_dsn):
    changes, table = stream
    with waiting_for_a_standby(logical_postgres_dsn, insert_of(table, 7)):
        # In the WAL, not visible: a read now does not find the row.
        assert autocommit(logical_postgres_dsn, f"SELECT id FROM {quoted(table)}") == []
        held = await changes.read(1_000, 1.0)
        assert held.transactions == ()
    batch = await changes.read(1_000, 5.0)
    assert [transaction.changes for transaction in batch.transactions] == [(RowChange(7),)]
    assert autocommit(logical_postgres_dsn, f"SELECT id FROM {quoted(table)}") == [(7,)]
    assert held.delivered_through < batch.transactions[0].position <= batch.delivered_through


async def test_the_backfill_position_waits_for_commits_not_seen_yet(stream, logical_postgres_dsn):
    changes, table = stream
    with waiting_for_a_standby(logical_postgres_dsn, insert_of(table, 8)):
        position = asyncio.ensure_future(changes.confirmed_position())
        await asyncio.sleep(0.5)
        assert not position.done()  # a backfill read now would miss user 8
    await asyncio.wait_for(position, 10)
    assert autocommit(logical_postgres_dsn, f"SELECT id FROM {quoted(table)}") == [(8,)]


async def test_a_slot_the_server_invalidated_is_named_with_what_to_do(stream, logical_postgres_dsn):
    changes, table = stream
    await changes.close()
    autocommit(logical_postgres_dsn, "ALTER SYSTEM SET max_slot_wal_keep_size = '1MB'")
    autocommit(logical_postgres_dsn, "SELECT pg_reload_conf()")
    try:
        for user_id in range(1, 5):  # a few WAL segments past the slot, then a checkpoint removes them
            autocommit(logical_postgres_dsn, insert_of(table, user_id))
            autocommit(logical_postgres_dsn, "SELECT pg_switch_wal()")
        autocommit(logical_postgres_dsn, "CHECKPOINT")
    finally:  # back to the session server's setting (tests.conftest)
        autocommit(logical_postgres_dsn, "ALTER SYSTEM SET max_slot_wal_keep_size = '1GB'")
        autocommit(logical_postgres_dsn, "SELECT pg_reload_conf()")
    with pytest.raises(SetupError, match=r"was invalidated \(wal_status lost") as raised:
        await changes.open()
    assert "`user-migration cdc teardown`, `user-migration cdc setup`" in str(raised.value)


async def test_a_slot_another_process_holds_is_told_at_once_with_its_pid_and_what_frees_it(
    logical_postgres_dsn, captured
):
    table, names, pool = captured
    # Another consumer: a replication connection streaming from the slot (a sync, or one that died).
    holder = psycopg2.connect(logical_postgres_dsn, connection_factory=psycopg2.extras.LogicalReplicationConnection)
    second = PostgresChangeStream(logical_postgres_dsn, pool, default_mapping(table), names)
    try:
        holder.cursor().start_replication(
            slot_name=names.slot, decode=False, options={"proto_version": "1", "publication_names": names.publication}
        )
        ((pid, started),) = autocommit(
            logical_postgres_dsn,
            "SELECT s.active_pid, a.backend_start FROM pg_replication_slots s JOIN pg_stat_activity a "
            f"ON a.pid = s.active_pid WHERE s.slot_name = '{names.slot}'",
        )
        begun = time.monotonic()
        with pytest.raises(ChangeStreamInUse) as raised:
            await second.open()

        assert time.monotonic() - begun < 2  # at once, not after wal_sender_timeout
        assert raised.value.holder == pid
        message = str(raised.value)
        assert (
            f"replication slot {names.slot} is held by PostgreSQL process {pid} (since {started:%Y-%m-%d %H:%M:%S} UTC"
            in message
        )
        assert "wal_sender_timeout (1min on this server)" in message  # the server's own value
        assert f"SELECT pg_terminate_backend({pid})" in message

        # What the message says frees it does: the holder's server process ended, the stream starts.
        autocommit(logical_postgres_dsn, f"SELECT pg_terminate_backend({pid})")
        deadline = time.monotonic() + 10
        while autocommit(logical_postgres_dsn, f"SELECT 1 FROM pg_stat_activity WHERE pid = {pid}"):
            assert time.monotonic() < deadline, "the holder did not end"
            await asyncio.sleep(0.05)
        await second.open()
        autocommit(logical_postgres_dsn, insert_of(table, 3))
        transactions: list[object] = []
        deadline = time.monotonic() + 10
        while not transactions and time.monotonic() < deadline:  # other tables' commits come as positions
            transactions.extend(transaction.changes for transaction in (await second.read(1_000, 1.0)).transactions)
        assert transactions == [(RowChange(3),)]
    finally:
        await second.close()
        holder.close()
