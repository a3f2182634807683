"""`user-migration sync` against the real servers (in the test process; as a real process for kill -9
and `--workers`): updates, inserts at low ids and deletes reach DynamoDB; a sync killed with -9 and
run again is exact; `sync --workers` shares a pass; usage errors."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from datetime import timedelta

import pytest

from tests.cli_runner import cli, command, process_environment, run_process
from tests.factories import UPDATED, from_item, valid_user
from tests.integration.test_cli_migrate import stored
from tests.real_adapters import execute, fresh_environment, insert_users
from tests.real_adapters import quote_table_name as quoted
from user_migration.adapters.dynamodb.client import dynamodb_client
from user_migration.adapters.dynamodb.plan import PlanStore
from user_migration.adapters.dynamodb.state import DynamoDbMigrationState
from user_migration.adapters.dynamodb.target import DynamoDbUserTarget
from user_migration.domain.migrate.request import MAX_USER_ID
from user_migration.entrypoints.cli.main import main

LATER = UPDATED + timedelta(days=1)


@pytest.fixture
async def env(postgres_dsn, dynamodb_endpoint, dynamodb) -> dict[str, str]:
    return await fresh_environment(postgres_dsn, dynamodb_endpoint, dynamodb)


def start_sync(env: dict[str, str], *arguments: str, output: int = subprocess.DEVNULL) -> subprocess.Popen[str]:
    """`sync` as a process; `output=subprocess.PIPE` to read its stdout and stderr."""
    errors = subprocess.PIPE if output == subprocess.PIPE else None
    return subprocess.Popen(
        command("sync", *arguments), env=process_environment(env), stdout=output, stderr=errors, text=True
    )


async def dynamodb_users(env: dict[str, str]) -> dict[int, object]:
    """Every stored item, as the documented-layout user it was written for."""
    async with dynamodb_client(env["DYNAMODB_ENDPOINT_URL"], "us-east-1") as client:
        target = DynamoDbUserTarget(client, env["DYNAMODB_TABLE"])
        ids = [user_id async for page in target.scan_user_ids(0, MAX_USER_ID) for user_id in page]
        items = await target.read_items(ids)
    return {user_id: from_item(item) for user_id, item in items.items()}


def change_rows(env: dict[str, str], updated: range, email: str) -> None:
    execute(
        env["DATABASE_URL"],
        f"UPDATE {quoted(env['SOURCE_TABLE'])} SET email = 'u' || id || %s, updated_at = %s WHERE id BETWEEN %s AND %s",
        (email, LATER, updated.start, updated.stop - 1),
    )


async def test_updates_low_inserts_and_deletes_leave_dynamodb_equal_to_postgresql(env):
    insert_users(env["DATABASE_URL"], env["SOURCE_TABLE"], [valid_user(i) for i in range(100, 400)])
    assert cli(env, "migrate", "--all", "--batch-size", "100").returncode == 0
    change_rows(env, range(150, 160), "@changed.example.com")
    insert_users(env["DATABASE_URL"], env["SOURCE_TABLE"], [valid_user(i) for i in (1, 2, 3)])  # below --resume
    execute(env["DATABASE_URL"], f"DELETE FROM {quoted(env['SOURCE_TABLE'])} WHERE id IN (200, 201, 399)")

    result = cli(env, "sync", "--once", "--json", "--batch-size", "50")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert {key: summary[key] for key in ("changes_seen", "written", "deleted", "skipped_newer", "failed_count")} == {
        "changes_seen": 16,
        "written": 13,
        "deleted": 3,
        "skipped_newer": 0,
        "failed_count": 0,
    }
    assert summary["failed_user_ids"] == []
    assert summary["errors"] == []
    assert summary["caught_up"] is True
    assert summary["lag_seconds"] >= 0

    expected = {i: valid_user(i) for i in [1, 2, 3, *range(100, 400)] if i not in (200, 201, 399)}
    for i in range(150, 160):
        expected[i] = valid_user(i, email=f"u{i}@changed.example.com", updated_at=LATER)
    assert await dynamodb_users(env) == expected
    assert await stored(env) == (len(expected), len(expected))

    again = json.loads(cli(env, "sync", "--once", "--json").stdout)
    assert (again["changes_seen"], again["written"], again["deleted"]) == (0, 0, 0)


async def test_a_sync_killed_with_minus_9_and_run_again_is_exact(env):
    insert_users(env["DATABASE_URL"], env["SOURCE_TABLE"], [valid_user(i) for i in range(1, 601)])
    assert cli(env, "migrate", "--all").returncode == 0
    change_rows(env, range(1, 601), "@second.example.com")
    execute(env["DATABASE_URL"], f"DELETE FROM {quoted(env['SOURCE_TABLE'])} WHERE id %% 97 = 0")
    # Short leases, so that the rerun takes over the killed process's holds and segment within seconds.
    env = {**env, "HOLD_LEASE_SECONDS": "2", "SEGMENT_LEASE_SECONDS": "2"}
    process = start_sync(env, "--once", "--batch-size", "20")
    deadline = time.monotonic() + 60
    async with dynamodb_client(env["DYNAMODB_ENDPOINT_URL"], "us-east-1") as client:
        target = DynamoDbUserTarget(client, env["DYNAMODB_TABLE"])
        # The first pages are carried over (pages go in id order): kill it in the middle.
        while len(await target.read_items([i for i in range(30, 41) if i % 97])) < 11 or not all(
            from_item(item).email.endswith("@second.example.com")
            for item in (await target.read_items(range(30, 41))).values()
        ):
            assert process.poll() is None, "sync ended before it could be killed"
            assert time.monotonic() < deadline
            await asyncio.sleep(0.1)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)

    rerun = cli(env, "sync", "--once", "--json")
    assert rerun.returncode == 0, rerun.stderr
    summary = json.loads(rerun.stdout)
    deleted = [i for i in range(1, 601) if i % 97 == 0]
    assert summary["written"] > 0, "the kill came after the pass had finished: nothing left to show"
    assert summary["deleted"] <= len(deleted)
    assert summary["failed_count"] == 0
    expected = {i: valid_user(i, email=f"u{i}@second.example.com", updated_at=LATER) for i in range(1, 601) if i % 97}
    assert await dynamodb_users(env) == expected
    # Each item counted once: the kill left intents behind, which the rerun settled.
    assert await stored(env) == (len(expected), len(expected))


async def test_sync_usage_and_setup_errors(env, tmp_path):
    assert cli(env, "sync").returncode == 2  # --once or --follow
    bad = cli(env, "sync", "--once", "--batch-size", "0", "--json")
    assert bad.returncode == 2
    assert json.loads(bad.stdout)["message"] == "--batch-size must be between 1 and 1000"
    mapping = tmp_path / "mapping.toml"
    mapping.write_text(f'[source]\ntable = "{env["SOURCE_TABLE"]}"\nkey = "id"\n')
    unversioned = cli(env, "sync", "--once", "--mapping", str(mapping), "--json")
    assert unversioned.returncode == 2, unversioned.stderr
    assert "[source] version" in json.loads(unversioned.stdout)["message"] + unversioned.stderr
    unversioned_worker = cli(env, "sync", "--once", "--workers", "1", "--mapping", str(mapping))
    assert unversioned_worker.returncode == 2, unversioned_worker.stderr
    down = cli({**env, "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"}, "sync", "--once")
    assert down.returncode == 3, down.stderr


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("sync", "--once", "--workers", "0"), "--workers must be between 1 and 64"),
        (("sync", "--follow", "--workers", "2", "--changes", "logical"), "a replication slot is read by one stream"),
    ],
)
def test_workers_usage_errors_exit_2(arguments, message, capsys):
    assert main(list(arguments)) == 2
    assert message in capsys.readouterr().err


async def test_sync_workers_share_a_pass_carry_each_change_once_and_record_its_cursor_once(env, dynamodb):
    """2 worker processes over 3 segments (ids split at 200 and 300): each segment's changed rows
    and one part of the scan for deletes; together they do what one `sync --once` does."""

    async def at_200_and_300() -> list[int]:
        return [200, 300]

    await PlanStore(dynamodb, env["DYNAMODB_STATE_TABLE"], propose=at_200_and_300).plan()
    insert_users(env["DATABASE_URL"], env["SOURCE_TABLE"], [valid_user(i) for i in range(100, 400)])
    assert cli(env, "migrate", "--all", "--batch-size", "100").returncode == 0
    change_rows(env, range(150, 160), "@changed.example.com")
    change_rows(env, range(295, 305), "@changed.example.com")  # across a segment's boundary
    insert_users(env["DATABASE_URL"], env["SOURCE_TABLE"], [valid_user(i) for i in (1, 2, 3)])
    execute(env["DATABASE_URL"], f"DELETE FROM {quoted(env['SOURCE_TABLE'])} WHERE id IN (200, 201, 399)")

    result = run_process(env, "sync", "--once", "--workers", "2", "--json", "--batch-size", "50")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert {key: summary[key] for key in ("changes_seen", "written", "deleted", "failed_count")} == {
        "changes_seen": 26,
        "written": 23,
        "deleted": 3,
        "failed_count": 0,
    }
    assert (summary["sync_pass"], summary["segments_done"], summary["unfinished_segments"]) == (1, 3, 0)
    assert summary["pass_applied"] == 26
    assert summary["caught_up"] is True
    assert len(summary["workers"]) == 2
    expected = {i: valid_user(i) for i in [1, 2, 3, *range(100, 400)] if i not in (200, 201, 399)}
    for i in [*range(150, 160), *range(295, 305)]:
        expected[i] = valid_user(i, email=f"u{i}@changed.example.com", updated_at=LATER)
    assert await dynamodb_users(env) == expected
    assert await stored(env) == (len(expected), len(expected))
    progress = await DynamoDbMigrationState(dynamodb, env["DYNAMODB_STATE_TABLE"]).read_progress()
    assert progress.changes_applied == 26  # recorded once, though both workers saw the pass finished

    # The next pass goes on from the cursor the first recorded: only what changed since.
    change_rows(env, range(390, 392), "@again.example.com")
    again = cli(env, "sync", "--once", "--workers", "1", "--json")
    assert again.returncode == 0, again.stderr
    second = json.loads(again.stdout)
    assert (second["sync_pass"], second["changes_seen"], second["written"], second["pass_applied"]) == (2, 2, 2, 2)
    assert second["full_pass"] is False
