"""Supabase's real `auth.users` (a uuid key) and Keycloak's `user_entity` (a varchar(36) key) through
a mapping file, as a new user runs them: the key as it is, no view (real PostgreSQL, moto server,
the CLI in the test process, and as a process where the process is the point: `--workers`, a stream
stopped by SIGTERM)."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.cli_runner import cli, command, process_environment, run_process
from tests.keyed_tables import KeyedTable, keycloak_table, supabase_table
from tests.supabase_auth import supabase_mapping
from user_migration.adapters.dynamodb.client import dynamodb_client


def keyed_table(kind: str, postgres_dsn: str, dynamodb_endpoint: str, folder: Path) -> KeyedTable:
    """40 users in a Supabase (uuid) or Keycloak (text) table, and its DynamoDB tables made by `init-tables`."""
    make = supabase_table if kind == "uuid" else keycloak_table
    table = make(postgres_dsn, dynamodb_endpoint, folder, 40)
    assert cli(table.env, "init-tables").returncode == 0
    return table


@pytest.fixture(params=["uuid", "text"])
def keyed(request: pytest.FixtureRequest, postgres_dsn: str, dynamodb_endpoint: str, tmp_path: Path) -> KeyedTable:
    """A stack of the test's own: for the tests that write."""
    return keyed_table(request.param, postgres_dsn, dynamodb_endpoint, tmp_path)


@pytest.fixture(scope="module", params=["uuid", "text"])
def read_only_keyed(
    request: pytest.FixtureRequest, postgres_dsn: str, dynamodb_endpoint: str, tmp_path_factory: pytest.TempPathFactory
) -> KeyedTable:
    """One stack per key kind, shared by the tests that only read it (none migrates, syncs or changes a row)."""
    return keyed_table(request.param, postgres_dsn, dynamodb_endpoint, tmp_path_factory.mktemp(request.param))


def ok(result: Any) -> dict[str, Any]:
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return json.loads(result.stdout) if result.stdout.strip().startswith("{") else {}


async def key_schema(env: dict[str, str]) -> Any:
    async with dynamodb_client(env["DYNAMODB_ENDPOINT_URL"], "us-east-1") as client:
        description = await client.describe_table(TableName=env["DYNAMODB_TABLE"])
    return description["Table"]["KeySchema"], description["Table"]["AttributeDefinitions"]


async def test_init_tables_makes_the_key_a_string(read_only_keyed: KeyedTable):
    schema, definitions = await key_schema(read_only_keyed.env)
    assert schema == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert definitions == [{"AttributeName": "id", "AttributeType": "S"}]


def test_a_table_whose_key_type_differs_from_the_mappings_is_exit_2_naming_both(
    read_only_keyed: KeyedTable, tmp_path: Path
):
    keyed = read_only_keyed
    integer = tmp_path / "integer.toml"
    integer.write_text(Path(keyed.env["MAPPING_FILE"]).read_text().replace(f'key_type = "{keyed.kind}"\n', ""))
    result = cli(keyed.env, "init-tables", "--mapping", str(integer))
    assert result.returncode == 2, result.stderr
    assert "partition key 'id' of type S, but the mapping's key is of type N" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_key_without_key_type_is_named_with_what_to_write(read_only_keyed: KeyedTable, tmp_path: Path):
    keyed = read_only_keyed
    plain = tmp_path / "plain.toml"
    plain.write_text(Path(keyed.env["MAPPING_FILE"]).read_text().replace(f'key_type = "{keyed.kind}"\n', ""))
    result = cli(keyed.env, "mapping", "--mapping", str(plain))
    assert result.returncode == 2, result.stderr
    type_name = "uuid" if keyed.kind == "uuid" else "character varying"
    assert f"column 'id' is of type {type_name}" in result.stderr
    assert f'say key_type = "{keyed.kind}" under [source]' in result.stderr


def test_a_wrong_key_type_is_named(postgres_dsn, dynamodb_endpoint, tmp_path: Path):
    table = supabase_table(postgres_dsn, dynamodb_endpoint, tmp_path, 1)
    wrong = tmp_path / "wrong.toml"
    wrong.write_text(supabase_mapping(table.schema, key_type="strange"))
    result = cli(table.env, "mapping", "--mapping", str(wrong))
    assert result.returncode == 2, result.stderr
    assert "[source] key_type: 'strange' is not a key type (expected one of 'integer', 'uuid', 'text')" in result.stderr


async def test_the_mapping_shows_the_key_as_a_string(read_only_keyed: KeyedTable):
    shown = ok(cli(read_only_keyed.env, "mapping", "--json", "--sample", "10"))
    key = next(column for column in shown["columns"] if column["role"] == "key")
    assert (key["attribute"], key["target_type"]) == ("id", "S")


async def test_migrate_all_dry_run_resume_and_verify(keyed: KeyedTable):
    dry = ok(cli(keyed.env, "migrate", "--all", "--dry-run", "--json"))
    assert dry["migrated_count"] == 40
    assert await keyed.items() == {}
    summary = ok(cli(keyed.env, "migrate", "--all", "--json"))
    assert (summary["migrated_count"], summary["failed_count"]) == (40, 0)
    items = await keyed.items()
    assert sorted(items) == sorted(keyed.ids)  # every key as it is in PostgreSQL, none made up
    assert await keyed.emails() == keyed.source_emails()
    again = ok(cli(keyed.env, "migrate", "--all", "--restart", "--json"))
    assert (again["migrated_count"], again["skipped_count"]) == (0, 40)
    verified = ok(cli(keyed.env, "verify", "--json"))
    assert (verified["checked"], verified["matching"], verified["extra"]) == (40, 40, 0)
    stats = ok(cli(keyed.env, "stats", "--json"))
    assert (stats["total_dynamo_users"], stats["pending_migration"]) == (40, 0)
    assert stats["last_migrated_user_id"] == max(keyed.ids)


async def test_single_user_retry_failed_and_rewrite(keyed: KeyedTable, tmp_path: Path):
    broken = keyed.ids[3]
    keyed.update_email(broken, "not an email")
    failed_file = tmp_path / "failed.jsonl"
    summary = cli(keyed.env, "migrate", "--all", "--json", "--failed-out", str(failed_file))
    assert summary.returncode == 1, summary.stderr
    result = json.loads(summary.stdout)
    assert result["failed_user_ids"] == [broken]
    assert result["errors"] == [f"User {broken}: Invalid email format"]
    assert [json.loads(line)["user_id"] for line in failed_file.read_text().splitlines()] == [broken]
    keyed.update_email(broken, "fixed@example.com")
    retried = ok(cli(keyed.env, "migrate", "--retry-failed", str(failed_file), "--json"))
    assert (retried["migrated_count"], retried["failed_count"]) == (1, 0)
    assert (await keyed.emails())[broken] == "fixed@example.com"
    keyed.update_email(broken, "changed@example.com")
    single = ok(cli(keyed.env, "migrate", "--user-id", broken, "--rewrite", "--json"))
    assert single["failed_count"] == 0
    assert (await keyed.emails())[broken] == "changed@example.com"
    missing = cli(keyed.env, "migrate", "--user-id", "no-such-user" if keyed.kind == "text" else str(uuid.uuid4()))
    assert missing.returncode == 1
    assert "does not exist in the source database" in missing.stdout


def test_a_malformed_uuid_is_exit_2_naming_the_option(postgres_dsn, dynamodb_endpoint, tmp_path: Path):
    table = supabase_table(postgres_dsn, dynamodb_endpoint, tmp_path, 1)
    assert cli(table.env, "init-tables").returncode == 0
    result = cli(table.env, "migrate", "--user-id", "12345")
    assert result.returncode == 2, result.stderr
    assert "--user-id must be a uuid" in result.stderr
    assert "Traceback" not in result.stderr


async def test_three_workers_share_the_table_by_sampled_split_points(keyed: KeyedTable):
    # Enough users for three segments of 100 (SEGMENT_MIN_USERS), split at sampled ids.
    keyed.insert_many([(str(uuid.uuid4()), f"bulk{index}@example.com") for index in range(40, 340)])
    env = {**keyed.env, "SEGMENT_MIN_USERS": "100"}
    summary = ok(run_process(env, "migrate", "--all", "--workers", "3", "--batch-size", "25", "--json"))
    assert (summary["migrated_count"], summary["failed_count"], len(summary["workers"])) == (340, 0, 3)
    assert (summary["segments_done"], summary["unfinished_segments"]) == (3, 0)
    assert sorted(await keyed.items()) == sorted(keyed.ids)
    verified = ok(run_process(env, "verify", "--workers", "3", "--json"))
    assert (verified["checked"], verified["matching"]) == (340, 340)


async def test_sync_carries_updates_inserts_and_deletes(keyed: KeyedTable):
    ok(cli(keyed.env, "migrate", "--all", "--json"))
    keyed.update_email(keyed.ids[0], "updated@example.com")
    keyed.delete(keyed.ids[1])
    new_id = str(uuid.uuid4()) if keyed.kind == "uuid" else "Новый"
    keyed.insert(new_id, "new@example.com")
    synced = ok(cli(keyed.env, "sync", "--once", "--json"))
    assert synced["deleted"] == 1
    assert synced["written"] >= 2
    assert await keyed.emails() == keyed.source_emails()
    verified = ok(cli(keyed.env, "verify", "--json"))
    assert (verified["checked"], verified["matching"], verified["extra"]) == (40, 40, 0)


@pytest.mark.parametrize("kind", ["uuid", "text"])
async def test_the_logical_stream_carries_updates_inserts_and_deletes(
    kind: str, logical_postgres_dsn: str, dynamodb_endpoint: str, tmp_path: Path
):
    make = supabase_table if kind == "uuid" else keycloak_table
    table = make(logical_postgres_dsn, dynamodb_endpoint, tmp_path, 40)
    ok(cli(table.env, "init-tables"))
    ok(cli(table.env, "cdc", "setup"))
    process = subprocess.Popen(  # noqa: ASYNC220 (the stream runs beside the test)
        command("sync", "--follow", "--changes", "logical", "--batch-size", "50", "--json"),
        env=process_environment(table.env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for step in range(12):
            table.update_email(table.ids[step], f"stream{step}@example.com")
            if step % 4 == 0:
                table.delete(table.ids[-1])
            table.insert(str(uuid.uuid4()) if kind == "uuid" else f"stream-user-{step:02d}", f"new{step}@example.com")
        deadline = time.monotonic() + 60
        while (found := await table.emails()) != (wanted := table.source_emails()):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, (sorted(set(wanted) ^ set(found))[:5], len(found), len(wanted))
            await asyncio.sleep(0.5)
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
        table.run_sql(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = %s",
            (table.env["CDC_SLOT"],),
        )
    assert process.returncode == 0, err
    assert "Traceback" not in err
    verified = ok(cli(table.env, "verify", "--json"))
    # The stream versions its items by its own position: verify tells them `newer_in_dynamodb` (no difference).
    assert (verified["checked"], verified["missing"], verified["different"], verified["extra"]) == (49, 0, 0, 0)
    assert verified["matching"] + verified["newer_in_dynamodb"] == 49


@pytest.mark.parametrize("kind", ["uuid", "text"])
async def test_partiql_batches_on_dynamodb_local_carry_uuid_and_text_keys(
    kind: str, postgres_dsn: str, dynamodb_local_endpoint: str, tmp_path: Path
):
    """AWS's own DynamoDB Local runs the batched statements (forced: a statement it refused would
    fail the run, not fall back), with string keys in the statements' parameters."""
    make = supabase_table if kind == "uuid" else keycloak_table
    table = make(postgres_dsn, dynamodb_local_endpoint, tmp_path, 40)
    table.env["DYNAMODB_WRITE_PATH"] = "partiql"
    assert cli(table.env, "init-tables").returncode == 0
    summary = ok(cli(table.env, "migrate", "--all", "--json"))
    assert (summary["migrated_count"], summary["failed_count"]) == (40, 0)
    assert sorted(await table.items()) == sorted(table.ids)
    table.update_email(table.ids[0], "updated@example.com")
    table.delete(table.ids[1])
    table.insert(str(uuid.uuid4()) if kind == "uuid" else "Новый", "new@example.com")
    synced = ok(cli(table.env, "sync", "--once", "--json"))
    assert (synced["deleted"], synced["failed_count"]) == (1, 0)
    assert synced["written"] >= 2
    assert await table.emails() == table.source_emails()
    verified = ok(cli(table.env, "verify", "--json"))
    assert (verified["checked"], verified["matching"], verified["extra"]) == (40, 40, 0)


async def test_a_walk_from_a_start_id_then_resumed(keyed: KeyedTable):
    ordered = sorted(keyed.ids)
    start = ordered[10]
    walked = ok(cli(keyed.env, "migrate", "--all", "--start-user-id", start, "--json"))
    assert walked["migrated_count"] == 30  # the ids from `start` on, in the key's order
    assert sorted(await keyed.items()) == ordered[10:]
    assert walked["resume_from_user_id"] > ordered[-1]  # the walk's checkpoint: past its last id
    # `--all --resume` is the leased run over the whole table (as for an integer key): it finds 30 stored.
    resumed = ok(cli(keyed.env, "migrate", "--all", "--resume", "--json"))
    assert (resumed["migrated_count"], resumed["skipped_count"]) == (10, 30)
    assert sorted(await keyed.items()) == ordered
