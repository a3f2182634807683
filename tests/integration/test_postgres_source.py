"""PostgresUserSource on the documented layout against a real PostgreSQL server: dirty rows, types,
quoting, failures."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import aiopg
import psycopg2
import pytest

from tests.factories import valid_user
from tests.real_adapters import create_source_table, execute, insert_users, unique_name
from user_migration.adapters.postgres.source import PostgresUserSource, create_pool, quote_table_name
from user_migration.domain.convert.mapping import default_mapping
from user_migration.domain.convert.rules import user_problems
from user_migration.domain.errors import MappingError, SourceUnavailable
from user_migration.domain.model import Json, SourceUser, UnreadableValue, as_source_user
from user_migration.entrypoints.demo.embedded import free_port

INSERT = (
    "INSERT INTO {table} (id, username, email, display_name, status, created_at, updated_at, profile) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
)


def create_table_variant(dsn: str, table: str, *, status: str, timestamp: str, profile: str) -> None:
    """A source table like the documented one, with some columns of another type."""
    execute(
        dsn,
        f"CREATE TABLE {quote_table_name(table)} ("
        "id BIGINT PRIMARY KEY, username TEXT, email TEXT, display_name TEXT, "
        f"status {status}, created_at {timestamp}, updated_at {timestamp}, profile {profile})",
    )


def insert_row(dsn: str, table: str, user_id: int, **values: Any) -> None:
    """One raw row; every column not given takes a valid value (SQL literals in text form)."""
    row: dict[str, Any] = {
        "username": f"user_{user_id}",
        "email": f"user{user_id}@example.com",
        "display_name": f"User {user_id}",
        "status": "active",
        "created_at": "2021-03-04 05:06:07.890123+00",
        "updated_at": None,
        "profile": None,
    }
    row.update(values)
    execute(
        dsn,
        INSERT.format(table=quote_table_name(table)),
        (
            user_id,
            row["username"],
            row["email"],
            row["display_name"],
            row["status"],
            row["created_at"],
            row["updated_at"],
            row["profile"],
        ),
    )


def source_of(pool: Any, table: str) -> PostgresUserSource:
    return PostgresUserSource(pool, default_mapping(table))


def stored(*users: Any) -> list[SourceUser]:
    """Users of the documented layout as the source hands them over."""
    return [as_source_user(user) for user in users]


def unreadable(value: object) -> UnreadableValue:
    assert isinstance(value, UnreadableValue), repr(value)
    return value


async def test_dirty_rows_arrive_as_users_in_one_page_next_to_valid_ones(postgres_dsn, pool):
    table = unique_name("dirty")
    # status without NOT NULL, so that a NULL status can be stored at all.
    create_table_variant(postgres_dsn, table, status="TEXT", timestamp="TIMESTAMPTZ", profile="JSONB")
    insert_row(postgres_dsn, table, 1)
    insert_row(postgres_dsn, table, 2, username=None, email=None, created_at=None, status=None)
    insert_row(postgres_dsn, table, 3, created_at="infinity")
    insert_row(postgres_dsn, table, 4, created_at="-infinity", updated_at="infinity")
    insert_row(postgres_dsn, table, 5, created_at="10000-01-01 00:00:00+00")
    insert_row(postgres_dsn, table, 6)

    users = await source_of(pool, table).read_page(0, 100)

    assert [user.id for user in users] == [1, 2, 3, 4, 5, 6]
    by_id = {user.id: user for user in users}
    for valid_id in (1, 6):
        assert by_id[valid_id].values["created_at"] == datetime(2021, 3, 4, 5, 6, 7, 890123, tzinfo=UTC)
        assert user_problems(by_id[valid_id]) == []

    bare = by_id[2]
    assert [bare.values[name] for name in ("username", "email", "created_at", "status")] == [None] * 4
    assert user_problems(bare) == [
        "Missing required field 'username'",
        "Missing required field 'email'",
        "Missing required field 'created_at'",
        "Missing required field 'status'",
    ]

    infinite, minus_infinite, too_late = (unreadable(by_id[i].values["created_at"]) for i in (3, 4, 5))
    infinite_update = unreadable(by_id[4].values["updated_at"])
    assert infinite.raw == "infinity"
    assert minus_infinite.raw == "-infinity"
    assert infinite_update.raw == "infinity"
    assert "10000" in too_late.raw

    assert user_problems(by_id[3]) == [f"Invalid created_at: {infinite.reason}"]
    assert user_problems(by_id[4]) == [
        f"Invalid created_at: {minus_infinite.reason}",
        f"Invalid updated_at: {infinite_update.reason}",
    ]
    assert user_problems(by_id[5]) == [f"Invalid created_at: {too_late.reason}"]
    # The single-user read gives the same answer as the page.
    assert await source_of(pool, table).read_user(5) == by_id[5]


async def test_timestamp_without_time_zone_is_read_as_utc(postgres_dsn, monkeypatch):
    table = unique_name("naive")
    create_table_variant(postgres_dsn, table, status="TEXT", timestamp="TIMESTAMP", profile="JSONB")
    insert_row(
        postgres_dsn,
        table,
        1,
        created_at="2020-02-29 23:59:58.123456",
        updated_at="1999-12-31 00:00:00",
    )
    insert_row(postgres_dsn, table, 2, created_at="10000-01-01 00:00:00", updated_at="infinity")
    # The session's own zone (libpq reads PGTZ) must not leak into a zoneless value.
    monkeypatch.setenv("PGTZ", "America/New_York")
    pool = await create_pool(postgres_dsn)
    try:
        user, out_of_range = await source_of(pool, table).read_page(0, 10)
    finally:
        pool.close()
        await pool.wait_closed()

    assert user is not None
    assert user.values["created_at"] == datetime(2020, 2, 29, 23, 59, 58, 123456, tzinfo=UTC)
    assert isinstance(user.values["created_at"], datetime)
    assert user.values["created_at"].utcoffset() == timedelta(0)
    assert user.values["created_at"].replace(tzinfo=None) == datetime(2020, 2, 29, 23, 59, 58, 123456)
    assert user.values["updated_at"] == datetime(1999, 12, 31, tzinfo=UTC)
    assert user_problems(user) == []
    assert unreadable(out_of_range.values["created_at"]).raw == "10000-01-01 00:00:00"
    assert unreadable(out_of_range.values["updated_at"]).raw == "infinity"


async def test_timestamptz_offsets_and_microseconds_come_back_as_the_same_instants(postgres_dsn, monkeypatch):
    table = unique_name("offsets")
    create_source_table(postgres_dsn, table)
    written = {
        1: "2022-06-01 12:00:00.000001+05:30",
        2: "2022-06-01 12:00:00.999999-08:00",
        3: "2022-06-01 12:00:00.5+00",
        4: "2022-06-01T06:30:00.000001Z",
    }
    for user_id, text in written.items():
        insert_row(postgres_dsn, table, user_id, created_at=text, updated_at=text)
    expected = {
        1: datetime(2022, 6, 1, 12, 0, 0, 1, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        2: datetime(2022, 6, 1, 12, 0, 0, 999999, tzinfo=timezone(timedelta(hours=-8))),
        3: datetime(2022, 6, 1, 12, 0, 0, 500000, tzinfo=UTC),
        4: datetime(2022, 6, 1, 6, 30, 0, 1, tzinfo=UTC),
    }

    # A session zone with a half-hour offset, unlike any of the values written.
    monkeypatch.setenv("PGTZ", "Asia/Kathmandu")
    pool = await create_pool(postgres_dsn)
    try:
        users = await source_of(pool, table).read_page(0, 10)
    finally:
        pool.close()
        await pool.wait_closed()

    assert [user.id for user in users] == [1, 2, 3, 4]
    for user in users:
        assert isinstance(user.values["created_at"], datetime)
        assert user.values["created_at"].tzinfo is not None
        assert user.values["created_at"] == expected[user.id]
        assert user.values["updated_at"] == expected[user.id]
        assert user.values["created_at"].astimezone(UTC) == expected[user.id].astimezone(UTC)
        created = user.values["created_at"]
        assert created.microsecond == expected[user.id].astimezone(created.tzinfo).microsecond
    # +05:30 and Z written for the same instant compare equal.
    assert users[0].values["created_at"] == users[3].values["created_at"]


async def test_jsonb_numbers_keep_their_exact_decimal_values(postgres_dsn, pool):
    table = unique_name("numbers")
    create_source_table(postgres_dsn, table)
    big = "12345678901234567890123456789012345678"
    precise = "0.1000000000000000000000000000000000001"
    profile = f'{{"big": {big}, "precise": {precise}, "price": 12.50, "nested": [{{"n": -{big}}}]}}'
    insert_row(postgres_dsn, table, 1, profile=profile)

    user = await source_of(pool, table).read_user(1)

    assert user is not None
    profile = user.values["profile"]
    assert isinstance(profile, Json)
    numbers: Any = profile.value
    assert isinstance(numbers, dict)
    for key in ("big", "precise", "price"):
        assert isinstance(numbers[key], (int, Decimal))
        assert not isinstance(numbers[key], float)
    assert numbers["big"] == int(big)
    assert str(numbers["big"]) == big
    assert numbers["precise"] == Decimal(precise)
    assert str(numbers["precise"]) == precise
    assert numbers["precise"] != Decimal("0.1")  # a float would have lost the trailing 1
    assert numbers["price"] == Decimal("12.50")
    assert str(numbers["price"]) == "12.50"
    assert numbers["nested"][0]["n"] == -int(big)
    assert user_problems(user) == []


async def test_a_text_profile_arrives_as_its_text_for_the_rules_to_judge(postgres_dsn, pool):
    # Values convert by their column's type: only a json/jsonb column is parsed as JSON.
    table = unique_name("textprofile")
    create_table_variant(postgres_dsn, table, status="TEXT", timestamp="TIMESTAMPTZ", profile="TEXT")
    insert_row(postgres_dsn, table, 1, profile="{not json")
    insert_row(postgres_dsn, table, 2, profile='{"plan": "pro", "score": 1.5}')

    first, second = await source_of(pool, table).read_page(0, 10)

    assert first.values["profile"] == "{not json"
    assert second.values["profile"] == '{"plan": "pro", "score": 1.5}'
    assert user_problems(first) == ["Invalid profile: must be a JSON object"]


async def test_a_json_profile_that_is_not_an_object_spares_its_neighbour(postgres_dsn, pool):
    table = unique_name("jsonprofile")
    create_table_variant(postgres_dsn, table, status="TEXT", timestamp="TIMESTAMPTZ", profile="JSON")
    insert_row(postgres_dsn, table, 1, profile="[1, 2.50]")
    insert_row(postgres_dsn, table, 2, profile='{"plan": "pro", "score": 1.5}')

    first, second = await source_of(pool, table).read_page(0, 10)

    assert first.values["profile"] == Json([1, Decimal("2.50")])
    assert user_problems(first) == ["Invalid profile: must be a JSON object"]
    assert second.values["profile"] == Json({"plan": "pro", "score": Decimal("1.5")})
    assert user_problems(second) == []


async def test_a_table_name_with_quotes_spaces_and_capitals_is_quoted(postgres_dsn, pool):
    table = f'Weird "Name" {unique_name("x")}'
    create_source_table(postgres_dsn, table)
    users = [valid_user(i) for i in (1, 2, 3)]
    insert_users(postgres_dsn, table, users)

    source = source_of(pool, table)

    assert list(await source.read_page(0, 10)) == stored(*users)
    assert await source.read_user(2) == stored(users[1])[0]
    assert await source.count_users() == 3


async def test_the_exact_table_name_weird_name_works(postgres_dsn, pool):
    table = 'Weird "Name"'
    # The same name in lower case is another table, which must not be read instead.
    lower = 'weird "name"'
    for name in (table, lower):
        execute(postgres_dsn, f"DROP TABLE IF EXISTS {quote_table_name(name)}")
        create_source_table(postgres_dsn, name)
    insert_users(postgres_dsn, table, [valid_user(7)])
    insert_users(postgres_dsn, lower, [valid_user(8), valid_user(9)])

    source = source_of(pool, table)

    try:
        assert list(await source.read_page(0, 10)) == stored(valid_user(7))
        assert await source.read_user(8) is None
        assert await source.count_users() == 1
    finally:
        for name in (table, lower):
            execute(postgres_dsn, f"DROP TABLE {quote_table_name(name)}")


async def test_a_schema_qualified_table_name(postgres_dsn, pool):
    schema = unique_name("someschema")
    execute(postgres_dsn, f'CREATE SCHEMA "{schema}"')
    create_source_table(postgres_dsn, f"{schema}.users")
    # A public table called `users` with other rows must not be read instead.
    other = unique_name("users")
    create_source_table(postgres_dsn, other)
    insert_users(postgres_dsn, other, [valid_user(99)])
    insert_users(postgres_dsn, f"{schema}.users", [valid_user(1), valid_user(2)])

    source = source_of(pool, f"{schema}.users")

    assert list(await source.read_page(0, 10)) == stored(valid_user(1), valid_user(2))
    assert await source.read_user(2) == stored(valid_user(2))[0]
    assert await source.count_users() == 2


class _RecordingPool:
    """Hands out the real pool's connections, and keeps every query their cursors ran."""

    def __init__(self, pool: aiopg.Pool) -> None:
        self._pool = pool
        self.queries: list[tuple[str, tuple[Any, ...]]] = []

    @contextlib.asynccontextmanager
    async def acquire(self) -> AsyncIterator[Any]:
        async with self._pool.acquire() as connection:
            yield _RecordingConnection(connection, self.queries)


class _RecordingConnection:
    def __init__(self, connection: Any, queries: list[tuple[str, tuple[Any, ...]]]) -> None:
        self._connection = connection
        self._queries = queries

    @contextlib.asynccontextmanager
    async def cursor(self) -> AsyncIterator[Any]:
        async with self._connection.cursor() as cursor:
            yield _RecordingCursor(cursor, self._queries)


class _RecordingCursor:
    def __init__(self, cursor: Any, queries: list[tuple[str, tuple[Any, ...]]]) -> None:
        self._cursor = cursor
        self._queries = queries

    async def execute(self, sql: str, parameters: tuple[Any, ...] = ()) -> None:
        self._queries.append((sql, parameters))
        await self._cursor.execute(sql, parameters)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)


async def test_pages_are_keyset_pages_on_the_primary_key_index(postgres_dsn, pool):
    table = unique_name("big")
    create_source_table(postgres_dsn, table)
    execute(
        postgres_dsn,
        f"INSERT INTO {quote_table_name(table)} (id, username, email, status, created_at) "
        "SELECT g, 'user_' || g, 'user' || g || '@example.com', 'active', now() "
        "FROM generate_series(1, 5000) AS g",
    )
    execute(postgres_dsn, f"ANALYZE {quote_table_name(table)}")
    recording = _RecordingPool(pool)
    source = source_of(recording, table)
    await source.check_ready()  # the mapping is checked once, before the first read
    recording.queries.clear()

    page = await source.read_page(4000, 10)

    assert [user.id for user in page] == list(range(4000, 4010))
    ((sql, parameters),) = recording.queries
    assert "offset" not in sql.lower()
    with psycopg2.connect(postgres_dsn) as connection, connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {sql}", parameters)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    connection.close()
    assert "Index Scan" in plan, plan
    assert f"{table}_pkey" in plan, plan
    assert "Sort" not in plan, plan
    # Later reads do not check the mapping again.
    await source.read_page(4010, 10)
    assert len(recording.queries) == 2


async def test_a_closed_port_makes_every_read_source_unavailable():
    pool = await create_pool(f"postgresql://postgres@127.0.0.1:{free_port()}/postgres", query_timeout=3)
    source = PostgresUserSource(pool, default_mapping())
    try:
        started = time.monotonic()
        with pytest.raises(SourceUnavailable):
            await source.read_page(0, 10)
        with pytest.raises(SourceUnavailable):
            await source.read_user(1)
        with pytest.raises(SourceUnavailable):
            await source.count_users()
        assert time.monotonic() - started < 10
    finally:
        pool.close()
        await pool.wait_closed()


async def test_a_missing_table_is_a_mapping_error_naming_the_table(pool):
    table = unique_name("missing")
    source = source_of(pool, table)
    for read in (source.read_page(0, 10), source.read_user(1), source.count_users()):
        with pytest.raises(MappingError, match=table) as raised:
            await read
        assert not isinstance(raised.value, SourceUnavailable)


async def test_a_slow_query_is_source_unavailable_and_the_pool_stays_usable(postgres_dsn):
    table = unique_name("fast")
    create_source_table(postgres_dsn, table)
    insert_users(postgres_dsn, table, [valid_user(1), valid_user(2)])
    slow = unique_name("slow")
    execute(
        postgres_dsn,
        f"CREATE VIEW {quote_table_name(slow)} AS "
        f"SELECT u.* FROM {quote_table_name(table)} u WHERE pg_sleep(2) IS NOT NULL",
    )
    pool = await create_pool(postgres_dsn, query_timeout=0.5, maxsize=1)
    try:
        slow_source = source_of(pool, slow)
        fast_source = source_of(pool, table)
        for read in (slow_source.read_page(0, 10), slow_source.read_user(1), slow_source.count_users()):
            started = time.monotonic()
            with pytest.raises(SourceUnavailable):
                await read
            assert time.monotonic() - started < 5
        # The one connection of the pool is fine again for a normal table.
        assert [user.id for user in await fast_source.read_page(0, 10)] == [1, 2]
        assert await fast_source.count_users() == 2
    finally:
        pool.close()
        await pool.wait_closed()


async def test_a_timeout_does_not_swallow_a_real_cancellation(postgres_dsn):
    table = unique_name("fast")
    create_source_table(postgres_dsn, table)
    slow = unique_name("slow")
    execute(
        postgres_dsn,
        f"CREATE VIEW {quote_table_name(slow)} AS "
        f"SELECT u.* FROM {quote_table_name(table)} u WHERE pg_sleep(2) IS NOT NULL",
    )
    insert_users(postgres_dsn, table, [valid_user(1)])
    pool = await create_pool(postgres_dsn, query_timeout=5)
    try:
        task = asyncio.create_task(source_of(pool, slow).read_page(0, 10))
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    finally:
        pool.close()
        await pool.wait_closed()
