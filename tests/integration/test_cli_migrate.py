"""`user-migration migrate` and `stats` against the real servers: in the test process (`tests.cli_runner`), and
as real processes where the process is the point (a signal, `--workers`, a run the test changes the source under)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.cli_runner import cli, command, process_environment, run_process
from tests.factories import from_item, valid_user
from tests.real_adapters import (
    checkpointed,
    execute,
    fresh_environment,
    insert_users,
    run_leases,
)
from tests.real_adapters import quote_table_name as quoted
from user_migration.adapters.dynamodb.client import dynamodb_client
from user_migration.adapters.dynamodb.state import DynamoDbMigrationState
from user_migration.adapters.dynamodb.target import DynamoDbUserTarget
from user_migration.domain.migrate.request import MAX_USER_ID
from user_migration.entrypoints.demo.embedded import free_port

INVALID = {17: {"email": "nope"}, 120: {"username": None}, 233: {"status": "archived"}}


def users(count: int) -> list:
    return [valid_user(i, **INVALID.get(i, {})) for i in range(1, count + 1)]


@pytest.fixture
async def env(postgres_dsn, dynamodb_endpoint, dynamodb) -> dict[str, str]:
    return await fresh_environment(postgres_dsn, dynamodb_endpoint, dynamodb)


async def stored(env: dict[str, str]) -> tuple[int, int]:
    """(items in the users table, the migrated_users counter)."""
    async with dynamodb_client(env["DYNAMODB_ENDPOINT_URL"], "us-east-1") as client:
        count = await DynamoDbUserTarget(client, env["DYNAMODB_TABLE"]).count_users()
        progress = await DynamoDbMigrationState(client, env["DYNAMODB_STATE_TABLE"]).read_progress()
    return count, progress.migrated_users


async def test_workers_here_add_up_their_summaries_and_join_their_failed_users_files(env, tmp_path: Path):
    insert_users(env["DATABASE_URL"], env["SOURCE_TABLE"], users(250))
    failed_file = tmp_path / "failed.jsonl"
    result = run_process(env, "migrate", "--all", "--workers", "2", "--json", "--failed-out", str(failed_file))
    assert result.returncode == 1, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["migrated_count"], summary["failed_user_ids"], len(summary["workers"])) == (247, [17, 120, 233], 2)
    assert (summary["unfinished_segments"], summary["resume_from_user_id"]) == (0, None)
    assert sorted(json.loads(line)["user_id"] for line in failed_file.read_text().splitlines()) == [17, 120, 233]
    assert sorted(os.listdir(tmp_path)) == ["failed.jsonl"]  # the workers' parts, joined and removed
    assert await stored(env) == (247, 247)


async def test_migrate_all_reports_failures_to_a_file_and_retry_fixes_them(env, tmp_path: Path):
    insert_users(env["DATABASE_URL"], env["SOURCE_TABLE"], users(250))
    failed_file = tmp_path / "failed.jsonl"

    result = cli(env, "migrate", "--all", "--batch-size", "100", "--failed-out", str(failed_file))
    assert result.returncode == 1, result.stderr
    assert "Migrated 247 users, skipped 0 already in DynamoDB, failed 3" in result.stdout
    assert "User 17: Invalid email format" in result.stderr
    lines = [json.loads(line) for line in failed_file.read_text().splitlines()]
    assert lines == [
        {"user_id": 17, "reasons": ["Invalid email format"]},
        {"user_id": 120, "reasons": ["Missing required field 'username'"]},
        {"user_id": 233, "reasons": ["Invalid status 'archived'"]},
    ]
    assert await stored(env) == (247, 247)

    execute(env["DATABASE_URL"], f"UPDATE {quoted(env['SOURCE_TABLE'])} SET email = 'ok17@example.com' WHERE id = 17")
    retry = cli(env, "migrate", "--retry-failed", str(failed_file), "--json")
    assert retry.returncode == 1  # 120 and 233 are still broken
    summary = json.loads(retry.stdout)
    assert (summary["migrated_count"], summary["failed_user_ids"]) == (1, [120, 233])
    assert await stored(env) == (248, 248)

    stats = cli(env, "stats", "--json")
    assert stats.returncode == 0
    shown = json.loads(stats.stdout)
    assert shown == {
        "total_postgres_users": 250,
        "total_dynamo_users": 248,
        "pending_migration": 2,
        "last_migrated_user_id": 250,
        "total_postgres_users_as_of": shown["total_postgres_users_as_of"],  # counted by the command
        "total_postgres_users_exact": True,
        "failed_users": 2,  # 120 and 233
    }
    table = cli(env, "stats").stdout.splitlines()
    assert table[0].startswith("total_postgres_users    250 (exact as of 20")
    assert table[1:] == [
        "total_dynamo_users      248",
        "pending_migration       2",
        "last_migrated_user_id   250",
        "failed_users            2",
    ]


async def test_dry_run_writes_nothing_and_a_clean_source_exits_0(env):
    insert_users(env["DATABASE_URL"], env["SOURCE_TABLE"], [valid_user(i) for i in range(1, 31)])
    dry = cli(env, "migrate", "--all", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    report = json.loads(dry.stdout)
    assert (report["migrated_count"], report["dry_run"], report["resume_from_user_id"]) == (30, True, None)
    assert await stored(env) == (0, 0)
    real = cli(env, "migrate", "--all", "--batch-size", "7")
    assert real.returncode == 0, real.stderr
    finished = json.loads(cli(env, "migrate", "--all", "--json").stdout)
    assert (finished["users_read"], finished["unfinished_segments"]) == (0, 0)  # the run is done: not walked again
    again = cli(env, "migrate", "--all", "--restart", "--json")
    assert json.loads(again.stdout)["skipped_count"] == 30
    assert await stored(env) == (30, 30)


async def test_single_user(env):
    insert_users(env["DATABASE_URL"], env["SOURCE_TABLE"], users(20))
    assert cli(env, "migrate", "--user-id", "5").returncode == 0
    failed = cli(env, "migrate", "--user-id", "17")
    assert failed.returncode == 1
    assert "User 17: Invalid email format" in failed.stderr
    missing = cli(env, "migrate", "--user-id", "999", "--json")
    assert missing.returncode == 1
    assert json.loads(missing.stdout)["error"] == "user_not_found"
    assert await stored(env) == (1, 1)


def start_migrating(env: dict[str, str], *arguments: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        command("migrate", "--all", *arguments),
        env=process_environment(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


async def wait_for_a_checkpoint(env: dict[str, str], process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    async with dynamodb_client(env["DYNAMODB_ENDPOINT_URL"], "us-east-1") as client:
        while not checkpointed(await run_leases(client, env["DYNAMODB_STATE_TABLE"])):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "no checkpoint within 60 s"
            await asyncio.sleep(0.05)


async def test_resume_after_the_source_went_away_mid_run(env):
    """The source table vanishes during a run: exit 2 (the schema no longer fits the mapping: the
    operator's to fix, not an outage); once it is back, --resume finishes the job."""
    # The ended run leaves its segment leased: the resumed run takes it over once the lease has run out
    # (10 s by default; short here, still far longer than a page of 25 takes).
    env = {**env, "SEGMENT_LEASE_SECONDS": "4"}
    insert_users(env["DATABASE_URL"], env["SOURCE_TABLE"], [valid_user(i) for i in range(1, 1201)])
    table, hidden = quoted(env["SOURCE_TABLE"]), quoted(env["SOURCE_TABLE"] + "_away")
    process = start_migrating(env, "--batch-size", "25")
    await wait_for_a_checkpoint(env, process)
    execute(env["DATABASE_URL"], f"ALTER TABLE {table} RENAME TO {hidden}")
    _, err = process.communicate(timeout=60)
    assert process.returncode == 2, err
    assert "does not exist" in err
    count, counter = await stored(env)
    assert 0 < count < 1200
    assert counter == count
    async with dynamodb_client(env["DYNAMODB_ENDPOINT_URL"], "us-east-1") as client:
        leases = await run_leases(client, env["DYNAMODB_STATE_TABLE"])
        failed = (await DynamoDbMigrationState(client, env["DYNAMODB_STATE_TABLE"]).read_progress()).failed_users
        target = DynamoDbUserTarget(client, env["DYNAMODB_TABLE"])
        stored_ids = {i async for page in target.scan_user_ids(0, MAX_USER_ID) for i in page}
    read_again = to_read = 0
    for lease in (lease for lease in leases if not lease.done):
        ids = range(max(1, lease.segment.lowest), min(1200, lease.segment.highest) + 1)
        first_missing = min((i for i in ids if i not in stored_ids), default=ids.stop)  # all stored: its end
        # A segment's checkpoint is the first id of its page that was not finished: every user of the
        # segment below it is stored, and it is at most a page of 25 before the first that is not.
        # (A write that failed keeps the checkpoint before its user, whose item may have landed all
        # the same: under heavy load moto's answers time out, and then only the first holds.)
        assert lease.checkpoint <= first_missing, (lease, first_missing)
        if failed == 0:
            assert first_missing - 25 <= lease.checkpoint, (lease, first_missing)
        read_again += sum(1 for i in ids if i >= lease.checkpoint and i in stored_ids)
        to_read += sum(1 for i in ids if i >= lease.checkpoint)

    execute(env["DATABASE_URL"], f"ALTER TABLE {hidden} RENAME TO {table}")
    resumed = cli(env, "migrate", "--all", "--resume", "--batch-size", "500", "--json")
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads(resumed.stdout)
    # Read again and found stored: exactly the users stored from their segment's checkpoint on. Unless the
    # resumed run lost a lease of its own (its 4 s renewals late on a loaded machine: seen at a load of 10,
    # 1,748 users read): then it read that segment again from its checkpoint, and what it had written of it
    # since is found stored too.
    read_twice = summary["users_read"] - to_read
    assert read_twice >= 0, (to_read, summary)
    assert read_again <= summary["skipped_count"] <= read_again + read_twice, (read_again, to_read, summary)
    assert summary["migrated_count"] == 1200 - count
    assert await stored(env) == (1200, 1200)


async def test_sigint_stops_after_the_current_batches_and_resume_finishes(env):
    insert_users(env["DATABASE_URL"], env["SOURCE_TABLE"], [valid_user(i) for i in range(1, 1201)])
    process = start_migrating(env, "--batch-size", "25")
    await wait_for_a_checkpoint(env, process)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "Stopping after the current batches" in err
    assert "Stopped early on request." in out
    assert "Traceback" not in err
    count, counter = await stored(env)
    assert 0 < count < 1200
    assert counter == count

    resumed = cli(env, "migrate", "--all", "--resume", "--batch-size", "500", "--json")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["skipped_count"] == 0  # the checkpoint was exact
    assert await stored(env) == (1200, 1200)
    async with dynamodb_client(env["DYNAMODB_ENDPOINT_URL"], "us-east-1") as client:
        item = await DynamoDbUserTarget(client, env["DYNAMODB_TABLE"]).read_item(1199)
    assert item is not None
    assert from_item(item) == valid_user(1199)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("migrate", "--all", "--batch-size", "0"), "--batch-size must be between 1 and 1000"),
        (("migrate", "--all", "--resume", "--start-user-id", "5"), "cannot be combined"),
        (("migrate", "--user-id", "3", "--resume"), "go with --all"),
        (("migrate", "--all", "--restart", "--resume"), "--restart starts the run again from the beginning"),
        (("migrate", "--all", "--workers", "2", "--dry-run"), "cannot be combined with --dry-run"),
        (("migrate", "--retry-failed", "/nonexistent/file"), "no such file"),
        (("migrate",), "one of the arguments --all --user-id --retry-failed is required"),
    ],
)
def test_usage_errors_exit_2(env, arguments, message):
    result = cli(env, *arguments)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_unreachable_postgres_exits_3(env):
    result = cli({**env, "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"}, "stats")
    assert result.returncode == 3
    assert "PostgreSQL is unavailable" in result.stderr


def test_missing_configuration_exits_2(env):
    result = cli({**env, "DATABASE_URL": ""}, "migrate", "--all")
    assert result.returncode == 2
    assert "DATABASE_URL is required" in result.stderr


def test_a_malformed_failed_file_exits_2(env, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"user_id": 1}\nnot json\n')
    result = cli(env, "migrate", "--retry-failed", str(bad))
    assert result.returncode == 2
    assert "bad.jsonl:2" in result.stderr
