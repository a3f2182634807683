"""The source's side of change data capture: the publication and the replication slot, checked,
created, dropped, and watched (`cdc setup`, `cdc teardown`, the slot's retained WAL and lag).

Everything here is plain SQL on an ordinary connection (`pg_create_logical_replication_slot`,
`CREATE PUBLICATION`, `pg_replication_slots`); only the stream itself needs a replication
connection (`adapters.postgres.replication`). Setup names every missing setting or privilege at
once, before it changes anything.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiopg
import attrs
import psycopg2

from user_migration.adapters.postgres.pgoutput import lsn_of
from user_migration.adapters.postgres.plan import first_line, quote_identifier, quote_table_name
from user_migration.adapters.postgres.source import connection_failure
from user_migration.domain.convert.mapping import UserMapping
from user_migration.domain.errors import SetupError, SourceUnavailable
from user_migration.domain.sync.row_changes import StreamHealth

PLUGIN = "pgoutput"
_RELEASE_CHECKS = 20
_RELEASE_PAUSE_SECONDS = 0.1
# A TRUNCATE is not published: the stream could only carry it as "delete every user".
PUBLISHED = "insert, update, delete"


@attrs.frozen
class CaptureNames:
    """The replication slot and the publication of the users table."""

    slot: str = "user_migration"
    publication: str = "user_migration"


@attrs.frozen
class CaptureSetup:
    """What `cdc setup` did: what it created, and what was there already."""

    created: tuple[str, ...]
    existing: tuple[str, ...]
    slot_position: int


@attrs.frozen
class CaptureTeardown:
    """What `cdc teardown` dropped, and what was not there."""

    dropped: tuple[str, ...]
    absent: tuple[str, ...]


@asynccontextmanager
async def _cursor(pool: aiopg.Pool) -> AsyncIterator[aiopg.Cursor]:
    try:
        async with pool.acquire() as connection, connection.cursor() as cursor:
            yield cursor
    except (TimeoutError, asyncio.CancelledError) as error:
        task = asyncio.current_task()
        if isinstance(error, asyncio.CancelledError) and task is not None and task.cancelling():
            raise
        raise SourceUnavailable("PostgreSQL query timed out") from None
    except psycopg2.Error as error:
        if error.pgcode and error.pgcode.startswith("42"):  # insufficient privilege, undefined object...
            raise SetupError([f"PostgreSQL refused: {first_line(error)}"], "change capture is not set up") from error
        raise connection_failure(error, getattr(pool, "_dsn", None)) from error
    except OSError as error:
        raise connection_failure(error, getattr(pool, "_dsn", None)) from error


async def _one(cursor: aiopg.Cursor, sql: str, parameters: tuple[Any, ...] = ()) -> Any:
    await cursor.execute(sql, parameters)
    return await cursor.fetchone()


_TABLE = """
SELECT n.nspname, c.relname, c.relkind::text, c.relreplident::text, pg_get_userbyid(c.relowner),
       pg_has_role(c.relowner, 'USAGE'),
       (SELECT array_agg(a.attname::text) FROM pg_index i JOIN pg_attribute a
          ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
        WHERE i.indrelid = c.oid AND (i.indisprimary AND c.relreplident = 'd' OR i.indisreplident))
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass(%s)
"""


async def _table_problems(
    cursor: aiopg.Cursor, mapping: UserMapping, names: CaptureNames, publication_exists: bool
) -> list[str]:
    table = quote_table_name(mapping.table)
    found = await _one(cursor, _TABLE, (table,))
    if found is None:
        return [f"table {mapping.table} does not exist"]
    _, _, kind, identity, owner, owned, identity_columns = found
    problems = []
    if kind not in ("r", "p"):
        problems.append(f"{mapping.table} is not a table (a view has no changes to stream): point the mapping at it")
    if identity == "n" or (identity in ("d", "i") and not identity_columns):
        problems.append(
            f"table {mapping.table} has no replica identity (no primary key): PostgreSQL refuses its updates and "
            f"deletes once it is published; add a primary key on {mapping.key}, or "
            f"ALTER TABLE {table} REPLICA IDENTITY FULL"
        )
    elif identity != "f" and mapping.key not in (identity_columns or []):
        problems.append(
            f"the replica identity of {mapping.table} ({', '.join(identity_columns)}) leaves out the key "
            f"{mapping.key}: a delete would not tell which user went; ALTER TABLE {table} REPLICA IDENTITY FULL"
        )
    if not publication_exists and not owned:
        problems.append(
            f"publication ownership: the role does not own table {mapping.table} (its owner is {owner}), and "
            f"CREATE PUBLICATION ... FOR TABLE needs its owner: run `user-migration cdc setup` as {owner}, "
            f"or have {owner} run CREATE PUBLICATION {quote_identifier(names.publication)} FOR TABLE {table} "
            f"WITH (publish = '{PUBLISHED}')"
        )
    return problems


async def _publication_problems(cursor: aiopg.Cursor, mapping: UserMapping, names: CaptureNames) -> list[str]:
    found = await _one(
        cursor,
        "SELECT p.pubinsert AND p.pubupdate AND p.pubdelete, p.pubtruncate, pg_has_role(p.pubowner, 'USAGE'),"
        " EXISTS (SELECT 1 FROM pg_publication_rel r WHERE r.prpubid = p.oid AND r.prrelid = to_regclass(%s))"
        " OR p.puballtables FROM pg_publication p WHERE p.pubname = %s",
        (quote_table_name(mapping.table), names.publication),
    )
    if found is None:
        return []
    publishes_changes, publishes_truncate, _, has_table = found
    problems = []
    if not has_table:
        problems.append(
            f"publication {names.publication} exists but does not publish {mapping.table}: "
            f"ALTER PUBLICATION {quote_identifier(names.publication)} ADD TABLE {quote_table_name(mapping.table)} "
            "(as its owner), or set CDC_PUBLICATION to another name"
        )
    if not publishes_changes or publishes_truncate:
        problems.append(
            f"publication {names.publication} must publish exactly '{PUBLISHED}': "
            f"ALTER PUBLICATION {quote_identifier(names.publication)} SET (publish = '{PUBLISHED}')"
        )
    return problems


async def _server_problems(
    cursor: aiopg.Cursor, names: CaptureNames, slot_exists: bool, publication_exists: bool
) -> list[str]:
    version, wal_level, slots, senders, used_slots, role, replication, can_create = await _one(
        cursor,
        "SELECT current_setting('server_version_num')::int,"
        " current_setting('wal_level'), current_setting('max_replication_slots')::int,"
        " current_setting('max_wal_senders')::int, (SELECT count(*) FROM pg_replication_slots), current_user,"
        " (SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user)"
        " OR EXISTS (SELECT 1 FROM pg_roles r WHERE r.rolname = 'rds_replication'"
        "   AND pg_has_role(current_user, r.oid, 'MEMBER')),"
        " has_database_privilege(current_database(), 'CREATE')",
    )
    problems = []
    if version < 130000:  # pg_visible_in_snapshot, pg_current_xact_id, max_slot_wal_keep_size
        problems.append(f"PostgreSQL {version // 10000} is too old: change capture needs PostgreSQL 13 or newer")
    if wal_level != "logical":
        problems.append(
            f"wal_level is {wal_level}, logical replication needs wal_level = logical: set it in postgresql.conf "
            "(or ALTER SYSTEM SET wal_level = logical; on RDS: rds.logical_replication = 1) and restart PostgreSQL"
        )
    if not replication:
        problems.append(
            f"REPLICATION: role {role} may not use replication slots: ALTER ROLE {quote_identifier(role)} REPLICATION "
            f"(as a superuser; on RDS: GRANT rds_replication TO {quote_identifier(role)})"
        )
    if not slot_exists and used_slots >= slots:
        problems.append(
            f"max_replication_slots is {slots} and {used_slots} slot(s) exist: raise max_replication_slots "
            "(then restart PostgreSQL) or drop a slot nobody uses"
        )
    if senders < 1:
        problems.append("max_wal_senders is 0: the stream needs one; raise it and restart PostgreSQL")
    if not can_create and not publication_exists:
        problems.append(
            f"role {role} lacks CREATE on the database, which CREATE PUBLICATION needs: "
            f"GRANT CREATE ON DATABASE <database> TO {quote_identifier(role)}"
        )
    return problems


async def _slot(cursor: aiopg.Cursor, slot: str) -> tuple[str, str, bool, int | None, int | None] | None:
    """plugin, database, active, active pid, confirmed position of the slot; None when absent."""
    found = await _one(
        cursor,
        "SELECT plugin::text, database::text, active, active_pid, confirmed_flush_lsn::text"
        " FROM pg_replication_slots WHERE slot_name = %s",
        (slot,),
    )
    if found is None:
        return None
    plugin, database, active, pid, confirmed = found
    return plugin, database, active, pid, None if confirmed is None else lsn_of(confirmed)


async def _exists(cursor: aiopg.Cursor, names: CaptureNames) -> tuple[bool, bool]:
    publication = await _one(cursor, "SELECT 1 FROM pg_publication WHERE pubname = %s", (names.publication,))
    return publication is not None, await _slot(cursor, names.slot) is not None


async def change_capture_problems(pool: aiopg.Pool, mapping: UserMapping, names: CaptureNames) -> list[str]:
    """Every setting, privilege and object that keeps change capture from working; [] when none."""
    async with _cursor(pool) as cursor:
        publication_exists, slot_exists = await _exists(cursor, names)
        problems = await _server_problems(cursor, names, slot_exists, publication_exists)
        problems += await _table_problems(cursor, mapping, names, publication_exists)
        problems += await _publication_problems(cursor, mapping, names)
        slot = await _slot(cursor, names.slot)
        database = await _one(cursor, "SELECT current_database()")
    if slot is not None and (slot[0] != PLUGIN or slot[1] != database[0]):
        problems.append(
            f"replication slot {names.slot} exists for plugin {slot[0]} in database {slot[1]}: it is not this "
            f"tool's; set CDC_SLOT to another name"
        )
    return problems


async def set_up_change_capture(
    pool: aiopg.Pool, mapping: UserMapping, names: CaptureNames, before_slot: Callable[[], Awaitable[None]]
) -> CaptureSetup:
    """Create the publication and the slot where missing (`before_slot` is awaited right before a
    slot is created); raises `SetupError` listing every problem, and changes nothing then."""
    problems = await change_capture_problems(pool, mapping, names)
    if problems:
        raise SetupError(problems, "change capture cannot be set up")
    created: list[str] = []
    existing: list[str] = []
    async with _cursor(pool) as cursor:
        publication_exists, slot_exists = await _exists(cursor, names)
        if publication_exists:
            existing.append(f"publication {names.publication}")
        else:
            await cursor.execute(
                f"CREATE PUBLICATION {quote_identifier(names.publication)} FOR TABLE "
                f"{quote_table_name(mapping.table)} WITH (publish = '{PUBLISHED}')"
            )
            created.append(f"publication {names.publication}")
        if slot_exists:
            existing.append(f"replication slot {names.slot}")
        else:
            await before_slot()
            await cursor.execute("SELECT pg_create_logical_replication_slot(%s, %s)", (names.slot, PLUGIN))
            created.append(f"replication slot {names.slot}")
        slot = await _slot(cursor, names.slot)
    assert slot is not None
    assert slot[4] is not None
    return CaptureSetup(tuple(created), tuple(existing), slot[4])


async def tear_down_change_capture(pool: aiopg.Pool, names: CaptureNames) -> CaptureTeardown:
    """Drop the slot (which frees the WAL it holds) and the publication, and check both are gone;
    raises `SetupError` when the slot is in use (a sync still streams from it)."""
    dropped: list[str] = []
    absent: list[str] = []
    async with _cursor(pool) as cursor:
        slot = await _slot(cursor, names.slot)
        for _ in range(_RELEASE_CHECKS):  # a sync that just stopped: its server process ends a moment later
            if slot is None or not slot[2]:
                break
            await asyncio.sleep(_RELEASE_PAUSE_SECONDS)
            slot = await _slot(cursor, names.slot)
        if slot is not None and slot[2]:
            raise SetupError(
                [f"replication slot {names.slot} is in use by process {slot[3]}: stop the sync that streams from it"],
                "change capture cannot be torn down",
            )
        if slot is None:
            absent.append(f"replication slot {names.slot}")
        else:
            await cursor.execute("SELECT pg_drop_replication_slot(%s)", (names.slot,))
            dropped.append(f"replication slot {names.slot}")
        publication_exists, _ = await _exists(cursor, names)
        if publication_exists:
            await cursor.execute(f"DROP PUBLICATION {quote_identifier(names.publication)}")
            dropped.append(f"publication {names.publication}")
        else:
            absent.append(f"publication {names.publication}")
        publication_left, slot_left = await _exists(cursor, names)
    left = [what for what, there in (("publication", publication_left), ("replication slot", slot_left)) if there]
    if left:  # someone made them again meanwhile
        raise SetupError([f"{what} still exists after teardown" for what in left], "change capture is not torn down")
    return CaptureTeardown(tuple(dropped), tuple(absent))


async def slot_position(pool: aiopg.Pool, slot: str) -> int | None:
    """The slot's confirmed position (every change before it was stored); None without a slot.
    Raises `SetupError` for a slot the server invalidated (it fell further behind than
    `max_slot_wal_keep_size`): the WAL it needed is gone, the stream cannot go on."""
    async with _cursor(pool) as cursor:
        found = await _slot(cursor, slot)
        status = await _one(cursor, "SELECT wal_status FROM pg_replication_slots WHERE slot_name = %s", (slot,))
    if status is not None and status[0] == "lost":
        raise SetupError(
            [
                f"replication slot {slot} was invalidated (wal_status lost: it fell further behind than "
                "max_slot_wal_keep_size, and the WAL it needed is gone): run `user-migration cdc teardown`, "
                "`user-migration cdc setup`, and the next sync backfills again"
            ],
            "the change stream cannot go on",
        )
    return None if found is None else found[4]


async def slot_health(pool: aiopg.Pool, slot: str) -> StreamHealth | None:
    """The WAL the slot keeps on the source's disk and the WAL since its confirmed position; None
    without a slot."""
    async with _cursor(pool) as cursor:
        found = await _one(
            cursor,
            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint,"
            " pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint, active"
            " FROM pg_replication_slots WHERE slot_name = %s",
            (slot,),
        )
    if found is None:
        return None
    retained, lag, active = found
    return StreamHealth(int(retained or 0), int(lag or 0), bool(active))


# Which of these 32-bit transaction ids a snapshot taken now does not see yet: each is widened to
# 64 bits by the epoch of the next id (a transaction that began before now is below it).
_NOT_VISIBLE = """
WITH s AS (SELECT pg_current_snapshot() AS snap, pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS next)
SELECT x.xid FROM s, unnest(%s::bigint[]) AS x(xid), LATERAL (
  SELECT ((s.next & -4294967296) | x.xid) AS guess) g
WHERE NOT pg_visible_in_snapshot(
  (CASE WHEN g.guess >= s.next THEN g.guess - 4294967296 ELSE g.guess END)::text::xid8, s.snap)
"""
_VISIBILITY_PAUSE_SECONDS = 0.01


async def visible(pool: aiopg.Pool, transaction_ids: list[int], wait_seconds: float) -> bool:
    """Whether every one of these committed transactions is seen by any read that starts now,
    waiting up to `wait_seconds`. A commit reaches the WAL, and so the stream, a moment before
    other sessions see it (much longer while synchronous replication waits for a standby): a row
    read again before then would be its older state, written with the newer change's version."""
    waiting = sorted(set(transaction_ids))
    deadline = asyncio.get_running_loop().time() + wait_seconds
    async with _cursor(pool) as cursor:
        while waiting:
            await cursor.execute(_NOT_VISIBLE, (waiting,))
            waiting = [row[0] for row in await cursor.fetchall()]
            if waiting and asyncio.get_running_loop().time() >= deadline:
                return False
            if waiting:
                await asyncio.sleep(_VISIBILITY_PAUSE_SECONDS)
    return True


# An id newer than every transaction's that runs now (this one's, which ends at once); then
# whether every transaction below it has ended.
_NEWEST = "SELECT pg_current_xact_id()::text::bigint"
_ENDED_BELOW = "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint >= %s"


async def running_transactions_ended(pool: aiopg.Pool, wait_seconds: float) -> bool:
    """Wait (up to `wait_seconds`) until every transaction running now has ended. Afterwards a
    read sees every commit that reached the WAL before: one whose commit is written but not yet
    visible (for as long as synchronous replication waits for a standby) is still running."""
    deadline = asyncio.get_running_loop().time() + wait_seconds
    async with _cursor(pool) as cursor:
        newest = await _one(cursor, _NEWEST)
        while not (await _one(cursor, _ENDED_BELOW, (newest[0],)))[0]:
            if asyncio.get_running_loop().time() >= deadline:
                return False
            await asyncio.sleep(_VISIBILITY_PAUSE_SECONDS)
    return True
