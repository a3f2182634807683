"""Real tables with uuid and text keys, seeded as their applications write them, and what DynamoDB
holds of them: shared by the uuid- and text-key tests (real PostgreSQL, moto server)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import psycopg2

from tests.real_adapters import unique_name
from tests.supabase_auth import (
    KEYCLOAK_USER_ENTITY,
    SUPABASE_AUTH_USERS,
    keycloak_mapping,
    supabase_mapping,
    unique_schema,
)
from user_migration.adapters.dynamodb.client import dynamodb_client

# Keycloak accepts any id an import gives (its own are uuids): texts whose byte order differs from
# a natural-language collation's (upper before lower, accents after z, a space, digits).
ODD_TEXT_IDS = ["Zoë", "admin", "Admin", "a b", "a-b", "ab", "zz", "é", "100", "99", "Ωmega", "a\u0001"]


def uuid7() -> str:
    """A time-ordered uuid (version 7 layout): its first 48 bits a millisecond clock, so that ids
    crowd at the end of the id space, as Postgres 18's `uuidv7()` makes them."""
    base = uuid.uuid4().int & ((1 << 80) - 1)
    millis = 1_760_000_000_000 + (base % 1000)
    value = (millis << 80) | base
    value = (value & ~(0xF << 76)) | (0x7 << 76)
    return str(uuid.UUID(int=value))


@attrs.define
class KeyedTable:
    """One seeded table, the environment of a CLI process on it, and how to change its rows."""

    kind: str  # "uuid" or "text"
    env: dict[str, str]
    schema: str
    table: str
    ids: list[str]

    def run_sql(self, sql: str, parameters: tuple[Any, ...] = ()) -> None:
        self.run_sql_each(sql, [parameters])

    def run_sql_each(self, sql: str, rows: Sequence[tuple[Any, ...]]) -> None:
        """`sql` once for each row of parameters, on one connection, in one transaction."""
        with psycopg2.connect(self.env["DATABASE_URL"]) as connection, connection.cursor() as cursor:
            cursor.executemany(sql, rows)
        connection.close()

    def insert(self, user_id: str, email: str) -> None:
        self.insert_many([(user_id, email)])

    def insert_many(self, users: Sequence[tuple[str, str]]) -> None:
        """Users (id, email), in one transaction."""
        if self.kind == "uuid":
            self.run_sql_each(
                f"INSERT INTO {self.table} (instance_id, id, aud, role, email, encrypted_password, created_at,"
                " updated_at, raw_user_meta_data) VALUES ('00000000-0000-0000-0000-000000000000', %s,"
                " 'authenticated', 'authenticated', %s, 'x', now(), now(), %s)",
                [(user_id, email, json.dumps({"name": email})) for user_id, email in users],
            )
        else:
            self.run_sql_each(
                f"INSERT INTO {self.table} (id, email, username, realm_id, enabled, created_timestamp, updated_at)"
                " VALUES (%s, %s, %s, 'master', true, 1700000000000, now())",
                [(user_id, email, email) for user_id, email in users],
            )
        self.ids.extend(user_id for user_id, _ in users)

    def update_email(self, user_id: str, email: str) -> None:
        self.run_sql(f"UPDATE {self.table} SET email = %s, updated_at = now() WHERE id = %s", (email, user_id))

    def delete(self, user_id: str) -> None:
        self.run_sql(f"DELETE FROM {self.table} WHERE id = %s", (user_id,))
        self.ids.remove(user_id)

    async def items(self) -> dict[str, dict[str, Any]]:
        """The users table's items by their key (an S attribute `id`)."""
        found: dict[str, dict[str, Any]] = {}
        async with dynamodb_client(self.env["DYNAMODB_ENDPOINT_URL"], "us-east-1") as client:
            arguments: dict[str, Any] = {"TableName": self.env["DYNAMODB_TABLE"], "ConsistentRead": True}
            while True:
                response = await client.scan(**arguments)
                for item in response["Items"]:
                    found[item["id"]["S"]] = item
                if "LastEvaluatedKey" not in response:
                    return found
                arguments["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    async def emails(self) -> dict[str, str | None]:
        return {user_id: item.get("email", {}).get("S") for user_id, item in (await self.items()).items()}

    def source_emails(self) -> dict[str, str | None]:
        with psycopg2.connect(self.env["DATABASE_URL"]) as connection, connection.cursor() as cursor:
            cursor.execute(f"SELECT id::text, email FROM {self.table}")
            rows = cursor.fetchall()
        connection.close()
        return {str(row[0]): row[1] for row in rows}


def supabase_table(dsn: str, dynamodb_endpoint: str, tmp_path: Path, count: int) -> KeyedTable:
    """Supabase's `auth.users` (in a schema of its own) with `count` users: uuid v4 and v7 ids alike."""
    schema = unique_schema("auth")
    table = KeyedTable("uuid", _env(dsn, dynamodb_endpoint, tmp_path, supabase_mapping(schema)), schema, "", [])
    table.table = f"{schema}.users"
    table.run_sql(f"CREATE SCHEMA {schema}; " + SUPABASE_AUTH_USERS.format(schema=schema))
    table.insert_many(
        [(str(uuid.uuid4()) if index % 2 else uuid7(), f"user{index}@example.com") for index in range(count)]
    )
    return table


def keycloak_table(dsn: str, dynamodb_endpoint: str, tmp_path: Path, count: int) -> KeyedTable:
    """Keycloak's `user_entity` (varchar(36) key) with `count` users: uuid texts and `ODD_TEXT_IDS`.
    An `updated_at` column is added for `sync` (Keycloak keeps no version; `sync` needs one)."""
    schema = unique_schema("keycloak")
    mapping = keycloak_mapping(schema).replace('key = "id"\n', 'key = "id"\nversion = "updated_at"\n', 1)
    table = KeyedTable("text", _env(dsn, dynamodb_endpoint, tmp_path, mapping), schema, f"{schema}.user_entity", [])
    table.run_sql(
        f"CREATE SCHEMA {schema}; "
        + KEYCLOAK_USER_ENTITY.format(schema=schema)
        + f"ALTER TABLE {schema}.user_entity ADD COLUMN updated_at timestamptz;"
    )
    user_ids = [*ODD_TEXT_IDS, *(str(uuid.uuid4()) for _ in range(count - len(ODD_TEXT_IDS)))]
    table.insert_many([(user_id, f"user{index}@example.com") for index, user_id in enumerate(user_ids)])
    return table


def _env(dsn: str, dynamodb_endpoint: str, tmp_path: Path, mapping_text: str) -> dict[str, str]:
    mapping = tmp_path / f"{unique_name('mapping')}.toml"
    mapping.write_text(mapping_text)
    suffix = uuid.uuid4().hex[:10]
    return {
        "DATABASE_URL": dsn,
        "DYNAMODB_ENDPOINT_URL": dynamodb_endpoint,
        "DYNAMODB_TABLE": unique_name("users"),
        "DYNAMODB_STATE_TABLE": unique_name("state"),
        "AWS_REGION": "us-east-1",
        "MAPPING_FILE": str(mapping),
        "CDC_SLOT": f"slot_{suffix}",
        "CDC_PUBLICATION": f"pub_{suffix}",
        "HOLD_LEASE_SECONDS": "2",
    }
