"""Who holds a replication slot, told so that an operator can act on it.

A stream that died without closing its connection (`kill -9` of a process whose socket the
kernel does not close at once, a host gone, a network cut) leaves its walsender on the server,
holding the slot, until `wal_sender_timeout` passes without word from the client. A new stream
cannot start meanwhile (`replication slot ... is active for PID ...`): it says which process holds
the slot, since when, when its client last answered, and what frees it: that timeout (with the
server's value), or `pg_terminate_backend` of the process.
"""

from __future__ import annotations

import re
from datetime import datetime

import aiopg
import attrs
import psycopg2

from user_migration.adapters.postgres.plan import first_line
from user_migration.domain.errors import ChangeStreamInUse

_HOLDER = """
SELECT s.active_pid, a.backend_start, a.client_addr::text,
       extract(epoch FROM now() - a.backend_start)::float8,
       extract(epoch FROM now() - r.reply_time)::float8,
       current_setting('wal_sender_timeout'),
       (SELECT setting::bigint FROM pg_settings WHERE name = 'wal_sender_timeout')
FROM pg_replication_slots s
LEFT JOIN pg_stat_activity a ON a.pid = s.active_pid
LEFT JOIN pg_stat_replication r ON r.pid = s.active_pid
WHERE s.slot_name = %s
"""
_ACTIVE_FOR = re.compile(r"is active for PID (\d+)")


@attrs.frozen
class SlotHolder:
    """The process holding a slot, as `pg_replication_slots`, `pg_stat_activity` and
    `pg_stat_replication` show it (None where this role may not see it), and the server's
    `wal_sender_timeout` (as PostgreSQL shows it, and in milliseconds)."""

    pid: int | None
    started: datetime | None
    client: str | None
    started_seconds_ago: float | None
    reply_seconds_ago: float | None
    timeout_text: str
    timeout_ms: int


async def slot_holder(pool: aiopg.Pool, slot: str) -> SlotHolder | None:
    """The slot's holder now; None when the slot does not exist."""
    async with pool.acquire() as connection, connection.cursor() as cursor:
        await cursor.execute(_HOLDER, (slot,))
        row = await cursor.fetchone()
    if row is None:
        return None
    pid, started, client, age, reply, timeout_text, timeout_ms = row
    return SlotHolder(
        None if pid is None else int(pid), started, client, age, reply, str(timeout_text), int(timeout_ms or 0)
    )


def _ago(seconds: float | None) -> str:
    return "" if seconds is None else f", {max(0.0, seconds):.0f} s ago"


def in_use_text(slot: str, holder: SlotHolder) -> str:
    """What the operator needs to know of a slot held by another process."""
    pid = holder.pid if holder.pid is not None else "?"
    known = []
    if holder.started is not None:
        known.append(f"since {holder.started:%Y-%m-%d %H:%M:%S %Z}{_ago(holder.started_seconds_ago)}")
    if holder.client:
        known.append(f"client {holder.client}")
    if holder.reply_seconds_ago is not None:
        known.append(f"its client last answered {max(0.0, holder.reply_seconds_ago):.0f} s ago")
    shown = f" ({'; '.join(known)})" if known else ""
    if holder.timeout_ms > 0:
        frees = (
            f"PostgreSQL frees the slot once that process hears nothing from its client for wal_sender_timeout "
            f"({holder.timeout_text} on this server)"
        )
    else:
        frees = "wal_sender_timeout is 0 on this server (off): only the end of that process frees the slot"
    return (
        f"replication slot {slot} is held by PostgreSQL process {pid}{shown}: another sync streams from it, or one "
        f"that died (kill -9, a lost connection) left its server process behind; {frees}, or at once with "
        f"SELECT pg_terminate_backend({pid}) when that sync is surely gone"
    )


async def in_use_error(pool: aiopg.Pool, slot: str, error: BaseException) -> ChangeStreamInUse:
    """The error of a stream that could not start because `slot` is active for another process,
    with who holds it; the server's own words when that cannot be read."""
    try:
        holder = await slot_holder(pool, slot)
    except (psycopg2.Error, OSError, TimeoutError) as failure:
        holder, now = None, f"who holds it cannot be read ({first_line(failure)})"
    else:
        now = "it is free now" if holder is not None else "the slot is gone now"
    if holder is None or holder.pid is None:  # the server's own words, and what is known now
        found = _ACTIVE_FOR.search(str(error))
        return ChangeStreamInUse(
            f"replication slot {slot}: {first_line(error)}; {now}", int(found[1]) if found else None
        )
    return ChangeStreamInUse(in_use_text(slot, holder), holder.pid)
