"""Change data capture on a real PostgreSQL with `wal_level = logical` and moto: `cdc setup` names
every missing setting, `cdc teardown` leaves nothing behind, and `sync --follow --changes logical`
run as a real process carries inserts, updates (large TOASTed profiles too) and deletes made
during its backfill and after it, exactly, also when killed with -9 and started again."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import psycopg2
import psycopg2.extras
import pytest

from tests.cli_runner import cli, command, process_environment
from tests.factories import valid_user
from tests.integration.test_cli_migrate import stored
from tests.integration.test_cli_sync import dynamodb_users
from tests.real_adapters import execute, fresh_environment, insert_users, json_text
from tests.real_adapters import quote_table_name as quoted
from user_migration.adapters.postgres.pgoutput import UNCHANGED_TOAST, Update, decode
from user_migration.domain.model import User
from user_migration.entrypoints.demo.embedded import free_port


def capture_objects(dsn: str, env: dict[str, str]) -> tuple[bool, bool]:
    """Whether the slot and the publication of `env` exist."""
    with psycopg2.connect(dsn) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_replication_slots WHERE slot_name = %s", (env["CDC_SLOT"],))
        slots = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM pg_publication WHERE pubname = %s", (env["CDC_PUBLICATION"],))
        publications = cursor.fetchone()[0]
    connection.close()
    return slots == 1, publications == 1


def drop_slot(dsn: str, slot: str) -> None:
    execute(dsn, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = %s", (slot,))


@pytest.fixture
async def env(logical_postgres_dsn: str, dynamodb_endpoint: str, dynamodb: Any) -> AsyncIterator[dict[str, str]]:
    env = await fresh_environment(logical_postgres_dsn, dynamodb_endpoint, dynamodb)
    suffix = uuid.uuid4().hex[:10]
    env.update(CDC_SLOT=f"slot_{suffix}", CDC_PUBLICATION=f"pub_{suffix}", HOLD_LEASE_SECONDS="2")
    yield env
    drop_slot(logical_postgres_dsn, env["CDC_SLOT"])  # a slot left behind would keep WAL for the session


def big_profile(seed: int) -> dict[str, object]:
    """A profile PostgreSQL stores out of line (TOAST): 12 KB that do not compress."""
    return {"plan": "pro", "blob": os.urandom(6_000).hex(), "seed": seed}


def set_profile(env: dict[str, str], user_id: int, profile: dict[str, object]) -> None:
    execute(
        env["DATABASE_URL"],
        f"UPDATE {quoted(env['SOURCE_TABLE'])} SET profile = %s::jsonb WHERE id = %s",
        (json_text(profile), user_id),  # type: ignore[arg-type]
    )


def set_email(env: dict[str, str], user_id: int, email: str) -> None:
    execute(env["DATABASE_URL"], f"UPDATE {quoted(env['SOURCE_TABLE'])} SET email = %s WHERE id = %s", (email, user_id))


def delete(env: dict[str, str], user_id: int) -> None:
    execute(env["DATABASE_URL"], f"DELETE FROM {quoted(env['SOURCE_TABLE'])} WHERE id = %s", (user_id,))


def start_stream(env: dict[str, str], *options: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        command("sync", "--follow", "--changes", "logical", "--batch-size", "50", "--json", *options),
        env=process_environment(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


async def until_equal(env: dict[str, str], expected: dict[int, User], process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while (found := await dynamodb_users(env)) != expected:
        assert process.poll() is None, process.communicate()
        if time.monotonic() > deadline:
            missing = sorted(set(expected) - set(found))[:5]
            extra = sorted(set(found) - set(expected))[:5]
            wrong = sorted(i for i in set(found) & set(expected) if found[i] != expected[i])[:5]
            raise AssertionError(f"DynamoDB differs: missing {missing}, extra {extra}, different {wrong}")
        await asyncio.sleep(0.5)


def stop(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=30)
    return process.returncode, out, err


def test_setup_on_a_server_without_logical_replication_names_the_missing_setting(postgres_dsn, dynamodb_endpoint):
    env = asyncio.run(_plain_environment(postgres_dsn, dynamodb_endpoint))
    result = cli(env, "cdc", "setup")
    assert result.returncode == 2, result.stderr
    assert "wal_level is replica, logical replication needs wal_level = logical" in result.stderr
    assert "Traceback" not in result.stderr
    check = cli(env, "cdc", "check", "--json")
    assert check.returncode == 2
    assert '"problems": ["wal_level is replica' in check.stdout


async def _plain_environment(dsn: str, endpoint: str) -> dict[str, str]:
    from user_migration.adapters.dynamodb.client import dynamodb_client

    async with dynamodb_client(endpoint, "us-east-1") as client:
        return await fresh_environment(dsn, endpoint, client)


def test_setup_names_a_missing_replication_privilege_and_table_ownership(env):
    role = f"plain_{uuid.uuid4().hex[:8]}"
    execute(env["DATABASE_URL"], f"CREATE ROLE {role} LOGIN")
    execute(env["DATABASE_URL"], f"GRANT SELECT ON {quoted(env['SOURCE_TABLE'])} TO {role}")
    as_role = {**env, "DATABASE_URL": env["DATABASE_URL"].replace("postgres:@", f"{role}:@", 1)}
    result = cli(as_role, "cdc", "setup")
    assert result.returncode == 2, result.stderr
    assert f'REPLICATION: role {role} may not use replication slots: ALTER ROLE "{role}" REPLICATION' in result.stderr
    assert "lacks CREATE on the database, which CREATE PUBLICATION needs" in result.stderr
    assert (
        f"publication ownership: the role does not own table {env['SOURCE_TABLE']} (its owner is postgres)"
        in result.stderr
    )
    assert "wal_level" not in result.stderr
    assert capture_objects(env["DATABASE_URL"], env) == (False, False)  # nothing was changed


def test_setup_then_teardown_leaves_no_slot_and_no_publication(env):
    first = cli(env, "cdc", "setup")
    assert first.returncode == 0, first.stderr
    assert f"created replication slot {env['CDC_SLOT']}" in first.stdout
    assert capture_objects(env["DATABASE_URL"], env) == (True, True)
    again = cli(env, "cdc", "setup")
    assert again.returncode == 0, again.stderr
    assert f"replication slot {env['CDC_SLOT']}: already there" in again.stdout

    teardown = cli(env, "cdc", "teardown")
    assert teardown.returncode == 0, teardown.stderr
    assert "Checked: neither the slot nor the publication exists now." in teardown.stdout
    assert capture_objects(env["DATABASE_URL"], env) == (False, False)
    assert "not there" in cli(env, "cdc", "teardown").stdout


def test_an_unreachable_server_is_exit_3(env):
    gone = {**env, "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"}
    result = cli(gone, "cdc", "setup")
    assert result.returncode == 3, result.stderr
    assert "PostgreSQL is unavailable" in result.stderr


def test_an_update_leaving_a_large_profile_alone_sends_it_as_unchanged_toast(env):
    """What the stream tests below rely on: such an update's message carries no profile at all."""
    insert_users(env["DATABASE_URL"], env["SOURCE_TABLE"], [valid_user(1)])
    set_profile(env, 1, big_profile(1))
    assert cli(env, "cdc", "setup").returncode == 0
    set_email(env, 1, "only-the-email@example.com")
    with psycopg2.connect(env["DATABASE_URL"]) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT data FROM pg_logical_slot_peek_binary_changes(%s, NULL, NULL, 'proto_version', '1', "
            "'publication_names', %s)",
            (env["CDC_SLOT"], env["CDC_PUBLICATION"]),
        )
        messages = [decode(bytes(row[0])) for row in cursor.fetchall()]
    connection.close()
    (update,) = [message for message in messages if isinstance(message, Update)]
    assert UNCHANGED_TOAST in update.new
    assert "only-the-email@example.com" in update.new


def apply(env: dict[str, str], expected: dict[int, User], step: int) -> None:
    """One application write of a mixed stream: updates, large profiles, inserts, deletes."""
    user_id = 1 + (step * 37) % 300
    kind = step % 5
    if kind == 0 and user_id in expected:
        profile = big_profile(step)
        set_profile(env, user_id, profile)
        expected[user_id] = _with(expected[user_id], profile=profile)
    elif kind in (1, 2) and user_id in expected:
        # Email only: the large profile is left out of the change (unchanged TOAST) yet stays.
        email = f"s{step}.u{user_id}@example.com"
        set_email(env, user_id, email)
        expected[user_id] = _with(expected[user_id], email=email)
    elif kind == 3 and user_id in expected:
        delete(env, user_id)
        del expected[user_id]
    else:
        new = valid_user(1_000 + step)
        insert_users(env["DATABASE_URL"], env["SOURCE_TABLE"], [new])
        expected[new.id] = new


def _with(user: User, **changes: Any) -> User:
    import attrs

    return attrs.evolve(user, **changes)


async def test_a_stream_interleaved_with_the_backfill_leaves_dynamodb_equal_to_postgresql(env):
    expected = {i: valid_user(i) for i in range(1, 301)}
    insert_users(env["DATABASE_URL"], env["SOURCE_TABLE"], expected.values())
    for user_id in (5, 6):  # large profiles before the slot: the backfill reads them
        expected[user_id] = _with(expected[user_id], profile=big_profile(user_id))
        set_profile(env, user_id, expected[user_id].profile)  # type: ignore[arg-type]
    assert cli(env, "cdc", "setup").returncode == 0
    set_email(env, 5, "before-sync@example.com")  # after the slot, before the sync: TOAST left out
    expected[5] = _with(expected[5], email="before-sync@example.com")
    process = start_stream(env, "--max-retained-wal", "1")  # a slot always keeps some: past 1 byte
    assert process.stdout is not None
    printed: list[str] = []  # stdout as it comes (a progress line every 5 s once streaming)
    reader = threading.Thread(target=lambda: printed.extend(iter(process.stdout.readline, "")), daemon=True)
    reader.start()
    try:
        for step in range(120):  # during the backfill (about 2 s on moto, longer on a busy machine)
            apply(env, expected, step)
            if step % 10 == 0:
                await asyncio.sleep(0.05)
        await until_equal(env, expected, process)
        # Then changes that come after the backfill for sure, until the stream has reported on them.
        deadline = time.monotonic() + 60
        step = 120
        while not any('"retained_wal_bytes"' in line and '"transactions": 0,' not in line for line in printed):
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            assert time.monotonic() < deadline, f"no progress line of a stream that applied changes: {printed}"
            apply(env, expected, step)
            step += 1
            await asyncio.sleep(0.5)
        await until_equal(env, expected, process)
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=30)
        reader.join(timeout=10)
        err = process.stderr.read() if process.stderr else ""
        for pipe in (process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()
    out = "".join(printed)
    assert code == 0, err
    assert "Traceback" not in err
    assert await stored(env) == (len(expected), len(expected))
    assert '"retained_wal_bytes"' in out
    assert "WARNING: the replication slot retains" in err
    assert "past --max-retained-wal 1 B" in err


async def test_a_stream_killed_with_minus_9_and_started_again_is_exact(env):
    expected = {i: valid_user(i) for i in range(1, 301)}
    insert_users(env["DATABASE_URL"], env["SOURCE_TABLE"], expected.values())
    assert cli(env, "cdc", "setup").returncode == 0
    first = start_stream(env)
    try:
        await until_equal(env, expected, first)  # the backfill is done
        for step in range(200):
            apply(env, expected, step)
            if step == 60:
                await asyncio.sleep(0.5)  # some of it stored, the rest in flight or not read yet
                first.send_signal(signal.SIGKILL)
                first.wait(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
        first.communicate()
    second = start_stream(env)
    try:
        await until_equal(env, expected, second)
    finally:
        code, out, err = stop(second)
    assert code == 0, err
    assert '"backfill_written": null' in out  # the backfill was not done twice
    assert await stored(env) == (len(expected), len(expected))


async def test_teardown_refuses_a_slot_in_use_and_the_stream_says_so_when_the_slot_is_gone(env):
    assert cli(env, "cdc", "setup").returncode == 0
    process = start_stream(env)
    try:
        await until_equal(env, {}, process)
        await _until(lambda: capture_active(env))
        teardown = cli(env, "cdc", "teardown")
        assert teardown.returncode == 2
        assert "is in use by process" in teardown.stderr
    finally:
        stop(process)
    assert cli(env, "cdc", "teardown").returncode == 0
    result = cli(env, "sync", "--follow", "--changes", "logical")
    assert result.returncode == 2
    assert "run `user-migration cdc setup` first" in result.stderr


def capture_active(env: dict[str, str]) -> bool:
    with psycopg2.connect(env["DATABASE_URL"]) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT active FROM pg_replication_slots WHERE slot_name = %s", (env["CDC_SLOT"],))
        row = cursor.fetchone()
    connection.close()
    return bool(row and row[0])


async def _until(condition: Callable[[], bool]) -> None:
    for _ in range(100):
        if condition():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("never happened")


async def test_a_stream_whose_slot_another_process_holds_says_so_at_once_and_starts_when_it_is_freed(env):
    expected = {i: valid_user(i) for i in range(1, 21)}
    insert_users(env["DATABASE_URL"], env["SOURCE_TABLE"], expected.values())
    assert cli(env, "cdc", "setup").returncode == 0
    # What a sync killed on a host that went away leaves: a server process streaming from the slot.
    holder = psycopg2.connect(env["DATABASE_URL"], connection_factory=psycopg2.extras.LogicalReplicationConnection)
    holder.cursor().start_replication(
        slot_name=env["CDC_SLOT"],
        decode=False,
        options={"proto_version": "1", "publication_names": env["CDC_PUBLICATION"]},
    )
    with psycopg2.connect(env["DATABASE_URL"]) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT active_pid FROM pg_replication_slots WHERE slot_name = %s", (env["CDC_SLOT"],))
        (pid,) = cursor.fetchone()
    connection.close()
    process = start_stream(env)
    assert process.stderr is not None
    told: list[str] = []
    reader = threading.Thread(target=lambda: told.extend(iter(process.stderr.readline, "")), daemon=True)
    reader.start()
    try:
        started = time.monotonic()
        while not any(f"held by PostgreSQL process {pid}" in line for line in told):
            assert process.poll() is None, told
            assert time.monotonic() - started < 20, (
                f"not told which process holds the slot: {told}"
            )  # interpreter start included
            await asyncio.sleep(0.1)
        line = next(line for line in told if f"held by PostgreSQL process {pid}" in line)
        assert "wal_sender_timeout (1min on this server)" in line
        assert f"pg_terminate_backend({pid})" in line
        assert line.rstrip().endswith("trying again in 5 s")
        assert await dynamodb_users(env) == {}  # nothing applied while it waits

        execute(env["DATABASE_URL"], "SELECT pg_terminate_backend(%s)", (pid,))  # as the message says
        await until_equal(env, expected, process)  # backfilled and streaming within a retry's pause
        new = valid_user(500)
        insert_users(env["DATABASE_URL"], env["SOURCE_TABLE"], [new])
        expected[500] = new
        await until_equal(env, expected, process)
    finally:
        holder.close()
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=30)
        reader.join(timeout=10)
        for pipe in (process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()
    assert code == 0, told
    assert "Traceback" not in "".join(told)
