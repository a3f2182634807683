"""PostgresUserSource.estimate_user_count on a real server: the planner's rows per page times the
pages now, a small table without statistics counted, a big one guessed by EXPLAIN, a view
explained, a partitioned table summed over its leaves."""

from __future__ import annotations

import psycopg2

from tests.real_adapters import create_source_table, execute, unique_name
from user_migration.adapters.postgres.estimate import EXACT_COUNT_UP_TO_PAGES
from user_migration.adapters.postgres.plan import sql_text
from user_migration.adapters.postgres.source import PostgresUserSource, quote_table_name
from user_migration.domain.convert.mapping import default_mapping

# Rows of the documented layout, made by the server (fast: no round trip per row).
GENERATED = (
    "INSERT INTO {table} (id, username, email, display_name, status, created_at, updated_at) "
    "SELECT g, 'user_' || g, 'user' || g || '@example.com', 'User ' || g, 'active', now(), now() "
    "FROM generate_series(%s::bigint, %s::bigint) AS g"
)


def generate(dsn: str, table: str, first: int, last: int) -> None:
    execute(dsn, GENERATED.format(table=sql_text(quote_table_name(table))), (first, last))


def pages_of(dsn: str, table: str) -> int:
    with psycopg2.connect(dsn) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT pg_relation_size(%s::regclass) / 8192", (quote_table_name(table),))
        pages = int(cursor.fetchone()[0])
    connection.close()
    return pages


def table_with(dsn: str, users: int) -> str:
    table = unique_name("users")
    create_source_table(dsn, table)
    if users:
        generate(dsn, table, 1, users)
    return table


async def test_an_analysed_table_that_grew_since_is_scaled_by_its_pages_now(postgres_dsn, pool):
    table = table_with(postgres_dsn, 2000)
    execute(postgres_dsn, f"ANALYZE {quote_table_name(table)}")
    generate(postgres_dsn, table, 2001, 4000)  # not analysed again: reltuples still says 2,000
    estimate = await PostgresUserSource(pool, default_mapping(table)).estimate_user_count()
    assert 3600 <= estimate <= 4400


async def test_a_small_table_never_analysed_is_counted(postgres_dsn, pool):
    table = table_with(postgres_dsn, 1234)
    assert await PostgresUserSource(pool, default_mapping(table)).estimate_user_count() == 1234


async def test_a_big_table_never_analysed_gets_the_planners_guess_not_a_count(postgres_dsn, pool):
    table = table_with(postgres_dsn, 120_000)
    assert pages_of(postgres_dsn, table) > EXACT_COUNT_UP_TO_PAGES
    estimate = await PostgresUserSource(pool, default_mapping(table)).estimate_user_count()
    # EXPLAIN's guess from the column widths: the right order of magnitude, and no exact count.
    assert 40_000 <= estimate <= 360_000
    assert estimate != 120_000


async def test_a_view_is_explained(postgres_dsn, pool):
    table = table_with(postgres_dsn, 1000)
    execute(postgres_dsn, f"ANALYZE {quote_table_name(table)}")
    view = unique_name("active%users")  # a `%` in the name, through EXPLAIN's text too
    execute(
        postgres_dsn,
        f"CREATE VIEW {sql_text(quote_table_name(view))} AS SELECT * FROM {quote_table_name(table)} WHERE id <= 500",
    )
    estimate = await PostgresUserSource(pool, default_mapping(view)).estimate_user_count()
    assert 400 <= estimate <= 600


async def test_a_partitioned_table_sums_its_leaves(postgres_dsn, pool):
    table = unique_name("users")
    quoted = quote_table_name(table)
    execute(
        postgres_dsn,
        f"CREATE TABLE {quoted} (id BIGINT PRIMARY KEY, username TEXT, email TEXT, display_name TEXT, "
        "status TEXT NOT NULL DEFAULT 'active', created_at TIMESTAMPTZ, updated_at TIMESTAMPTZ, profile JSONB) "
        "PARTITION BY RANGE (id)",
    )
    for index, (low, high) in enumerate(((0, 1000), (1000, 100_000))):
        execute(
            postgres_dsn, f'CREATE TABLE "{table}_{index}" PARTITION OF {quoted} FOR VALUES FROM ({low}) TO ({high})'
        )
    generate(postgres_dsn, table, 1, 3000)
    execute(postgres_dsn, f"ANALYZE {quoted}")
    estimate = await PostgresUserSource(pool, default_mapping(table)).estimate_user_count()
    assert 2700 <= estimate <= 3300


async def test_a_table_name_with_a_percent_sign(postgres_dsn, pool):
    table = unique_name("100%_users")
    create_source_table(postgres_dsn, table)
    generate(postgres_dsn, table, 1, 10)
    source = PostgresUserSource(pool, default_mapping(table))
    assert await source.estimate_user_count() == 10
    execute(postgres_dsn, f"ANALYZE {sql_text(quote_table_name(table))}")
    assert await source.estimate_user_count() == 10
