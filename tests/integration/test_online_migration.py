"""The online-migration runbook (docs/online-migration.md), end to end, on the real servers.

An application dual-writes (each change goes to PostgreSQL, then the same user, with its version,
to DynamoDB) the whole time; `migrate --all` backfills; `sync --follow` runs while the application
keeps updating, inserting (at low ids too) and deleting; the writes stop; `sync --once`; `verify`
exits 0 and DynamoDB holds exactly what PostgreSQL holds.
"""

from __future__ import annotations

import asyncio
import json
import random
import signal
from datetime import UTC, datetime
from typing import Any

import attrs
import psycopg2
import pytest

from tests.cli_runner import cli_beside, command, process_environment
from tests.factories import to_item, valid_user
from tests.integration.test_cli_sync import dynamodb_users
from tests.real_adapters import execute, fresh_environment, insert_users
from tests.real_adapters import quote_table_name as quoted
from user_migration.domain.model import User

FIRST_IDS = range(1000, 1600)


@pytest.fixture
async def env(postgres_dsn, dynamodb_endpoint, dynamodb) -> dict[str, str]:
    return {**await fresh_environment(postgres_dsn, dynamodb_endpoint, dynamodb), "HOLD_LEASE_SECONDS": "5"}


def application_item(user: User) -> dict[str, Any]:
    """The item the application writes for a user: its content and its version, no mark of the migration."""
    item = to_item(user, datetime.now(UTC))
    del item["migration_digest"], item["migrated_at"]
    return item


@attrs.define
class Application:
    """Changes users in PostgreSQL, and then writes the same change to DynamoDB (dual writes),
    except on one code path in three that still writes PostgreSQL only (those `sync` must carry).
    That path never deletes a user whose item the application wrote: `sync` would rightly keep
    such an item (it is not the migration's) and `verify` report it as extra."""

    env: dict[str, str]
    client: Any
    users: dict[int, User]
    writes: int = 0
    postgres_only: int = 0
    written_by_application: set[int] = attrs.Factory(set)
    stop: asyncio.Event = attrs.Factory(asyncio.Event)
    random: random.Random = attrs.Factory(lambda: random.Random(1309))

    def _postgres(self, sql: str, parameters: tuple[Any, ...]) -> None:
        execute(self.env["DATABASE_URL"], sql, parameters)

    async def change_one(self) -> None:
        table = quoted(self.env["SOURCE_TABLE"])
        dual_write = self.random.random() < 2 / 3
        self.postgres_only += not dual_write
        users_table = self.env["DYNAMODB_TABLE"] if dual_write else None
        draw = self.random.random()
        if draw < 0.7 and self.users:
            user_id = self.random.choice(sorted(self.users))
            user = attrs.evolve(
                self.users[user_id], email=f"app{self.writes}.{user_id}@example.com", updated_at=datetime.now(UTC)
            )
            await asyncio.to_thread(
                self._postgres,
                f"UPDATE {table} SET email = %s, updated_at = %s WHERE id = %s",
                (user.email, user.updated_at, user_id),
            )
            self.users[user_id] = user
            if users_table is not None:
                await self.client.put_item(TableName=users_table, Item=application_item(user))
                self.written_by_application.add(user_id)
        elif draw < 0.85:
            user_id = self.random.choice([i for i in range(1, 2000) if i not in self.users])
            user = valid_user(user_id, updated_at=datetime.now(UTC))
            await asyncio.to_thread(insert_users, self.env["DATABASE_URL"], self.env["SOURCE_TABLE"], [user])
            self.users[user_id] = user
            if users_table is not None:
                await self.client.put_item(TableName=users_table, Item=application_item(user))
                self.written_by_application.add(user_id)
        elif self.users:
            user_id = self.random.choice(sorted(self.users))
            if user_id in self.written_by_application:
                users_table = self.env["DYNAMODB_TABLE"]
            await asyncio.to_thread(self._postgres, f"DELETE FROM {table} WHERE id = %s", (user_id,))
            del self.users[user_id]
            if users_table is not None:
                await self.client.delete_item(TableName=users_table, Key={"user_id": {"N": str(user_id)}})
        self.writes += 1

    async def run(self) -> None:
        while not self.stop.is_set():
            await self.change_one()
            await asyncio.sleep(0.01)


async def run_cli(env: dict[str, str], *arguments: str) -> tuple[int, str, str]:
    """The command in the test process, while the application's task goes on writing."""
    result = await cli_beside(env, *arguments)
    return result.returncode, result.stdout, result.stderr


async def start_cli(env: dict[str, str], *arguments: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *command(*arguments),
        env=process_environment(env),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def test_an_online_migration_end_to_end(env, dynamodb):
    users = {i: valid_user(i) for i in FIRST_IDS}
    insert_users(env["DATABASE_URL"], env["SOURCE_TABLE"], users.values())
    application = Application(env, dynamodb, users)
    app_task = asyncio.create_task(application.run())
    try:
        # 1. The backfill, while the application writes.
        code, out, err = await run_cli(env, "migrate", "--all", "--batch-size", "100", "--json")
        assert code == 0, err
        during_backfill = application.writes
        assert during_backfill > 10, "the application must write during the backfill"
        # 2. sync --follow while the application keeps changing rows.
        follow = await start_cli(env, "sync", "--follow", "--interval", "0.2", "--json")
        assert follow.stdout is not None
        # Its first pass done (it runs, its signal handlers are in place: a loaded machine may take seconds).
        first_pass = await asyncio.wait_for(follow.stdout.readline(), timeout=60)
        await asyncio.sleep(4)
        assert application.writes > during_backfill + 10
    finally:
        # 3. The application's writes stop (the cut-over freeze).
        application.stop.set()
        await app_task
    follow.send_signal(signal.SIGTERM)
    out, err = await follow.communicate()
    assert follow.returncode == 0, err.decode()
    passes = [json.loads(line) for line in (first_pass + out).decode().splitlines()]
    totals = passes[-1]["totals"]
    assert totals["failed_count"] == 0
    assert totals["changes_seen"] > 0
    # What only PostgreSQL got was carried over by sync itself.
    assert totals["written"] + totals["deleted"] > 0

    # 4. A last catch-up, then verify.
    code, out, err = await run_cli(env, "sync", "--once", "--json")
    assert code == 0, err
    assert json.loads(out)["failed_count"] == 0
    code, out, err = await run_cli(env, "verify", "--json")
    assert code == 0, out + err
    counts = json.loads(out)
    assert counts["checked"] == len(application.users)
    assert all(counts[kind] == 0 for kind in ("missing", "different", "extra"))

    # 5. DynamoDB holds exactly PostgreSQL's users.
    with psycopg2.connect(env["DATABASE_URL"]) as connection, connection.cursor() as cursor:
        cursor.execute(f"SELECT id FROM {quoted(env['SOURCE_TABLE'])}")
        assert {row[0] for row in cursor.fetchall()} == set(application.users)
    connection.close()
    assert await dynamodb_users(env) == application.users
