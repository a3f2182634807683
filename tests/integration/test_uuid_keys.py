"""Supabase's real `auth.users` (a uuid key) through a mapping file, as a new user runs it: no view, no
added column (real PostgreSQL, moto server, the CLI as a process)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import psycopg2
import pytest

from adapters.dynamodb_client import dynamodb_client
from tests.integration.test_cli_migrate import cli
from tests.real_adapters import unique_name
from tests.supabase_auth import SUPABASE_AUTH_USERS, supabase_mapping, unique_schema


def seed_supabase(dsn: str, schema: str, count: int) -> list[str]:
    """`count` users in `{schema}.users`, as Supabase's GoTrue writes them; returns their ids."""
    ids = [str(uuid.uuid4()) for _ in range(count)]
    with psycopg2.connect(dsn) as connection, connection.cursor() as cursor:
        cursor.execute(f"CREATE SCHEMA {schema}")
        cursor.execute(SUPABASE_AUTH_USERS.format(schema=schema))
        for index, user_id in enumerate(ids):
            cursor.execute(
                f"INSERT INTO {schema}.users (instance_id, id, aud, role, email, encrypted_password,"
                " email_confirmed_at, raw_app_meta_data, raw_user_meta_data, created_at, updated_at, phone)"
                " VALUES ('00000000-0000-0000-0000-000000000000', %s, 'authenticated', 'authenticated', %s,"
                " '$2a$10$secret', now(), '{\"provider\": \"email\"}', %s, now(), now(), %s)",
                (
                    user_id,
                    f"user{index}@example.com",
                    json.dumps({"name": f"User {index}"}),
                    f"+4420794600{index:02d}" if index % 2 else None,
                ),
            )
    return ids


@pytest.fixture
def supabase(postgres_dsn: str, dynamodb_endpoint: str, tmp_path: Path) -> dict[str, str]:
    schema = unique_schema("auth")
    seed_supabase(postgres_dsn, schema, 12)
    mapping = tmp_path / "supabase.toml"
    mapping.write_text(supabase_mapping(schema))
    return {
        "DATABASE_URL": postgres_dsn,
        "DYNAMODB_ENDPOINT_URL": dynamodb_endpoint,
        "DYNAMODB_TABLE": unique_name("users"),
        "DYNAMODB_STATE_TABLE": unique_name("state"),
        "MAPPING_FILE": str(mapping),
        "SCHEMA": schema,
    }


async def key_schema(env: dict[str, str], table: str) -> Any:
    async with dynamodb_client(env["DYNAMODB_ENDPOINT_URL"], "us-east-1") as client:
        description = await client.describe_table(TableName=table)
    return description["Table"]["KeySchema"], description["Table"]["AttributeDefinitions"]


async def test_init_tables_makes_the_key_a_string_for_a_uuid_key(supabase):
    result = cli(supabase, "init-tables")
    assert result.returncode == 0, result.stderr
    schema, definitions = await key_schema(supabase, supabase["DYNAMODB_TABLE"])
    assert schema == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert definitions == [{"AttributeName": "id", "AttributeType": "S"}]


async def test_a_table_whose_key_type_differs_from_the_mappings_is_exit_2_naming_both(supabase, tmp_path: Path):
    assert cli(supabase, "init-tables").returncode == 0
    integer = tmp_path / "integer.toml"
    integer.write_text(supabase_mapping(supabase["SCHEMA"], key_type=None))
    result = cli(supabase, "init-tables", "--mapping", str(integer))
    assert result.returncode == 2, result.stderr
    assert "partition key 'id' of type S, but the mapping's key is of type N" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_uuid_key_without_key_type_is_named_with_what_to_write(supabase, tmp_path: Path):
    plain = tmp_path / "plain.toml"
    plain.write_text(supabase_mapping(supabase["SCHEMA"], key_type=None))
    result = cli(supabase, "mapping", "--mapping", str(plain))
    assert result.returncode == 2, result.stderr
    assert "column 'id' is of type uuid" in result.stderr
    assert 'say key_type = "uuid" under [source]' in result.stderr
    assert "Traceback" not in result.stderr


def test_a_wrong_key_type_is_named(supabase, tmp_path: Path):
    wrong = tmp_path / "wrong.toml"
    wrong.write_text(supabase_mapping(supabase["SCHEMA"], key_type="strange"))
    result = cli(supabase, "mapping", "--mapping", str(wrong))
    assert result.returncode == 2, result.stderr
    assert "[source] key_type: 'strange' is not a key type (expected one of 'integer', 'uuid', 'text')" in result.stderr


def test_commands_that_read_a_uuid_keyed_source_refuse_with_exit_2_until_they_take_it(supabase):
    assert cli(supabase, "init-tables").returncode == 0
    for command in (["mapping"], ["migrate", "--all"], ["stats"]):
        result = cli(supabase, *command)
        assert result.returncode == 2, (command, result.stderr)
        assert "[source] key_type 'uuid': only `init-tables` takes a uuid or text key" in result.stderr
        assert "Traceback" not in result.stderr
