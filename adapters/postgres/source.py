"""The user source on PostgreSQL, through aiopg: any table, read through a mapping.

Keyset pages on the mapping's integer key, parameters always bound, identifiers always quoted,
the mapping's expressions inserted as `(expr)` (they come from the operator, trusted like
DATABASE_URL). The plan (`adapters.postgres.plan`) is checked against the table once, before the
first read, and names every mismatch in one `MappingError`. Values are converted exactly, by
PostgreSQL type (`adapters.postgres.types`); odd ones arrive as `UnreadableValue`s for validation
to report, so one bad row never breaks a page.
"""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import AsyncIterator, Callable, Collection, Coroutine, Sequence
from contextlib import asynccontextmanager
from typing import Any, Concatenate, ParamSpec, TypeVar

import aiopg
import psycopg2
import psycopg2.errors
import psycopg2.extensions

from user_migration.adapters.postgres.changes import (
    CHANGE_CURSOR_QUERY,
    TABLE_KINDS,
    changed_rows_condition,
    cursor_position,
    cursor_text,
)
from user_migration.adapters.postgres.estimate import (
    EXACT_COUNT_UP_TO_PAGES,
    SIZES_QUERY,
    explained_rows,
    planner_rows,
    stored_pages,
)
from user_migration.adapters.postgres.plan import QueryPlan, first_line, quote_table_name, resolve_plan
from user_migration.adapters.postgres.types import parse_profile
from user_migration.adapters.retry import Backoff, waiter_alive
from user_migration.domain.convert.mapping import SourcePlan, UserMapping
from user_migration.domain.errors import MappingError, SetupError, SourceUnavailable
from user_migration.domain.keys import KeyKind, UserId
from user_migration.domain.model import SourceUser
from user_migration.domain.observe.stall_watch import StallWatch
from user_migration.ports.user_source import UserSource

__all__ = ["DEFAULT_QUERY_TIMEOUT", "PostgresUserSource", "create_pool", "parse_profile", "quote_table_name"]

DEFAULT_QUERY_TIMEOUT = 30.0
POSTGRESQL = "PostgreSQL"
# Rows sampled to split a big table into segments (their boundaries need only be about even).
SAMPLED_ROWS = 200_000


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
        # The texts `adapters.postgres.types` parses: timestamps rendered in UTC (every instant
        # of years 1..9999 then stays inside Python's range), dates as YYYY-MM-DD, intervals in
        # PostgreSQL's own style, whatever the server's or the client's (PGTZ...) defaults.
        options=(
            f"-c statement_timeout={server_timeout_ms} -c timezone=UTC -c datestyle=ISO -c intervalstyle=postgres"
        ),
    )


# Connection failures that are the operator's set-up, not an outage: fixing them takes a person.
_SETUP_FAILURES = re.compile(
    r"password authentication failed|authentication failed|role \".*\" does not exist"
    r"|database \".*\" does not exist|no pg_hba\.conf entry|pg_hba\.conf rejects"
    r"|no password supplied|permission denied for database|does not have CONNECT privilege"
    r"|invalid dsn|invalid connection option|invalid sslmode|invalid integer value",
    re.IGNORECASE,
)
# libpq's "connection to server at "host" (address), port 5432 failed: reason".
_SERVER_AT = re.compile(r'connection to server at "(?P<host>[^"]*)"(?: \([^)]*\))?, port (?P<port>\d+) failed: ')
_SERVER_ON = re.compile(r'connection to server on socket "(?P<socket>[^"]*)" failed: ')
_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^@\s]*@")
_QUERY_CANCELED = "57014"
# SQLSTATE classes of a query the mapping makes wrong: 42 (syntax error or access rule violation:
# an undefined column, table or function), 22 (data exception: an expression failing on a row).
_MAPPING_CLASSES = ("42", "22")


def _scrubbed(text: str) -> str:
    """A text without any password in it (`password=...`, `user:secret@`)."""
    return _URL_PASSWORD.sub(r"\1***@", _PASSWORD.sub(r"\1***", text))


def _dsn_address(dsn: str | None) -> str:
    """`host:port` of a DSN (the first of several), for a message."""
    try:
        parsed = psycopg2.extensions.parse_dsn(dsn or "")
    except psycopg2.Error:
        parsed = {}
    host = (parsed.get("host") or parsed.get("hostaddr") or "localhost").split(",")[0]
    port = (parsed.get("port") or "5432").split(",")[0]
    return f"{host}:{port}"


def dsn_endpoint(dsn: str | None) -> str:
    """`host:port/dbname` of a DSN, for a message: never its user or password."""
    try:
        parsed = psycopg2.extensions.parse_dsn(dsn or "")
    except psycopg2.Error:
        parsed = {}
    database = parsed.get("dbname")
    return _dsn_address(dsn) + (f"/{database}" if database else "")


def _reason(text: str) -> str:
    reason = text.removeprefix("FATAL:").strip()
    return reason[:1].lower() + reason[1:] if reason[:1].isupper() and not reason[1:2].isupper() else reason


def connection_failure(error: BaseException, dsn: str | None) -> SourceUnavailable | SetupError:
    """The error to raise for a failed connection or query: where, and why, never a password."""
    line = _scrubbed(first_line(error))
    address = _dsn_address(dsn)
    if match := _SERVER_AT.match(line):
        address, line = f"{match['host']}:{match['port']}", line[match.end() :]
    elif match := _SERVER_ON.match(line):
        address, line = match["socket"], line[match.end() :]
    reason = _reason(line)
    if _SETUP_FAILURES.search(reason):
        return SetupError(
            [f"PostgreSQL at {address} refused the connection: {reason}"], "PostgreSQL refused the connection"
        )
    return SourceUnavailable(f"PostgreSQL is unavailable at {address}: {reason}")


class _Unanswered(SourceUnavailable):
    """PostgreSQL gave no answer (a timeout, a connection that failed): a read may be tried again."""


_P = ParamSpec("_P")
_R = TypeVar("_R")
_RETRY_BACKOFF = Backoff(base_seconds=0.5, cap_seconds=5.0)


def _patient(
    read: Callable[Concatenate[PostgresUserSource, _P], Coroutine[Any, Any, _R]],
) -> Callable[Concatenate[PostgresUserSource, _P], Coroutine[Any, Any, _R]]:
    """A read tried again while PostgreSQL gives no answer, within the source's patience (reads only: a
    read done twice changes nothing)."""

    @functools.wraps(read)
    async def patiently(source: PostgresUserSource, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        attempt = 0
        while True:
            try:
                return await read(source, *args, **kwargs)
            except _Unanswered:
                attempt += 1
                # The pause before the next attempt waits on PostgreSQL too: a server that refuses
                # each attempt at once is as silent as one that never answers (said, and given up on).
                async with source._waiting_between_attempts():
                    if not source._keeps_waiting():
                        raise
                    await _RETRY_BACKOFF.pause(attempt)

    return patiently


class _KeySql:
    """The key in a query, by its kind: compared and ordered as PostgreSQL orders it (an integer, a
    uuid by its bytes), a text in the order of its bytes (`COLLATE "C"`), which no collation setting
    of the database or the column can change; ids bound as parameters of the key's type."""

    def __init__(self, plan: QueryPlan) -> None:
        self.kind = plan.key_kind
        self.ordered = f'{plan.key} COLLATE "C"' if self.kind is KeyKind.TEXT else plan.key
        self.parameter = "%s::uuid" if self.kind is KeyKind.UUID else "%s"
        self.array = {KeyKind.INTEGER: "%s::bigint[]", KeyKind.UUID: "%s::uuid[]", KeyKind.TEXT: "%s::text[]"}[
            self.kind
        ]

    def user_id(self, value: object) -> UserId:
        """A key value as PostgreSQL returns it, as a user id."""
        return int(str(value)) if self.kind is KeyKind.INTEGER else str(value)

    def between(self, lowest: UserId, highest: UserId | None) -> tuple[str, tuple[UserId, ...]]:
        """The condition `lowest <= key <= highest` (no upper bound at the end of the id space)."""
        lower = f"{self.ordered} >= {self.parameter}"
        if highest is None or highest >= self.kind.last:  # type: ignore[operator]  # ids of one kind
            return lower, (lowest,)
        return f"{lower} AND {self.ordered} <= {self.parameter}", (lowest, highest)


class PostgresUserSource(UserSource):
    """Reads users from one table of a PostgreSQL database, through a mapping."""

    def __init__(
        self, pool: aiopg.Pool, mapping: UserMapping, watch: StallWatch | None = None, patience_seconds: float = 0.0
    ) -> None:
        """`watch`, when given, hears of every query (a stall of PostgreSQL is then said out loud), and a read
        that gets no answer (a timeout, a failed connection) is tried again, with backoff, until PostgreSQL has
        been silent for `patience_seconds` (0: not at all)."""
        if not isinstance(mapping, UserMapping):  # the former `table` argument
            raise TypeError(f"PostgresUserSource takes a UserMapping (default_mapping(table)), not {mapping!r}")
        self._pool = pool
        self._watch = watch
        self._patience_seconds = patience_seconds
        self._endpoint = dsn_endpoint(getattr(pool, "_dsn", None))
        if watch is not None:
            watch.known(POSTGRESQL, self._endpoint)
        self._mapping = mapping
        self._plan: QueryPlan | None = None
        self._resolving = asyncio.Lock()

    @property
    def mapping(self) -> UserMapping:
        """The mapping this source reads through."""
        return self._mapping

    @property
    def key_kind(self) -> KeyKind:
        return self._mapping.key_kind

    @asynccontextmanager
    async def _cursor(self) -> AsyncIterator[aiopg.Cursor]:
        watch = self._watch
        token = None
        if watch is not None:
            token = watch.begin(POSTGRESQL, self._endpoint, f"a query on {self._mapping.table}", waiter_alive())
        outcome: bool | None = None  # answered, got no answer, or neither (cancelled, an error of the caller's)
        reason = "a timeout"
        try:
            async with self._pool.acquire() as connection, connection.cursor() as cursor:
                yield cursor
            outcome = True
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
            # aiopg turns a server-side statement timeout into CancelledError.
            outcome = False
            raise self._timed_out() from None
        except TimeoutError as error:
            outcome = False
            raise self._timed_out() from error
        except psycopg2.Error as error:
            code = error.pgcode or ""
            outcome = bool(code)  # a SQLSTATE is the server's answer; none: the connection failed
            if code == _QUERY_CANCELED:
                raise self._timed_out() from error
            if code.startswith(_MAPPING_CLASSES):
                # The table changed under a checked plan (a column dropped, a type changed), or
                # an expression fails on some row: the mapping no longer fits, nothing is down.
                self._plan = None
                raise MappingError(
                    [f"PostgreSQL refused the source query on {self._mapping.table}: {first_line(error)}"],
                    self._mapping.origin,
                ) from error
            # No SQLSTATE: the connection failed (or a bad DSN); any other: the server's trouble.
            reason = "a failed connection"
            raise self._unanswered(connection_failure(error, getattr(self._pool, "_dsn", None)), code) from error
        except OSError as error:
            outcome, reason = False, "a failed connection"
            raise self._unanswered(connection_failure(error, getattr(self._pool, "_dsn", None))) from error
        finally:
            if watch is not None and token is not None:
                if outcome is False:
                    watch.failed(token, reason)
                else:
                    watch.ended(token, answered=outcome is True)

    def _timed_out(self) -> SourceUnavailable:
        if self._watch is not None:
            self._watch.timed_out(POSTGRESQL)
        return _Unanswered(
            f"PostgreSQL query timed out at {self._endpoint} (within SOURCE_QUERY_TIMEOUT={self._pool.timeout:g} s)"
        )

    @staticmethod
    def _unanswered(failure: SourceUnavailable | SetupError, code: str = "") -> SourceUnavailable | SetupError:
        """A connection that failed without the server's answer (no SQLSTATE) is worth waiting for."""
        if isinstance(failure, SourceUnavailable) and not code:
            return _Unanswered(str(failure))
        return failure

    @asynccontextmanager
    async def _waiting_between_attempts(self) -> AsyncIterator[None]:
        watch = self._watch
        token = None
        if watch is not None:
            token = watch.begin(POSTGRESQL, self._endpoint, f"a query on {self._mapping.table}", waiter_alive())
        try:
            yield
        finally:
            if watch is not None and token is not None:
                watch.ended(token, answered=False)

    def _keeps_waiting(self) -> bool:
        """Whether a read that got no answer is tried again: PostgreSQL answered before in this process (one
        that never did is a set-up to fix, not a pause) and has not been silent for the patience yet."""
        watch = self._watch
        return (
            watch is not None
            and watch.answered_at(POSTGRESQL) is not None
            and watch.silent_seconds(POSTGRESQL) < self._patience_seconds
        )

    async def _resolved(self) -> QueryPlan:
        plan = self._plan
        if plan is not None:
            return plan
        async with self._resolving:
            if self._plan is None:
                # Not kept when it fails: the next call asks again (PostgreSQL may be back, the
                # table fixed).
                try:
                    async with self._cursor() as cursor:
                        self._plan = await resolve_plan(cursor, self._mapping)
                except MappingError:
                    raise
                except (SourceUnavailable, SetupError) as error:
                    if not self._mapping.problems:
                        raise
                    # The file's own problems are known without the source: they are the operator's
                    # to fix whatever the source's state; said with why the rest went unchecked.
                    reasons = "; ".join(error.problems) if isinstance(error, SetupError) else str(error)
                    unchecked = f"not checked against source table {self._mapping.table!r}: {reasons}"
                    raise MappingError([*self._mapping.problems, unchecked], self._mapping.origin) from None
            return self._plan

    async def _rows(self, where: str, parameters: tuple[Any, ...]) -> list[SourceUser]:
        plan = await self._resolved()
        async with self._cursor() as cursor:
            await cursor.execute(f"SELECT {plan.select_list} FROM {plan.table} {where}", parameters)
            rows = await cursor.fetchall()
        return [plan.user(row) for row in rows]

    @_patient
    async def read_page(self, start_user_id: UserId, limit: int, highest: UserId | None = None) -> Sequence[SourceUser]:
        plan = await self._resolved()
        keys = _KeySql(plan)
        where, parameters = keys.between(start_user_id, highest)
        return await self._rows(f"WHERE {where} ORDER BY {keys.ordered} LIMIT %s", (*parameters, limit))

    @_patient
    async def segment_boundaries(self, segments: int) -> list[UserId]:
        plan = await self._resolved()
        fractions = [part / segments for part in range(1, segments)]
        if not fractions:
            return []
        keys = _KeySql(plan)
        # Uuids come back as text: psycopg2 reads a uuid[] as one string.
        cast = "" if keys.kind is KeyKind.INTEGER else "::text[]"
        query = f"SELECT (percentile_disc(%s::float8[]) WITHIN GROUP (ORDER BY {keys.ordered})){cast} FROM {plan.table}"
        async with self._cursor() as cursor:
            # A big table is sampled (a few hundred thousand rows, in whole pages: cheap); a small
            # one, or a view (no sampling there), is read whole: this runs once per plan.
            await cursor.execute("SELECT reltuples FROM pg_class WHERE oid = to_regclass(%s)", (plan.table,))
            row = await cursor.fetchone()
            rows = float(row[0]) if row is not None and row[0] is not None else -1.0
            sampled = f" TABLESAMPLE SYSTEM ({SAMPLED_ROWS * 100.0 / rows:.6f})" if rows > SAMPLED_ROWS else ""
            await cursor.execute(query + sampled, (fractions,))
            found = await cursor.fetchone()
        values = found[0] if found is not None and found[0] is not None else []
        return sorted({keys.user_id(value) for value in values if value is not None})

    @_patient
    async def read_user(self, user_id: UserId) -> SourceUser | None:
        plan = await self._resolved()
        users = await self._rows(f"WHERE {plan.key} = {_KeySql(plan).parameter}", (user_id,))
        return users[0] if users else None

    @_patient
    async def read_users(self, user_ids: Collection[UserId]) -> Sequence[SourceUser]:
        if not user_ids:
            return []
        plan = await self._resolved()
        keys = _KeySql(plan)
        return await self._rows(
            f"WHERE {plan.key} = ANY({keys.array}) ORDER BY {keys.ordered}",
            (sorted(set(user_ids)),),
        )

    @_patient
    async def existing_user_ids(self, user_ids: Collection[UserId]) -> set[UserId]:
        if not user_ids:
            return set()
        plan = await self._resolved()
        keys = _KeySql(plan)
        async with self._cursor() as cursor:
            await cursor.execute(
                f"SELECT {plan.key} FROM {plan.table} WHERE {plan.key} = ANY({keys.array})",
                (sorted(set(user_ids)),),
            )
            rows = await cursor.fetchall()
        return {keys.user_id(row[0]) for row in rows}

    @_patient
    async def change_cursor(self) -> str:
        await self._resolved()
        async with self._cursor() as cursor:
            await cursor.execute(CHANGE_CURSOR_QUERY, (quote_table_name(self._mapping.table),))
            row = await cursor.fetchone()
        position, kind = int(row[0]), str(row[1])
        if kind not in TABLE_KINDS:
            raise SetupError(
                [
                    f"source {self._mapping.table!r} is not a table (relkind {kind!r}): changes are told by "
                    "the rows' xmin, which only tables have; map the table the view reads from"
                ],
                "the source cannot tell its changes",
            )
        return cursor_text(position)

    @_patient
    async def read_changed_page(
        self, since: str | None, start_user_id: UserId, limit: int, highest: UserId | None = None
    ) -> Sequence[SourceUser]:
        saved = cursor_position(since)
        if saved is None:
            return await self.read_page(start_user_id, limit, highest)
        async with self._cursor() as cursor:
            await cursor.execute("SELECT txid_snapshot_xmin(txid_current_snapshot())")
            row = await cursor.fetchone()
        changed = changed_rows_condition(saved, int(row[0]))
        if changed is None:  # too old to tell: every row
            return await self.read_page(start_user_id, limit, highest)
        keys = _KeySql(await self._resolved())
        where, parameters = keys.between(start_user_id, highest)
        return await self._rows(f"WHERE {where} AND {changed} ORDER BY {keys.ordered} LIMIT %s", (*parameters, limit))

    @_patient
    async def count_users(self, start_user_id: UserId | None = None) -> int:
        plan = await self._resolved()
        keys = _KeySql(plan)
        start = plan.key_kind.first if start_user_id is None else start_user_id
        async with self._cursor() as cursor:
            await cursor.execute(
                f"SELECT count(*) FROM {plan.table} WHERE {keys.ordered} >= {keys.parameter}", (start,)
            )
            row = await cursor.fetchone()
        return int(row[0])

    @_patient
    async def estimate_user_count(self) -> int:
        plan = await self._resolved()
        async with self._cursor() as cursor:
            await cursor.execute(SIZES_QUERY, {"relation": quote_table_name(self._mapping.table)})
            stored = stored_pages(await cursor.fetchall())
            rows = planner_rows(stored) if stored else None
            small = bool(stored) and sum(now for _, _, now in stored) <= EXACT_COUNT_UP_TO_PAGES
            if rows is None and not small:
                # A view, or a big table never analysed: what the planner expects of it.
                await cursor.execute(f"EXPLAIN (FORMAT JSON) SELECT 1 FROM {plan.table}", ())
                rows = explained_rows((await cursor.fetchone())[0])
        # A small table without statistics is counted: a matter of milliseconds.
        return rows if rows is not None else await self.count_users()

    async def check_ready(self) -> None:
        plan = await self._resolved()
        async with self._cursor() as cursor:
            await cursor.execute(f"SELECT {plan.select_list} FROM {plan.table} LIMIT %s", (0,))

    async def describe(self) -> SourcePlan:
        return (await self._resolved()).source_plan
