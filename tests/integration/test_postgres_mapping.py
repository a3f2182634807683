"""PostgresUserSource reading any table through a mapping file, against a real server: a Django
`auth_user` table, every mismatch of a mapping with its table, and connection failures."""

from __future__ import annotations

import asyncio
import tomllib
from datetime import UTC, datetime

import psycopg2.extensions
import pytest

from tests.django_mapping import django_mapping
from tests.real_adapters import execute, unique_name
from user_migration.adapters.postgres.source import PostgresUserSource, create_pool, quote_table_name
from user_migration.domain.convert.mapping import UserMapping, default_mapping, parse_mapping
from user_migration.domain.errors import MappingError, SetupError, SourceUnavailable
from user_migration.entrypoints.demo.embedded import free_port
from user_migration.entrypoints.library import UserMigration


def mapping_of(text: str, origin: str = "mapping.toml") -> UserMapping:
    return parse_mapping(tomllib.loads(text), origin)


def create_auth_user(dsn: str) -> str:
    table = unique_name("auth_user")
    execute(
        dsn,
        f"CREATE TABLE {quote_table_name(table)} ("
        "id serial PRIMARY KEY, password varchar(128) NOT NULL, last_login timestamptz, "
        "is_superuser boolean NOT NULL, username varchar(150) NOT NULL UNIQUE, first_name varchar(150) NOT NULL, "
        "last_name varchar(150) NOT NULL, email varchar(254) NOT NULL, is_staff boolean NOT NULL, "
        "is_active boolean NOT NULL, date_joined timestamptz NOT NULL)",
    )
    rows = [
        (
            "pbkdf2_sha256$1",
            None,
            True,
            "ada",
            "Ada",
            "Lovelace",
            "ada@example.com",
            True,
            True,
            "2020-01-02 03:04:05+00",
        ),
        (
            "pbkdf2_sha256$2",
            "2024-05-06 07:08:09.5+02",
            False,
            "bob.b",
            "Bob",
            "",
            "",
            False,
            False,
            "2021-06-07 08:09:10+00",
        ),
    ]
    for row in rows:
        execute(
            dsn,
            f"INSERT INTO {quote_table_name(table)} (password, last_login, is_superuser, username, first_name, "
            "last_name, email, is_staff, is_active, date_joined) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            row,
        )
    return table


async def test_a_django_auth_user_table_through_a_mapping_file(postgres_dsn, pool):
    table = create_auth_user(postgres_dsn)
    mapping = mapping_of(django_mapping(f"public.{table}"))
    source = PostgresUserSource(pool, mapping)

    await source.check_ready()
    ada, bob = await source.read_page(0, 10)

    assert (ada.id, bob.id) == (1, 2)
    assert list(ada.values) == [
        "username",
        "email",
        "display_name",
        "status",
        "created_at",
        "last_login",
        "is_superuser",
        "first_name",
        "last_name",
        "is_staff",
        "is_active",
    ]
    assert dict(ada.values) == {
        "username": "ada",
        "email": "ada@example.com",
        "display_name": "Ada Lovelace",
        "status": "active",
        "created_at": datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC),
        "last_login": None,
        "is_superuser": True,
        "first_name": "Ada",
        "last_name": "Lovelace",
        "is_staff": True,
        "is_active": True,
    }
    assert bob.values["display_name"] == "Bob "
    assert bob.values["status"] == "suspended"
    assert bob.values["email"] == ""
    assert bob.values["last_login"] == datetime(2024, 5, 6, 5, 8, 9, 500000, tzinfo=UTC)
    assert await source.read_user(2) == bob
    assert await source.read_user(3) is None
    assert list(await source.read_users([2, 1, 7])) == [ada, bob]
    assert await source.count_users() == 2
    assert await source.count_users(2) == 1

    plan = await source.describe()
    assert plan.table == f"public.{table}"
    assert plan.key == "id"
    shown = [(c.role, c.source, c.source_type, c.attribute, c.target_type) for c in plan.columns]
    assert shown == [
        ("key", "id", "integer", "user_id", "N"),
        ("mapped", "username", "character varying(150)", "username", "S"),
        ("mapped", "email", "character varying(254)", "email", "S"),
        ("expression", "first_name || ' ' || last_name", "text", "display_name", "S"),
        ("expression", "CASE WHEN is_active THEN 'active' ELSE 'suspended' END", "text", "status", "S"),
        ("mapped", "date_joined", "timestamp with time zone", "created_at", "S"),
        ("carried", "last_login", "timestamp with time zone", "last_login", "S"),
        ("carried", "is_superuser", "boolean", "is_superuser", "BOOL"),
        ("carried", "first_name", "character varying(150)", "first_name", "S"),
        ("carried", "last_name", "character varying(150)", "last_name", "S"),
        ("carried", "is_staff", "boolean", "is_staff", "BOOL"),
        ("carried", "is_active", "boolean", "is_active", "BOOL"),
        ("excluded", "password", "character varying(128)", None, None),
    ]


async def test_expressions_may_hold_percent_signs_and_any_type(postgres_dsn, pool):
    table = create_auth_user(postgres_dsn)
    mapping = mapping_of(
        f"""
        [source]
        table = "{table}"
        [attributes]
        login = "username"
        pattern = "username || '%'"
        odd = "id % 2 = 1"
        tags = "ARRAY[first_name, NULL]"
        joined_day = "date_joined::date"
        profile = "json_build_object('n', 1.50)"
        [other_columns]
        carry = false
        """
    )
    ada, bob = await PostgresUserSource(pool, mapping).read_page(0, 10)
    assert dict(ada.values) == {
        "login": "ada",
        "pattern": "ada%",
        "odd": True,
        "tags": ["Ada", None],
        "joined_day": "2020-01-02",
        "profile": ada.values["profile"],
    }
    assert ada.values["profile"].value == {"n": 1.50}
    assert str(ada.values["profile"].value["n"]) == "1.50"
    assert bob.values["odd"] is False


async def test_a_missing_table_is_a_mapping_error_and_is_checked_again(postgres_dsn, pool):
    table = unique_name("missing")
    source = PostgresUserSource(pool, default_mapping(table))
    for read in (source.read_page(0, 10), source.read_user(1), source.count_users(), source.check_ready()):
        with pytest.raises(MappingError) as raised:
            await read
        assert raised.value.problems == [f"source table {table!r} does not exist"]
        assert not isinstance(raised.value, SourceUnavailable)
    with pytest.raises(MappingError, match="does not exist"):
        await PostgresUserSource(pool, default_mapping(f"nosuchschema.{table}")).describe()
    # Not remembered: once the table is there, the same source reads it.
    execute(
        postgres_dsn,
        f"CREATE TABLE {quote_table_name(table)} (id bigint PRIMARY KEY, username text, "
        "email text, display_name text, created_at timestamptz, updated_at timestamptz, status text, profile jsonb)",
    )
    assert await source.count_users() == 0


async def test_every_mismatch_is_named_at_once(postgres_dsn, pool):
    table = unique_name("mismatch")
    execute(
        postgres_dsn,
        f"CREATE TABLE {quote_table_name(table)} (uid bigint PRIMARY KEY, username text, first_name text, "
        '"Email" text, updated text, user_id integer, migrated_at text, display_name text, secret text)',
    )
    mapping = mapping_of(
        f"""
        [source]
        table = "{table}"
        key = "id"
        version = "Updated"
        [attributes]
        username = "Username"
        email = "email"
        login = "username"
        display_name = "first_nme || ' '"
        score = "nosuchfunction(1)"
        nickname = "upper(first_name)"
        [rules.nonexistent]
        required = true
        [other_columns]
        carry = true
        exclude = ["passwd"]
        """,
        origin="bad.toml",
    )
    with pytest.raises(MappingError) as raised:
        await PostgresUserSource(pool, mapping).check_ready()

    columns = "uid, username, first_name, Email, updated, user_id, migrated_at, display_name, secret"
    where = f"{table} (columns: {columns})"
    assert raised.value.origin == "bad.toml"
    assert raised.value.problems == [
        f"[source] key: no column 'id' in {where}",
        f"[source] version: no column 'Updated' in {where}; did you mean 'updated'?",
        f"[attributes] username: no column 'Username' in {where}; did you mean 'username'?",
        f"[attributes] email: no column 'email' in {where}; did you mean 'Email'?",
        f"[other_columns] exclude: no column 'passwd' in {where}",
        "[other_columns] carry: column 'user_id' would arrive as attribute 'user_id', the key attribute; "
        "exclude the column or choose another [target] key_attribute",
        "[other_columns] carry: column 'migrated_at': the migration writes 'migrated_at' itself; exclude the column",
        "[other_columns] carry: column 'display_name' would arrive as attribute 'display_name', which [attributes] "
        "maps already; exclude the column or rename the attribute",
        "[rules.nonexistent]: no attribute 'nonexistent' in [attributes] or the carried columns",
        "[attributes] display_name: PostgreSQL refused the expression \"first_nme || ' '\": "
        'column "first_nme" does not exist',
        "[attributes] score: PostgreSQL refused the expression 'nosuchfunction(1)': "
        "function nosuchfunction(integer) does not exist",
    ]
    assert f"the mapping (bad.toml) has {len(raised.value.problems)} problem(s)" in str(raised.value)


async def test_the_files_own_problems_and_the_tables_are_named_in_one_run(postgres_dsn, tmp_path):
    table = create_auth_user(postgres_dsn)
    path = tmp_path / "broken.toml"
    path.write_text(
        f'[source]\ntable = "{table}"\n[attributes]\nusername = "usernme"\nemail = "email"\n'
        '[rules.username]\npattern = "(unclosed"\n[rules.nickname]\nrequired = true\n'
        '[other_columns]\nexclude = ["username", "email"]\n'
    )
    environ = {"DATABASE_URL": postgres_dsn, "AWS_REGION": "us-east-1", "DYNAMODB_ENDPOINT_URL": "http://127.0.0.1:9"}
    library = UserMigration.from_env(environ, mapping_file=str(path), check_tables=False)

    with pytest.raises(MappingError) as raised:
        async with library:
            pass

    problems = raised.value.problems
    assert raised.value.origin == str(path)
    assert problems[0].startswith("[rules.username].pattern is not a valid regular expression")
    assert problems[1].startswith(f"[attributes] username: no column 'usernme' in {table} (columns: id, password")
    assert problems[2] == "[rules.nickname]: no attribute 'nickname' in [attributes] or the carried columns"
    assert len(problems) == 3


async def test_the_key_must_be_an_integer_column_unless_the_mapping_says_uuid_or_text(postgres_dsn, pool):
    # Issue 29: a text key is taken when `[source] key_type = "text"` says so; without it, it is named.
    table = unique_name("textkey")
    execute(postgres_dsn, f"CREATE TABLE {quote_table_name(table)} (code text PRIMARY KEY, n numeric)")
    expected = {
        "code": "[source] key: column 'code' is of type text, but [source] key_type is 'integer' (the default); "
        'say key_type = "text" under [source]',
        "n": "[source] key: column 'n' is of type numeric; "
        "the key must be an integer (smallint, integer, bigint), uuid or text (text, varchar) column",
    }
    for key, problem in expected.items():
        mapping = UserMapping(table=table, key=key, carry=True, origin="m.toml")
        with pytest.raises(MappingError) as raised:
            await PostgresUserSource(pool, mapping).read_page(0, 10)
        assert raised.value.problems == [problem]
    for integer in ("smallint", "integer", "bigint"):
        table = unique_name("intkey")
        execute(postgres_dsn, f"CREATE TABLE {quote_table_name(table)} (k {integer} PRIMARY KEY, v text)")
        execute(postgres_dsn, f"INSERT INTO {quote_table_name(table)} VALUES (5, 'x')")
        users = await PostgresUserSource(pool, UserMapping(table=table, key="k", carry=True)).read_page(0, 10)
        assert [(user.id, dict(user.values)) for user in users] == [(5, {"v": "x"})]


async def test_a_table_key_that_may_repeat_or_be_null_is_refused_and_a_views_is_trusted(postgres_dsn, pool):
    loose = unique_name("loosekey")
    execute(postgres_dsn, f"CREATE TABLE {quote_table_name(loose)} (k bigint, v text)")
    with pytest.raises(MappingError) as raised:
        await PostgresUserSource(pool, UserMapping(table=loose, key="k", carry=True)).check_ready()
    assert raised.value.problems == [
        "[source] key: column 'k' has no primary key or unique index; paging by a key that repeats would skip "
        "users: make it unique (or map a view whose key is)",
        "[source] key: column 'k' may be NULL; a user with a NULL key would never be read: make it NOT NULL "
        "(or map a view that leaves such rows out)",
    ]
    unique = unique_name("uniquekey")
    execute(postgres_dsn, f"CREATE TABLE {quote_table_name(unique)} (k bigint NOT NULL UNIQUE, v text)")
    await PostgresUserSource(pool, UserMapping(table=unique, key="k", carry=True)).check_ready()
    view = unique_name("keyview")
    execute(postgres_dsn, f"CREATE VIEW {quote_table_name(view)} AS SELECT * FROM {quote_table_name(loose)}")
    await PostgresUserSource(pool, UserMapping(table=view, key="k", carry=True)).check_ready()


async def test_a_column_dropped_under_a_checked_mapping_is_a_mapping_error(postgres_dsn, pool):
    table = create_auth_user(postgres_dsn)
    source = PostgresUserSource(pool, mapping_of(django_mapping(f"public.{table}")))
    await source.check_ready()
    execute(postgres_dsn, f"ALTER TABLE {quote_table_name(table)} DROP COLUMN last_name")

    with pytest.raises(MappingError) as raised:
        await source.read_page(0, 10)
    assert raised.value.problems == [
        f'PostgreSQL refused the source query on public.{table}: column "last_name" does not exist'
    ]
    # The plan is made again: now the expression itself is named.
    with pytest.raises(MappingError) as again:
        await source.read_page(0, 10)
    assert any(problem.startswith("[attributes] display_name: PostgreSQL refused") for problem in again.value.problems)


async def test_an_unreachable_server_is_named_by_host_and_port_without_the_password():
    port = free_port()
    pool = await create_pool(f"postgresql://app:s3cret@127.0.0.1:{port}/app", query_timeout=3)
    source = PostgresUserSource(pool, default_mapping())
    try:
        for read in (source.read_page(0, 10), source.check_ready(), source.count_users(), source.describe()):
            with pytest.raises(SourceUnavailable) as raised:
                await read
            assert str(raised.value) == f"PostgreSQL is unavailable at 127.0.0.1:{port}: connection refused"
            assert "s3cret" not in str(raised.value)
    finally:
        pool.close()
        await pool.wait_closed()


async def test_an_unknown_role_or_database_is_a_setup_error(postgres_dsn):
    for changes, reason in (
        ({"user": "nosuchrole", "password": "pw-secret"}, 'role "nosuchrole" does not exist'),
        ({"dbname": "nosuchdb", "password": "pw-secret"}, 'database "nosuchdb" does not exist'),
    ):
        pool = await create_pool(psycopg2.extensions.make_dsn(postgres_dsn, **changes), query_timeout=5)
        try:
            with pytest.raises(SetupError) as raised:
                await PostgresUserSource(pool, default_mapping()).check_ready()
        finally:
            pool.close()
            await pool.wait_closed()
        assert not isinstance(raised.value, (SourceUnavailable, MappingError))
        assert raised.value.summary == "PostgreSQL refused the connection"
        (problem,) = raised.value.problems
        assert problem.startswith("PostgreSQL at "), problem
        assert problem.endswith(f" refused the connection: {reason}"), problem
        assert "pw-secret" not in str(raised.value)


def _message(tag: bytes, body: bytes) -> bytes:
    return tag + (len(body) + 4).to_bytes(4, "big") + body


async def _refuse_password(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A server that asks for a password and refuses it, as PostgreSQL does (protocol 3.0)."""
    try:
        while True:
            length = int.from_bytes(await reader.readexactly(4), "big")
            body = await reader.readexactly(length - 4)
            if body[:4] in ((80877103).to_bytes(4, "big"), (80877104).to_bytes(4, "big")):  # SSL, GSSENC
                writer.write(b"N")
                await writer.drain()
                continue
            break  # the startup message
        writer.write(_message(b"R", (3).to_bytes(4, "big")))  # AuthenticationCleartextPassword
        await writer.drain()
        await reader.readexactly(1)
        await reader.readexactly(int.from_bytes(await reader.readexactly(4), "big") - 4)
        fields = b'SFATAL\0VFATAL\0C28P01\0Mpassword authentication failed for user "app"\0\0'
        writer.write(_message(b"E", fields))
        await writer.drain()
    finally:
        writer.close()


async def test_a_wrong_password_is_a_setup_error_without_the_password():
    server = await asyncio.start_server(_refuse_password, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    pool = await create_pool(f"postgresql://app:wrong-pw@127.0.0.1:{port}/app?sslmode=disable", query_timeout=5)
    try:
        with pytest.raises(SetupError) as raised:
            await PostgresUserSource(pool, default_mapping()).read_page(0, 10)
    finally:
        pool.close()
        await pool.wait_closed()
        server.close()
        await server.wait_closed()
    assert not isinstance(raised.value, (SourceUnavailable, MappingError))
    assert raised.value.problems == [
        f'PostgreSQL at 127.0.0.1:{port} refused the connection: password authentication failed for user "app"'
    ]
    assert "wrong-pw" not in str(raised.value)
