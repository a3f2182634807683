"""Rows changed without their version moving (Rails' `update_column`/`update_all`, an admin's
SQL: `updated_at` stays) reach DynamoDB by their content, through `sync --once`, `sync --follow`
and the logical stream (those two as real processes) on the real servers; `verify` exits 0 after each."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from typing import Any

import pytest

from tests.cli_runner import cli
from tests.factories import valid_user
from tests.integration.test_change_capture import start_stream, stop, until_equal
from tests.integration.test_cli_migrate import stored
from tests.integration.test_cli_sync import dynamodb_users, start_sync
from tests.real_adapters import execute, fresh_environment, insert_users
from tests.real_adapters import quote_table_name as quoted


@pytest.fixture
async def env(postgres_dsn: str, dynamodb_endpoint: str, dynamodb: Any) -> dict[str, str]:
    return await fresh_environment(postgres_dsn, dynamodb_endpoint, dynamodb)


def change_columns_only(env: dict[str, str], updated: range, display_name: str) -> None:
    """Rails' `update_column`/`update_all`, an admin's SQL: the row changes, `updated_at` does not."""
    execute(
        env["DATABASE_URL"],
        f"UPDATE {quoted(env['SOURCE_TABLE'])} SET display_name = %s WHERE id BETWEEN %s AND %s",
        (display_name, updated.start, updated.stop - 1),
    )


def verify_counts(env: dict[str, str]) -> dict[str, int]:
    result = cli(env, "verify", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    counts: dict[str, int] = json.loads(result.stdout)
    return counts


async def test_sync_once_carries_rows_changed_without_a_new_version(env):
    insert_users(env["DATABASE_URL"], env["SOURCE_TABLE"], [valid_user(i) for i in range(1, 201)])
    assert cli(env, "migrate", "--all", "--batch-size", "100").returncode == 0
    change_columns_only(env, range(50, 150), "Renamed by update_column")
    # Touched without a change of content: seen, and unchanged.
    execute(env["DATABASE_URL"], f"UPDATE {quoted(env['SOURCE_TABLE'])} SET id = id WHERE id BETWEEN 150 AND 169")

    result = cli(env, "sync", "--once", "--json", "--batch-size", "30")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert {key: summary[key] for key in ("changes_seen", "written", "same_version_written", "unchanged")} == {
        "changes_seen": 120,
        "written": 100,
        "same_version_written": 100,
        "unchanged": 20,
    }
    expected = {
        i: valid_user(i, display_name="Renamed by update_column" if 50 <= i < 150 else f"User {i}")
        for i in range(1, 201)
    }
    assert await dynamodb_users(env) == expected
    assert await stored(env) == (200, 200)
    assert verify_counts(env)["different"] == 0

    human = cli(env, "sync", "--once")
    assert "wrote 0," in human.stdout, human.stdout


async def test_sync_follow_carries_rows_changed_without_a_new_version(env):
    insert_users(env["DATABASE_URL"], env["SOURCE_TABLE"], [valid_user(i) for i in range(1, 101)])
    assert cli(env, "migrate", "--all").returncode == 0
    follow = start_sync(env, "--follow", "--interval", "0.2", "--json", output=subprocess.PIPE)
    try:
        change_columns_only(env, range(10, 40), "Renamed while following")
        deadline = time.monotonic() + 60
        while any(
            user.display_name != "Renamed while following"
            for user_id, user in (await dynamodb_users(env)).items()
            if 10 <= user_id < 40
        ):
            assert follow.poll() is None, follow.stderr.read() if follow.stderr else ""
            assert time.monotonic() < deadline, "sync --follow did not carry the change"
            await asyncio.sleep(0.2)
    finally:
        follow.send_signal(signal.SIGTERM)
        out, err = follow.communicate(timeout=60)
    assert follow.returncode == 0, err
    totals = json.loads(out.splitlines()[-1])["totals"]
    assert (totals["written"], totals["same_version_written"], totals["failed_count"]) == (30, 30, 0)
    assert verify_counts(env)["different"] == 0
    assert await stored(env) == (100, 100)


async def test_the_stream_carries_rows_changed_without_a_new_version(logical_postgres_dsn, dynamodb_endpoint, dynamodb):
    env = await fresh_environment(logical_postgres_dsn, dynamodb_endpoint, dynamodb)
    env.update(CDC_SLOT=f"slot_{os.getpid()}_nv", CDC_PUBLICATION=f"pub_{os.getpid()}_nv", HOLD_LEASE_SECONDS="2")
    expected = {i: valid_user(i) for i in range(1, 101)}
    insert_users(env["DATABASE_URL"], env["SOURCE_TABLE"], expected.values())
    assert cli(env, "cdc", "setup").returncode == 0
    process = start_stream(env)
    try:
        await until_equal(env, expected, process)  # the backfill is done
        change_columns_only(env, range(20, 60), "Renamed in the stream")
        for i in range(20, 60):
            expected[i] = valid_user(i, display_name="Renamed in the stream")
        await until_equal(env, expected, process)
    finally:
        code, _, err = stop(process)
        assert cli(env, "cdc", "teardown").returncode == 0
    assert code == 0, err
    assert verify_counts(env)["different"] == 0
    assert await stored(env) == (100, 100)
