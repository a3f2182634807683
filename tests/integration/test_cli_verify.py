"""`user-migration verify` against the real servers (in the test process; as a real process where
signals or `--workers` are tested): each kind of difference found and nothing else, `--repair` fixing
what the migration may fix and leaving the rest, ranges, interruption, and the exit codes."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from datetime import timedelta
from pathlib import Path

import pytest

from tests.cli_runner import cli, command, process_environment, run_process
from tests.factories import UPDATED, prepared_user, to_item, valid_user
from tests.real_adapters import execute, fresh_environment, insert_users
from tests.real_adapters import quote_table_name as quoted
from user_migration.adapters.dynamodb.client import dynamodb_client
from user_migration.adapters.dynamodb.codec import key_of
from user_migration.adapters.dynamodb.plan import PlanStore
from user_migration.adapters.dynamodb.state import DynamoDbMigrationState
from user_migration.adapters.dynamodb.target import DynamoDbUserTarget
from user_migration.domain.convert.mapping import MIGRATION_DIGEST, MIGRATION_VERSION
from user_migration.domain.model import WriteRule
from user_migration.entrypoints.cli.main import main
from user_migration.entrypoints.library import UserMigration

LATER = UPDATED + timedelta(days=2)
COUNTS = {
    "checked": 49,
    "matching": 44,
    "missing": 1,
    "different": 2,
    "extra": 2,
    "newer_in_dynamodb": 1,
    "invalid_in_source": 1,
}

# The --out lines of a verify of `every_kind_of_difference`, by id.
FOUND_LINES = [
    {"user_id": 4, "problem": "missing", "fields": []},
    {"user_id": 6, "problem": "different", "fields": ["display_name"]},
    {"user_id": 8, "problem": "different", "fields": ["email"]},
    {"user_id": 9, "problem": "extra", "fields": []},
    {"user_id": 12, "problem": "newer_in_dynamodb", "fields": []},
    {"user_id": 15, "problem": "invalid_in_source", "fields": [], "reasons": ["Invalid email format"]},
    {"user_id": 70, "problem": "extra", "fields": []},
]


@pytest.fixture
async def env(postgres_dsn, dynamodb_endpoint, dynamodb) -> dict[str, str]:
    return await fresh_environment(postgres_dsn, dynamodb_endpoint, dynamodb)


def foreign_item(user_id: int, **changes) -> dict:
    """An item an application wrote: no digest, no version."""
    item = to_item(valid_user(user_id, **changes), UPDATED)
    del item[MIGRATION_DIGEST], item[MIGRATION_VERSION]
    return item


async def migrated_users(env: dict[str, str]) -> int:
    async with dynamodb_client(env["DYNAMODB_ENDPOINT_URL"], "us-east-1") as client:
        return (await DynamoDbMigrationState(client, env["DYNAMODB_STATE_TABLE"]).read_progress()).migrated_users


async def every_kind_of_difference(env: dict[str, str], dynamodb) -> None:
    """Users 1..50 migrated, then: 4 missing, 6 different (row renamed), 8 different and someone
    else's, 9 extra (row deleted), 12 newer in DynamoDB, 15 invalid in the source, 70 extra and
    someone else's."""
    database, table = env["DATABASE_URL"], quoted(env["SOURCE_TABLE"])
    insert_users(database, env["SOURCE_TABLE"], [valid_user(i) for i in range(1, 51)])
    async with UserMigration.from_env(env) as migration:
        assert (await migration.migrate_all()).migrated == 50
    users = env["DYNAMODB_TABLE"]
    await dynamodb.delete_item(TableName=users, Key=key_of(4, "user_id"))
    execute(database, f"UPDATE {table} SET display_name = 'Renamed' WHERE id = 6")
    await dynamodb.put_item(TableName=users, Item=foreign_item(8, email="app8@example.com"))
    execute(database, f"DELETE FROM {table} WHERE id = 9")
    await DynamoDbUserTarget(dynamodb, users).write_users_if([prepared_user(12, updated_at=LATER)], WriteRule.OLDER)
    execute(database, f"UPDATE {table} SET email = 'not-an-email' WHERE id = 15")
    await dynamodb.put_item(TableName=users, Item=foreign_item(70))


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def by_id(found: list[dict]) -> list[dict]:
    return sorted(found, key=lambda line: line["user_id"])  # extras come in the scan's order


async def test_verify_finds_each_difference_and_repair_leaves_what_it_must_not_touch(env, dynamodb, tmp_path):
    await every_kind_of_difference(env, dynamodb)
    found = tmp_path / "found.jsonl"
    result = cli(env, "verify", "--json", "--out", str(found), "--batch-size", "7")
    assert result.returncode == 1, result.stderr
    assert json.loads(result.stdout) == COUNTS
    assert by_id(lines(found)) == FOUND_LINES

    counted = await migrated_users(env)
    repaired = tmp_path / "repaired.jsonl"
    result = cli(env, "verify", "--repair", "--json", "--out", str(repaired))
    assert result.returncode == 1, result.stderr  # 8 and 70 are someone else's: left, reported
    assert json.loads(result.stdout) == {**COUNTS, "repaired": 3, "not_repaired": 2}
    assert by_id(lines(repaired)) == [
        {"user_id": 4, "problem": "missing", "fields": [], "repaired": True},
        {"user_id": 6, "problem": "different", "fields": ["display_name"], "repaired": True},
        {
            "user_id": 8,
            "problem": "different",
            "fields": ["email"],
            "repaired": False,
            "why": "not written by the migration (no migration_digest): left as it is",
        },
        {"user_id": 9, "problem": "extra", "fields": [], "repaired": True},
        {"user_id": 12, "problem": "newer_in_dynamodb", "fields": []},
        {"user_id": 15, "problem": "invalid_in_source", "fields": [], "reasons": ["Invalid email format"]},
        {
            "user_id": 70,
            "problem": "extra",
            "fields": [],
            "repaired": False,
            "why": "not written by the migration (no migration_digest): left as it is",
        },
    ]
    assert await migrated_users(env) == counted + 1 - 1  # 4 written and counted, 9 deleted and uncounted
    assert (await dynamodb.get_item(TableName=env["DYNAMODB_TABLE"], Key=key_of(8, "user_id")))["Item"] == (
        foreign_item(8, email="app8@example.com")
    )

    # The application's items gone, what remains is not the migration's to fix: exit 0.
    for user_id in (8, 70):
        await dynamodb.delete_item(TableName=env["DYNAMODB_TABLE"], Key=key_of(user_id, "user_id"))
    execute(env["DATABASE_URL"], f"DELETE FROM {quoted(env['SOURCE_TABLE'])} WHERE id = 8")
    result = cli(env, "verify")
    assert result.returncode == 0, result.stderr
    assert "Checked 48 users" in result.stdout
    assert "0 missing, 0 different, 0 extra, 1 newer in DynamoDB, 1 invalid in the source" in result.stdout


async def test_a_range_verifies_only_its_rows_and_items(env, dynamodb, tmp_path):
    await every_kind_of_difference(env, dynamodb)
    found = tmp_path / "found.jsonl"
    result = cli(env, "verify", "--start-user-id", "5", "--end-user-id", "9", "--json", "--out", str(found))
    assert result.returncode == 1, result.stderr
    assert json.loads(result.stdout)["checked"] == 4  # 5..9 without 9
    assert [(line["user_id"], line["problem"]) for line in lines(found)] == [
        (6, "different"),
        (8, "different"),
        (9, "extra"),
    ]
    clean = cli(env, "verify", "--start-user-id", "16", "--end-user-id", "50", "--json")
    assert clean.returncode == 0, clean.stderr
    assert json.loads(clean.stdout)["matching"] == 35


def start_verifying(env: dict[str, str], *arguments: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        command("verify", *arguments),
        env=process_environment(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


async def test_sigint_stops_the_run_cleanly(env, tmp_path):
    insert_users(env["DATABASE_URL"], env["SOURCE_TABLE"], [valid_user(i) for i in range(1, 1001)])
    found = tmp_path / "found.jsonl"  # nothing was migrated: every row is missing
    process = start_verifying(env, "--batch-size", "5", "--out", str(found))
    deadline = time.monotonic() + 60
    while not (found.exists() and found.stat().st_size > 0):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "no difference written within 60 s"
        await asyncio.sleep(0.05)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "Stopping after the current batches" in err
    assert "Stopped early on request" in out
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("verify", "--batch-size", "0"), "--batch-size must be between 1 and 1000"),
        (("verify", "--start-user-id", "9", "--end-user-id", "3"), "--end-user-id must be between --start-user-id"),
        (("verify", "--start-user-id", "-1"), "--start-user-id must be between 0"),
        (("verify", "--workers", "2", "--start-user-id", "5"), "--workers verifies the whole id space"),
        (("verify", "--restart"), "--restart goes with --workers"),
        (("verify", "--workers", "0"), "--workers must be between 1 and 64"),
        (("verify", "--out", "/nonexistent/folder/found.jsonl"), "not a file in an existing folder"),
    ],
)
def test_usage_errors_exit_2(arguments, message, capsys):
    # In this process (the same parser and dispatch): a usage error never gets as far as I/O.
    assert main(list(arguments)) == 2
    assert message in capsys.readouterr().err


def test_a_missing_table_exits_2_and_an_unreachable_source_3(env):
    missing = cli({**env, "DYNAMODB_TABLE": "no_such_table"}, "verify", "--json")
    assert missing.returncode == 2
    assert json.loads(missing.stdout)["error"] == "table_missing"
    unreachable = cli({**env, "DATABASE_URL": "postgresql://postgres@127.0.0.1:1/postgres"}, "verify")
    assert unreachable.returncode == 3


async def test_verify_workers_share_one_pass_and_report_each_difference_once(env, dynamodb, tmp_path):
    """3 worker processes over 3 segments (ids split at 20 and 40): the rows of each segment and
    one part of the parallel scan for extra items each; together they find what one verify finds."""

    async def at_20_and_40() -> list[int]:
        return [20, 40]

    await PlanStore(dynamodb, env["DYNAMODB_STATE_TABLE"], propose=at_20_and_40).plan()
    await every_kind_of_difference(env, dynamodb)
    found = tmp_path / "found.jsonl"
    result = run_process(env, "verify", "--workers", "3", "--json", "--out", str(found), "--batch-size", "7")
    assert result.returncode == 1, result.stderr
    summary = json.loads(result.stdout)
    assert {name: summary[name] for name in COUNTS} == COUNTS
    assert summary["pass_counts"] == COUNTS
    assert (summary["segments_done"], summary["unfinished_segments"], summary["verify_pass"]) == (3, 0, 1)
    assert len(summary["workers"]) == 3
    assert by_id(lines(found)) == FOUND_LINES  # each once, though three processes wrote parts of it

    # A worker that comes after the pass finished verifies nothing, and tells the pass's verdict.
    late = cli(env, "verify", "--workers", "1", "--json")
    assert late.returncode == 1, late.stderr
    late_summary = json.loads(late.stdout)
    assert (late_summary["checked"], late_summary["pass_counts"]) == (0, COUNTS)

    repaired = run_process(env, "verify", "--workers", "2", "--restart", "--repair", "--json")
    assert repaired.returncode == 1, repaired.stderr  # 8 and 70 are someone else's
    assert json.loads(repaired.stdout)["pass_counts"] == {**COUNTS, "repaired": 3, "not_repaired": 2}
    assert json.loads(repaired.stdout)["verify_pass"] == 2
