"""The user source on PostgreSQL, through aiopg.

Keyset pages on the primary key, parameters always bound, the table name quoted as an identifier.
Odd values (timestamps out of Python's range, profiles that are not JSON) arrive as
`UnreadableValue`s for validation to report, so one bad row never breaks a page. JSON numbers are
parsed exactly, as `int` or `Decimal`, never through float.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import aiopg
import psycopg2
import psycopg2.extensions

from domain.errors import SourceUnavailable
from domain.model import JsonValue, UnreadableValue, User
from ports.user_source import UserSource

DEFAULT_QUERY_TIMEOUT = 30.0
_COLUMNS = "id, username::text, email::text, display_name::text, status::text, created_at, updated_at, profile::text"


def quote_table_name(name: str) -> str:
    """`users` → `"users"`, `app.users` → `"app"."users"`; quotes inside names are doubled."""
    parts = name.split(".", 1)
    if not name or any(part == "" for part in parts):
        raise ValueError(f"invalid table name {name!r}")
    return ".".join('"' + part.replace('"', '""') + '"' for part in parts)


def _timestamp_caster(default: Any) -> Callable[[str | None, Any], datetime | UnreadableValue | None]:
    def cast(value: str | None, cursor: Any) -> datetime | UnreadableValue | None:
        if value is None:
            return None
        if value in ("infinity", "-infinity"):
            return UnreadableValue(value, f"{value!r} is not a point in time")
        try:
            return default(value, cursor)  # type: ignore[no-any-return]
        except (ValueError, OverflowError, psycopg2.DataError):
            return UnreadableValue(value, f"{value!r} is outside the supported years 1..9999")

    return cast


_TIMESTAMPTZ = psycopg2.extensions.new_type(
    psycopg2.extensions.PYDATETIMETZ.values,
    "TIMESTAMPTZ_OR_UNREADABLE",
    _timestamp_caster(psycopg2.extensions.PYDATETIMETZ),
)
_TIMESTAMP = psycopg2.extensions.new_type(
    psycopg2.extensions.PYDATETIME.values,
    "TIMESTAMP_OR_UNREADABLE",
    _timestamp_caster(psycopg2.extensions.PYDATETIME),
)


async def _register_casters(connection: aiopg.Connection) -> None:
    for caster in (_TIMESTAMPTZ, _TIMESTAMP):
        psycopg2.extensions.register_type(caster, connection.raw)


def _as_utc(value: datetime | UnreadableValue | None) -> datetime | UnreadableValue | None:
    # TIMESTAMP WITHOUT TIME ZONE carries no zone: the migration reads it as UTC.
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _exact_int(text: str) -> int | Decimal:
    # Short ints are cheap to check and convert as int; long ones stay Decimal, so that a huge one
    # is still judged by its digits (int() refuses texts over 4300 digits), and "-0" keeps its sign.
    return int(text) if len(text) < 39 and text != "-0" else Decimal(text)


# One decoder for every row: json.loads with hooks builds a new one per call (~2 µs a profile).
_PROFILE_DECODER = json.JSONDecoder(parse_float=Decimal, parse_int=_exact_int)


def parse_profile(text: str | None) -> JsonValue | UnreadableValue:
    """The profile column's JSON text, with exact numbers; unreadable JSON is kept as such."""
    if text is None:
        return None
    try:
        value: JsonValue = _PROFILE_DECODER.decode(text)
    except RecursionError:
        return UnreadableValue(text[:80], "nested too deeply to read")
    except ValueError as error:
        return UnreadableValue(text[:80], f"not valid JSON ({error})")
    return value


def _user_of(row: Sequence[Any]) -> User:
    user_id, username, email, display_name, status, created_at, updated_at, profile = row
    return User(
        id=int(user_id),
        username=username,
        email=email,
        display_name=display_name,
        status=status,
        created_at=_as_utc(created_at),
        updated_at=_as_utc(updated_at),
        profile=parse_profile(profile),
    )


async def create_pool(dsn: str, query_timeout: float = DEFAULT_QUERY_TIMEOUT, maxsize: int = 10) -> aiopg.Pool:
    """The process's one pool. No connection is opened before the first query (minsize 0), so a
    service can start while PostgreSQL is down and answer 503 until it is back."""
    # The client-side timeout fires first; the server-side one is a safety net that also stops
    # the query on the server when the client went away.
    server_timeout_ms = int((query_timeout + 2) * 1000)
    return await aiopg.create_pool(
        dsn,
        minsize=0,
        maxsize=maxsize,
        timeout=query_timeout,
        on_connect=_register_casters,
        # Timestamps are rendered in the session's zone before psycopg2 parses them: in UTC, every
        # instant of years 1..9999 stays inside Python's range.
        options=f"-c statement_timeout={server_timeout_ms} -c timezone=UTC",
    )


class PostgresUserSource(UserSource):
    """Reads users from one table of a PostgreSQL database."""

    def __init__(self, pool: aiopg.Pool, table: str = "users") -> None:
        self._pool = pool
        self._table = quote_table_name(table)
        self._table_name = table

    @asynccontextmanager
    async def _cursor(self) -> AsyncIterator[aiopg.Cursor]:
        try:
            async with self._pool.acquire() as connection, connection.cursor() as cursor:
                yield cursor
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
            # aiopg turns a server-side statement timeout into CancelledError.
            raise SourceUnavailable("PostgreSQL query timed out") from None
        except TimeoutError as error:
            raise SourceUnavailable("PostgreSQL query timed out") from error
        except psycopg2.errors.UndefinedTable as error:
            raise SourceUnavailable(f"source table {self._table_name!r} does not exist") from error
        except (psycopg2.Error, OSError) as error:
            raise SourceUnavailable(f"PostgreSQL is unavailable: {type(error).__name__}") from error

    async def read_page(self, start_user_id: int, limit: int) -> Sequence[User]:
        async with self._cursor() as cursor:
            await cursor.execute(
                f"SELECT {_COLUMNS} FROM {self._table} WHERE id >= %s ORDER BY id LIMIT %s",
                (start_user_id, limit),
            )
            rows = await cursor.fetchall()
        return [_user_of(row) for row in rows]

    async def read_user(self, user_id: int) -> User | None:
        async with self._cursor() as cursor:
            await cursor.execute(f"SELECT {_COLUMNS} FROM {self._table} WHERE id = %s", (user_id,))
            row = await cursor.fetchone()
        return _user_of(row) if row is not None else None

    async def read_users(self, user_ids: Collection[int]) -> Sequence[User]:
        async with self._cursor() as cursor:
            await cursor.execute(
                f"SELECT {_COLUMNS} FROM {self._table} WHERE id = ANY(%s::bigint[]) ORDER BY id",
                (sorted(set(user_ids)),),
            )
            rows = await cursor.fetchall()
        return [_user_of(row) for row in rows]

    async def check_ready(self) -> None:
        async with self._cursor() as cursor:
            await cursor.execute(f"SELECT {_COLUMNS} FROM {self._table} LIMIT 0")

    async def count_users(self, start_user_id: int = 0) -> int:
        async with self._cursor() as cursor:
            await cursor.execute(f"SELECT count(*) FROM {self._table} WHERE id >= %s", (start_user_id,))
            row = await cursor.fetchone()
        return int(row[0])
