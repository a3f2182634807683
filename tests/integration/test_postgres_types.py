"""Every PostgreSQL type through PostgresUserSource, against a real server: the exact Python value
each one arrives as, odd values included, and round trips of random values."""

from __future__ import annotations

import asyncio
import itertools
import math
import struct
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import aiopg
import psycopg2
import psycopg2.extras
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.real_adapters import execute, json_text, unique_name
from user_migration.adapters.postgres.source import PostgresUserSource, create_pool, quote_table_name
from user_migration.domain.convert.mapping import UserMapping
from user_migration.domain.model import Json, JsonValue, SourceUser, UnreadableValue

# column name -> SQL type, in table order
COLUMNS = {
    "c_int2": "smallint",
    "c_int4": "integer",
    "c_int8": "bigint",
    "c_numeric": "numeric",
    "c_numeric_scaled": "numeric(12, 4)",
    "c_real": "real",
    "c_double": "double precision",
    "c_bool": "boolean",
    "c_bytea": "bytea",
    "c_json": "json",
    "c_jsonb": "jsonb",
    "c_ts": "timestamp",
    "c_tstz": "timestamptz",
    "c_date": "date",
    "c_text": "text",
    "c_varchar": "varchar(20)",
    "c_char": "char(4)",
    "c_uuid": "uuid",
    "c_inet": "inet",
    "c_cidr": "cidr",
    "c_macaddr": "macaddr",
    "c_enum": "{mood}",
    "c_time": "time",
    "c_timetz": "timetz",
    "c_interval": "interval",
    "c_money": "money",
    "c_point": "point",
    "c_int_domain": "{int_domain}",
    "c_text_domain": "{text_domain}",
    "c_json_domain": "{json_domain}",
    "c_char_domain": "{char_domain}",
    "a_int2": "smallint[]",
    "a_int4": "integer[]",
    "a_int8": "bigint[]",
    "a_numeric": "numeric[]",
    "a_real": "real[]",
    "a_double": "double precision[]",
    "a_bool": "boolean[]",
    "a_json": "json[]",
    "a_jsonb": "jsonb[]",
    "a_ts": "timestamp[]",
    "a_tstz": "timestamptz[]",
    "a_date": "date[]",
    "a_bytea": "bytea[]",
    "a_text": "text[]",
    "a_varchar": "varchar(10)[]",
    "a_char": "char(3)[]",
    "a_uuid": "uuid[]",
    "a_inet": "inet[]",
    "a_enum": "{mood}[]",
    "a_interval": "interval[]",
    "a_2d": "integer[][]",
    "a_int_domain": "{int_domain}[]",
    "a_json_domain": "{json_domain}[]",
    "a_char_domain": "{char_domain}[]",
}

TYPICAL = {
    "c_int2": "-32768",
    "c_int4": "2147483647",
    "c_int8": "-9223372036854775808",
    "c_numeric": "12345678901234567890.123456789012345678901234567890",
    "c_numeric_scaled": "12.5",
    "c_real": "0.1",
    "c_double": "1e-7",
    "c_bool": "true",
    "c_bytea": "\\x00ff10",
    "c_json": '{"b": 1.50, "a": [1, null, true], "a": "dup"}',
    "c_jsonb": '{"big": 123456789012345678901234567890123456789, "small": 0.000000000000000000001, "s": "é"}',
    "c_ts": "2020-02-29 23:59:58.123456",
    "c_tstz": "2022-06-01 12:00:00.000001+05:30",
    "c_date": "2024-02-29",
    "c_text": "  tab\there, ünïcode 🎉  ",
    "c_varchar": "short",
    "c_char": "ab",
    "c_uuid": "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11",
    "c_inet": "192.168.0.1",
    "c_cidr": "10.0.0.0/8",
    "c_macaddr": "08:00:2B:01:02:03",
    "c_enum": "happy",
    "c_time": "04:05:06.789",
    "c_timetz": "04:05:06+02",
    "c_interval": "1 year 2 mons 3 days 04:05:06.5",
    "c_money": "1234.5",
    "c_point": "(1.5,-2)",
    "c_int_domain": "42",
    "c_text_domain": "domain text",
    "c_json_domain": '{"n": 1}',
    "c_char_domain": "xy",
    "a_int2": "{1,NULL,-3}",
    "a_int4": "{}",
    "a_int8": "{9223372036854775807}",
    "a_numeric": "{1.10,NaN,NULL,-0}",
    "a_real": "{0.1,Infinity,NULL}",
    "a_double": "{1e-7,-0,NaN}",
    "a_bool": "{true,false,NULL}",
    "a_json": '{"{\\"x\\": 1.0}","[1,2]",NULL,"null"}',
    "a_jsonb": '{"{\\"x\\": 10000000000000000000000000000000000000000}","\\"s\\""}',
    "a_ts": "{2020-01-01 00:00:00,infinity,NULL}",
    "a_tstz": '{"2020-01-01 00:00:00+01",-infinity}',
    "a_date": "{2020-01-01,infinity,0044-03-15 BC,NULL}",
    "a_bytea": '{"\\\\x0102",NULL,"\\\\x"}',
    "a_text": '{"a b",NULL,"NULL","",",\\""}',
    "a_varchar": "{x,y}",
    "a_char": '{a,NULL,abc,""}',
    "a_uuid": "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11,NULL}",
    "a_inet": "{::1,10.1.2.3/16}",
    "a_enum": "{sad,NULL,happy}",
    "a_interval": '{"1 day","-00:00:01"}',
    "a_2d": "{{1,2},{3,NULL}}",
    "a_int_domain": "{7,NULL}",
    "a_json_domain": '{"{\\"k\\": 2.50}"}',
    "a_char_domain": "{z,NULL}",
}

ODD = {
    "c_int2": "0",
    "c_numeric": "NaN",
    "c_numeric_scaled": "-0",
    "c_real": "Infinity",
    "c_double": "-Infinity",
    "c_json": "null",
    "c_jsonb": "null",
    "c_ts": "infinity",
    "c_tstz": "-infinity",
    "c_date": "infinity",
    "c_text": "",
    "c_char": "",
    "c_int_domain": "-1",
    "a_numeric": "{Infinity,-Infinity}",
    "a_double": "{{1.5,2.5},{-Infinity,NULL}}",
    "a_text": "{{a,b},{c,NULL}}",
    "a_2d": "{}",
}

EXPECTED_TYPICAL: dict[str, Any] = {
    "c_int2": -32768,
    "c_int4": 2147483647,
    "c_int8": -9223372036854775808,
    "c_numeric": Decimal("12345678901234567890.123456789012345678901234567890"),
    "c_numeric_scaled": Decimal("12.5000"),
    "c_real": 0.1,
    "c_double": 1e-7,
    "c_bool": True,
    "c_bytea": b"\x00\xff\x10",
    # json keeps the text as written (duplicate keys: the last one wins, as in jsonb)
    "c_json": Json({"b": Decimal("1.50"), "a": "dup"}),
    "c_jsonb": Json({"big": Decimal("123456789012345678901234567890123456789"), "s": "é", "small": Decimal("1E-21")}),
    "c_ts": datetime(2020, 2, 29, 23, 59, 58, 123456, tzinfo=UTC),
    "c_tstz": datetime(2022, 6, 1, 6, 30, 0, 1, tzinfo=UTC),
    "c_date": "2024-02-29",
    "c_text": "  tab\there, ünïcode 🎉  ",
    "c_varchar": "short",
    "c_char": "ab  ",  # PostgreSQL's own text form of char(4): padded (char(n)::text would drop it)
    "c_uuid": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
    "c_inet": "192.168.0.1",
    "c_cidr": "10.0.0.0/8",
    "c_macaddr": "08:00:2b:01:02:03",
    "c_enum": "happy",
    "c_time": "04:05:06.789",
    "c_timetz": "04:05:06+02",
    "c_interval": "1 year 2 mons 3 days 04:05:06.5",
    "c_money": "$1,234.50",
    "c_point": "(1.5,-2)",
    "c_int_domain": 42,
    "c_text_domain": "domain text",
    "c_json_domain": Json({"n": 1}),
    "c_char_domain": "xy   ",
    "a_int2": [1, None, -3],
    "a_int4": [],
    "a_int8": [9223372036854775807],
    # numeric[] NaN checked apart (NaN != NaN)
    "a_bool": [True, False, None],
    "a_json": [Json({"x": Decimal("1.0")}), Json([1, 2]), None, Json(None)],
    "a_jsonb": [Json({"x": 10**40}), Json("s")],
    "a_ts": [
        datetime(2020, 1, 1, tzinfo=UTC),
        UnreadableValue("infinity", "'infinity' is not a point in time"),
        None,
    ],
    "a_tstz": [
        datetime(2019, 12, 31, 23, tzinfo=UTC),
        UnreadableValue("-infinity", "'-infinity' is not a point in time"),
    ],
    "a_date": [
        "2020-01-01",
        UnreadableValue("infinity", "'infinity' is not a calendar date"),
        UnreadableValue("0044-03-15 BC", "'0044-03-15 BC' is outside the supported years 1..9999"),
        None,
    ],
    "a_bytea": [b"\x01\x02", None, b""],
    "a_text": ["a b", None, "NULL", "", ',"'],
    "a_varchar": ["x", "y"],
    "a_char": ["a  ", None, "abc", "   "],
    "a_uuid": ["a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", None],
    "a_inet": ["::1", "10.1.2.3/16"],
    "a_enum": ["sad", None, "happy"],
    "a_interval": ["1 day", "-00:00:01"],
    "a_2d": [[1, 2], [3, None]],
    "a_int_domain": [7, None],
    "a_json_domain": [Json({"k": Decimal("2.50")})],
    "a_char_domain": ["z    ", None],
}


def carry_all(table: str) -> UserMapping:
    """A mapping with no attributes of its own: every column arrives under its own name."""
    return UserMapping(table=table, key="id", carry=True, origin="test mapping")


def create_types_table(dsn: str) -> str:
    suffix = uuid.uuid4().hex[:10]
    names = {
        "mood": f"mood_{suffix}",
        "int_domain": f"int_domain_{suffix}",
        "text_domain": f"text_domain_{suffix}",
        "json_domain": f"json_domain_{suffix}",
        "char_domain": f"char_domain_{suffix}",
    }
    execute(dsn, f"CREATE TYPE {names['mood']} AS ENUM ('sad', 'ok', 'happy')")
    execute(dsn, f"CREATE DOMAIN {names['int_domain']} AS integer CHECK (VALUE <> 0)")
    execute(dsn, f"CREATE DOMAIN {names['text_domain']} AS text")
    execute(dsn, f"CREATE DOMAIN {names['json_domain']} AS jsonb")
    execute(dsn, f"CREATE DOMAIN {names['char_domain']} AS char(5)")
    table = unique_name("types")
    columns = ", ".join(f"{name} {sql_type.format(**names)}" for name, sql_type in COLUMNS.items())
    execute(dsn, f"CREATE TABLE {quote_table_name(table)} (id integer PRIMARY KEY, {columns})")
    return table


def insert_text_row(dsn: str, table: str, row_id: int, values: dict[str, str]) -> None:
    """A row from SQL literals in text form, each cast by PostgreSQL to its column's type."""
    names = ", ".join(["id", *values])
    placeholders = ", ".join(["%s"] * (len(values) + 1))
    execute(dsn, f"INSERT INTO {quote_table_name(table)} ({names}) VALUES ({placeholders})", (row_id, *values.values()))


async def test_every_type_arrives_as_its_exact_python_value(postgres_dsn, pool):
    table = create_types_table(postgres_dsn)
    insert_text_row(postgres_dsn, table, 1, TYPICAL)
    insert_text_row(postgres_dsn, table, 2, {})
    insert_text_row(postgres_dsn, table, 3, ODD)
    source = PostgresUserSource(pool, carry_all(table))

    typical, empty, odd = await source.read_page(0, 10)

    assert list(typical.values) == list(COLUMNS)  # in table order, the key not among them
    for name, expected in EXPECTED_TYPICAL.items():
        value = typical.values[name]
        assert value == expected, name
        assert type(value) is type(expected), name
    for name in ("a_int2", "a_int8", "a_2d", "a_int_domain"):
        assert all(type(element) in (int, type(None)) for element in _flat(typical.values[name])), name
    assert type(typical.values["c_bytea"]) is bytes
    assert all(type(element) in (bytes, type(None)) for element in typical.values["a_bytea"])
    assert repr(typical.values["c_real"]) == "0.1"
    numeric = typical.values["a_numeric"]
    assert numeric[0] == Decimal("1.10")
    assert str(numeric[0]) == "1.10"
    assert numeric[1].is_nan()
    assert numeric[2] is None
    assert numeric[3] == 0
    assert isinstance(numeric[3], Decimal)
    real = typical.values["a_real"]
    assert real[0] == 0.1
    assert real[1] == math.inf
    assert real[2] is None
    double = typical.values["a_double"]
    assert double[0] == 1e-7
    assert repr(double[1]) == "-0.0"
    assert math.isnan(double[2])
    assert all(type(element) is float for element in [*real[:2], *double])

    assert empty.id == 2
    assert list(empty.values) == list(COLUMNS)
    assert all(value is None for value in empty.values.values())

    assert odd.values["c_int2"] == 0
    assert isinstance(odd.values["c_numeric"], Decimal)
    assert odd.values["c_numeric"].is_nan()
    assert odd.values["c_numeric_scaled"] == Decimal("0.0000")
    assert str(odd.values["c_numeric_scaled"]) == "0.0000"
    assert odd.values["c_real"] == math.inf
    assert type(odd.values["c_real"]) is float
    assert odd.values["c_double"] == -math.inf
    assert odd.values["c_json"] == Json(None)  # a JSON null is a value, unlike an SQL NULL
    assert odd.values["c_jsonb"] == Json(None)
    assert odd.values["c_ts"] == UnreadableValue("infinity", "'infinity' is not a point in time")
    assert odd.values["c_tstz"] == UnreadableValue("-infinity", "'-infinity' is not a point in time")
    assert odd.values["c_date"] == UnreadableValue("infinity", "'infinity' is not a calendar date")
    assert odd.values["c_text"] == ""
    assert odd.values["c_char"] == "    "  # an empty char(4) is four spaces in PostgreSQL's text form
    assert odd.values["c_int_domain"] == -1
    infinite = odd.values["a_numeric"]
    assert infinite == [Decimal("Infinity"), Decimal("-Infinity")]
    assert odd.values["a_double"][0] == [1.5, 2.5]
    assert odd.values["a_double"][1] == [-math.inf, None]
    assert odd.values["a_text"] == [["a", "b"], ["c", None]]
    assert odd.values["a_2d"] == []


def _flat(value: Any) -> Iterator[Any]:
    if isinstance(value, list):
        for element in value:
            yield from _flat(element)
    else:
        yield value


async def test_odd_numbers_and_dates_out_of_range(postgres_dsn, pool):
    table = unique_name("odd")
    execute(
        postgres_dsn,
        f"CREATE TABLE {quote_table_name(table)} (id bigint PRIMARY KEY, n numeric, r real, d double precision, "
        "day date, ts timestamp, tstz timestamptz, days date[], stamps timestamptz[])",
    )
    long_digits = "9" * 200 + "." + "0" * 50 + "1"
    rows = [
        (1, long_digits, "-0", "1e-7", "0044-03-15 BC", "0001-01-01 00:00:00 BC", "10000-01-01 00:00:00+00"),
        (2, "-0", "0.1", "-0", "10000-01-01", "10000-01-01 00:00:00", "0001-01-01 00:00:00+00"),
        (3, "1e-130", "3.4028235e38", "1.7976931348623157e308", "0001-01-01", "9999-12-31 23:59:59.999999", None),
    ]
    for row in rows:
        execute(
            postgres_dsn,
            f"INSERT INTO {quote_table_name(table)} (id, n, r, d, day, ts, tstz, days, stamps) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, ARRAY[%s::date], ARRAY[%s::timestamptz])",
            (*row, row[4], row[6]),
        )
    source = PostgresUserSource(pool, carry_all(table))

    first, second, third = await source.read_page(0, 10)

    assert first.values["n"] == Decimal(long_digits)
    assert str(first.values["n"]) == long_digits
    assert repr(first.values["r"]) == "-0.0"
    assert first.values["d"] == 1e-7
    bc_date = UnreadableValue("0044-03-15 BC", "'0044-03-15 BC' is outside the supported years 1..9999")
    assert first.values["day"] == bc_date
    assert first.values["days"] == [bc_date]
    bc = UnreadableValue("0001-01-01 00:00:00 BC", "'0001-01-01 00:00:00 BC' is outside the supported years 1..9999")
    assert first.values["ts"] == bc
    late = "10000-01-01 00:00:00+00"
    assert first.values["tstz"] == UnreadableValue(late, f"'{late}' is outside the supported years 1..9999")
    assert first.values["stamps"] == [first.values["tstz"]]

    assert second.values["n"] == 0
    assert isinstance(second.values["n"], Decimal)
    assert second.values["r"] == 0.1
    assert repr(second.values["r"]) == "0.1"
    assert repr(second.values["d"]) == "-0.0"
    assert second.values["day"] == UnreadableValue(
        "10000-01-01", "'10000-01-01' is outside the supported years 1..9999"
    )
    assert isinstance(second.values["ts"], UnreadableValue)
    assert second.values["ts"].raw == "10000-01-01 00:00:00"
    assert second.values["tstz"] == datetime(1, 1, 1, tzinfo=UTC)

    assert third.values["n"] == Decimal("1e-130")
    assert third.values["r"] == 3.4028235e38
    assert third.values["d"] == 1.7976931348623157e308
    assert third.values["day"] == "0001-01-01"
    assert third.values["ts"] == datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    assert third.values["tstz"] is None
    assert third.values["stamps"] == [None]


async def test_describe_names_each_type_and_what_it_becomes(postgres_dsn, pool):
    table = create_types_table(postgres_dsn)
    mapping = UserMapping(table=table, key="id", carry=True, exclude=frozenset({"c_money"}), origin="test")
    plan = await PostgresUserSource(pool, mapping).describe()

    by_source = {column.source: column for column in plan.columns}
    assert plan.table == table
    assert plan.key == "id"
    assert plan.columns[0].role == "key"
    assert (by_source["id"].source_type, by_source["id"].attribute, by_source["id"].target_type) == (
        "integer",
        "user_id",
        "N",
    )
    expected = {
        "c_int2": ("smallint", "N"),
        "c_numeric_scaled": ("numeric(12,4)", "N"),
        "c_double": ("double precision", "N"),
        "c_bool": ("boolean", "BOOL"),
        "c_bytea": ("bytea", "B"),
        "c_jsonb": ("jsonb", "M/L/S/N/BOOL/NULL"),
        "c_tstz": ("timestamp with time zone", "S"),
        "c_date": ("date", "S"),
        "c_varchar": ("character varying(20)", "S"),
        "c_char": ("character(4)", "S"),
        "a_char": ("character(3)[]", "L"),
        "c_uuid": ("uuid", "S"),
        "a_int4": ("integer[]", "L"),
        "a_jsonb": ("jsonb[]", "L"),
        "a_2d": ("integer[]", "L"),
        "c_int_domain": (None, "N"),
        "c_json_domain": (None, "M/L/S/N/BOOL/NULL"),
    }
    for source, (type_name, target) in expected.items():
        column = by_source[source]
        assert column.role == "carried", source
        assert column.attribute == source
        if type_name is not None:
            assert column.source_type == type_name, source
        assert column.target_type == target, source
    assert by_source["c_int_domain"].source_type.startswith("int_domain_")
    money = by_source["c_money"]
    assert (money.role, money.source_type, money.attribute, money.target_type) == ("excluded", "money", None, None)
    assert [column.role for column in plan.columns].count("carried") == len(COLUMNS) - 1


# --- round trips of random values, through a bound parameter and back ---------------------------


class _Reader:
    """A pool on its own event loop, for hypothesis tests (which run every example synchronously)."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.runner = asyncio.Runner()
        self.pool: aiopg.Pool = self.runner.run(create_pool(dsn))
        self.ids = itertools.count(1)
        self.sources: dict[str, PostgresUserSource] = {}

    def source(self, sql_type: str) -> PostgresUserSource:
        """A table of one column `v` of this type (one per test, whatever the examples)."""
        if sql_type not in self.sources:
            table = unique_name("roundtrip")
            execute(self.dsn, f"CREATE TABLE {quote_table_name(table)} (id bigint PRIMARY KEY, v {sql_type})")
            self.sources[sql_type] = PostgresUserSource(self.pool, carry_all(table))
        return self.sources[sql_type]

    def round_trip(self, source: PostgresUserSource, values: list[Any], placeholder: str = "%s") -> list[Any]:
        ids = [next(self.ids) for _ in values]
        table = quote_table_name(source.mapping.table)
        with psycopg2.connect(self.dsn) as connection, connection.cursor() as cursor:
            psycopg2.extras.execute_values(
                cursor,
                f"INSERT INTO {table} (id, v) VALUES %s",
                list(zip(ids, values, strict=True)),
                f"(%s, {placeholder})",
            )
        connection.close()
        users: list[SourceUser] = list(self.runner.run(source.read_users(ids)))
        assert [user.id for user in users] == ids
        return [user.values["v"] for user in users]

    def close(self) -> None:
        self.pool.close()
        self.runner.run(self.pool.wait_closed())
        self.runner.close()


@pytest.fixture
def reader(postgres_dsn: str) -> Iterator[_Reader]:
    reader = _Reader(postgres_dsn)
    try:
        yield reader
    finally:
        reader.close()


ROUND_TRIPS = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


decimals = st.decimals(allow_nan=True, allow_infinity=True).filter(
    lambda number: not number.is_snan() and (not number.is_finite() or abs(number.adjusted()) < 1000)
)


def _numeric_text(number: Decimal) -> str:
    return "NaN" if number.is_nan() else str(number)  # PostgreSQL has no -NaN


@ROUND_TRIPS
@given(values=st.lists(decimals, min_size=1, max_size=20))
def test_numerics_come_back_exactly(reader, values):
    # Written in their text form: psycopg2 would send an infinite Decimal as NaN.
    read = reader.round_trip(reader.source("numeric"), [_numeric_text(value) for value in values], "%s::numeric")
    for written, got in zip(values, read, strict=True):
        assert isinstance(got, Decimal)
        if written.is_nan():
            assert got.is_nan()
        else:
            assert got == written


@ROUND_TRIPS
@given(values=st.lists(st.integers(min_value=-(2**63), max_value=2**63 - 1), min_size=1, max_size=20))
def test_bigints_come_back_exactly(reader, values):
    read = reader.round_trip(reader.source("bigint"), values)
    assert read == values
    assert all(type(got) is int for got in read)


@ROUND_TRIPS
@given(values=st.lists(st.floats(), min_size=1, max_size=20))
def test_doubles_come_back_as_the_same_floats(reader, values):
    # Written in their text form: psycopg2 would send -0.0 as `-0.0`, which SQL reads as -(0.0) = 0.
    read = reader.round_trip(reader.source("double precision"), [repr(value) for value in values], "%s::float8")
    for written, got in zip(values, read, strict=True):
        assert type(got) is float
        assert repr(got) == repr(written) or (math.isnan(got) and math.isnan(written))


@ROUND_TRIPS
@given(values=st.lists(st.floats(width=32), min_size=1, max_size=20))
def test_reals_come_back_as_the_same_float4_values(reader, values):
    read = reader.round_trip(reader.source("real"), [repr(value) for value in values], "%s::real")
    for written, got in zip(values, read, strict=True):
        assert type(got) is float
        # PostgreSQL writes a real's shortest text: read as a double it rounds back to the same real.
        if math.isnan(written):
            assert math.isnan(got)
        else:
            assert struct.pack("<f", got) == struct.pack("<f", written)


texts = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"))


@ROUND_TRIPS
@given(values=st.lists(texts, min_size=1, max_size=20))
def test_texts_come_back_exactly(reader, values):
    assert reader.round_trip(reader.source("text"), values) == values


@ROUND_TRIPS
@given(values=st.lists(st.binary(), min_size=1, max_size=20))
def test_bytes_come_back_exactly(reader, values):
    read = reader.round_trip(reader.source("bytea"), values)
    assert read == values
    assert all(type(got) is bytes for got in read)


@ROUND_TRIPS
@given(values=st.lists(st.lists(st.one_of(st.none(), texts), max_size=5), min_size=1, max_size=10))
def test_text_arrays_come_back_exactly(reader, values):
    assert reader.round_trip(reader.source("text[]"), values, "%s::text[]") == values


exact_numbers = st.integers() | st.decimals(allow_nan=False, allow_infinity=False).filter(
    lambda number: abs(number.adjusted()) < 300
)
json_documents = st.recursive(
    st.none() | st.booleans() | exact_numbers | texts,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(texts, children, max_size=4),
    max_leaves=20,
)


@ROUND_TRIPS
@given(values=st.lists(json_documents, min_size=1, max_size=10))
def test_json_documents_keep_their_exact_numbers(reader: _Reader, values: list[JsonValue]) -> None:
    for sql_type in ("jsonb", "json"):
        read = reader.round_trip(reader.source(sql_type), [json_text(value) for value in values])
        assert read == [Json(value) for value in values]
        assert not any(isinstance(number, float) for got in read for number in _numbers(got.value))


def _numbers(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        for element in value.values():
            yield from _numbers(element)
    elif isinstance(value, list):
        for element in value:
            yield from _numbers(element)
    else:
        yield value
