"""The PostgreSQL source's change cursor (xmin polling) on the real server."""

from __future__ import annotations

import psycopg2
import pytest

from tests.factories import valid_user
from tests.real_adapters import create_source_table, execute, insert_users, unique_name
from tests.real_adapters import quote_table_name as quoted
from user_migration.adapters.postgres.changes import changed_rows_condition, cursor_position, cursor_text
from user_migration.adapters.postgres.source import PostgresUserSource
from user_migration.domain.convert.mapping import default_mapping
from user_migration.domain.errors import SetupError


@pytest.fixture
def table(postgres_dsn: str) -> str:
    name = unique_name("users")
    create_source_table(postgres_dsn, name)
    insert_users(postgres_dsn, name, [valid_user(i) for i in range(1, 21)])
    return name


async def changed_ids(source: PostgresUserSource, since: str | None) -> list[int]:
    return [user.id for user in await source.read_changed_page(since, 0, 1000)]


async def test_rows_changed_or_inserted_after_the_cursor_are_told(pool, postgres_dsn, table):
    source = PostgresUserSource(pool, default_mapping(table))
    cursor = await source.change_cursor()
    assert await changed_ids(source, cursor) == []
    execute(postgres_dsn, f"UPDATE {quoted(table)} SET email = 'new@example.com' WHERE id = 7")
    insert_users(postgres_dsn, table, [valid_user(0)])
    execute(postgres_dsn, f"DELETE FROM {quoted(table)} WHERE id = 9")
    assert await changed_ids(source, cursor) == [0, 7]
    assert len(await changed_ids(source, None)) == 20  # no cursor: every row
    later = await source.change_cursor()
    assert await changed_ids(source, later) == []
    page = await source.read_changed_page(cursor, 1, 1)
    assert [user.id for user in page] == [7]


async def test_a_transaction_that_commits_after_a_later_one_is_not_missed(pool, postgres_dsn, table):
    """The classic miss of an `updated_at > watermark` poll: T1 starts, T2 starts and commits, a
    poll runs (and moves its watermark past T2), T1 commits. Its row must still come."""
    source = PostgresUserSource(pool, default_mapping(table))
    first = await source.change_cursor()
    slow = psycopg2.connect(postgres_dsn)
    try:
        with slow.cursor() as cursor:
            cursor.execute(f"UPDATE {quoted(table)} SET email = 'slow@example.com' WHERE id = 3")  # T1, open
        execute(postgres_dsn, f"UPDATE {quoted(table)} SET email = 'fast@example.com' WHERE id = 4")  # T2
        second = await source.change_cursor()  # taken while T1 is running
        assert await changed_ids(source, first) == [4]  # T1 is not visible yet
        slow.commit()
    finally:
        slow.close()
    assert 3 in await changed_ids(source, second)


async def test_a_view_cannot_tell_its_changes(pool, postgres_dsn, table):
    view = unique_name("users_view")
    execute(postgres_dsn, f"CREATE VIEW {quoted(view)} AS SELECT * FROM {quoted(table)}")
    source = PostgresUserSource(pool, default_mapping(view))
    with pytest.raises(SetupError, match="not a table"):
        await source.change_cursor()


async def test_existing_user_ids(pool, table):
    source = PostgresUserSource(pool, default_mapping(table))
    assert await source.existing_user_ids([1, 5, 21, 99, 5]) == {1, 5}
    assert await source.existing_user_ids([]) == set()


def test_the_condition_across_a_wraparound():
    epoch = 1 << 32
    assert changed_rows_condition(5 * epoch + 100, 5 * epoch + 900) == "xmin::text::bigint >= 100"
    across = changed_rows_condition(5 * epoch + 4_000_000_000, 6 * epoch + 50)
    assert across == "(xmin::text::bigint >= 4000000000 OR xmin::text::bigint < 50)"
    assert changed_rows_condition(5 * epoch, 7 * epoch) is None  # two wraparounds: read every row
    assert changed_rows_condition(6 * epoch, 5 * epoch) is None  # a cursor of another server
    assert cursor_position(cursor_text(42)) == 42
    assert cursor_position("seq:3") is None
    assert cursor_position(None) is None
