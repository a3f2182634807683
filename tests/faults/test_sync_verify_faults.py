"""`sync` and `verify` behind the fault proxies, as `migrate` is: throttled, failing and lost
DynamoDB requests, and PostgreSQL or DynamoDB going away, never lose a change, never count one
twice, and end with the exit code (or error) that names what happened.

Live mode only: `sync` and `verify --repair` always write with conditional requests. The commands run in
this process (`tests.cli_runner`): their exit codes and output are what is proven, not a process of their own.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from tests.cli_runner import cli
from tests.factories import UPDATED, from_item, valid_user
from tests.faults.conftest import World, refuse_writes_of
from tests.faults.test_dynamodb_faults import once_per_user
from tests.real_adapters import execute
from user_migration.domain.errors import SourceUnavailable, TargetUnavailable
from user_migration.domain.migrate.request import RunRequest
from user_migration.domain.sync.request import SyncRequest
from user_migration.domain.verify.request import VerifyRequest
from user_migration.entrypoints.library import UserMigration

LATER = UPDATED + timedelta(days=1)
# Rows 21..40 never change (60 users before: 46..60 did nothing but cost requests).
USERS = 45
# botocore's retries (DYNAMODB_RETRIES, 3 by default) of a request that failed wait up to 1, 2, then 4 s
# between tries; what the tests below prove is what happens once they are spent, and one proves it.
ONE_RETRY = {"DYNAMODB_RETRIES": "1"}


async def migrated(world: World) -> None:
    """Users 1..45 migrated (straight, without faults), then rows 1..20 changed, 41..45 deleted,
    and users 100..104 inserted: 30 changes for `sync` to carry."""
    world.seed([valid_user(i) for i in range(1, USERS + 1)])
    async with UserMigration.from_env(world.environment()) as migration:
        assert (await migration.migrate_all(RunRequest(batch_size=25))).migrated == USERS
    table = world.source_table
    execute(
        world.dsn, f"UPDATE {table} SET email = 'new' || id || '@example.com', updated_at = %s WHERE id <= 20", (LATER,)
    )
    execute(world.dsn, f"DELETE FROM {table} WHERE id BETWEEN 41 AND 45")
    world.seed([valid_user(i) for i in range(100, 105)])


async def assert_equal_to_the_source(world: World) -> None:
    rows = await world.source_users()
    items = await world.items()
    assert set(items) == set(rows)
    for user_id in range(1, 21):
        assert from_item(items[user_id]).email == f"new{user_id}@example.com"
    assert await world.count_and_counter() == (len(rows), len(rows))


async def sync_once(world: World, **env: str) -> object:
    async with UserMigration.from_env(world.environment(**env)) as migration:
        return await migration.sync_once(SyncRequest(batch_size=10))


async def test_writes_that_keep_failing_fail_their_users_keep_the_cursor_and_the_next_pass_finishes(world: World):
    await migrated(world)
    cursor = (await world.progress()).change_cursor
    refuse_writes_of(world, {3, 101})  # every PutItem of theirs answered 500
    first = await sync_once(world, **ONE_RETRY)
    assert sorted(first.failures) == [3, 101]
    assert not first.caught_up
    assert (await world.progress()).change_cursor == cursor
    world.dynamodb_proxy.heal()
    second = await sync_once(world)
    assert second.caught_up
    assert second.failures == {}
    await assert_equal_to_the_source(world)


async def test_lost_answers_of_puts_and_deletes_are_counted_once(world: World):
    await migrated(world)
    world.dynamodb_proxy.lose_response("PutItem", when=once_per_user())
    world.dynamodb_proxy.lose_response("DeleteItem", when=once_per_user())
    summary = await sync_once(world)
    assert summary.failures == {}
    assert (summary.written, summary.deleted) == (25, 5)
    await assert_equal_to_the_source(world)


async def test_dynamodb_unreachable_is_exit_3_and_loses_nothing(world: World):
    await migrated(world)
    cursor = (await world.progress()).change_cursor
    world.dynamodb_proxy.fail("PutItem")
    world.dynamodb_proxy.fail("DeleteItem")
    result = cli(world.environment(**ONE_RETRY), "sync", "--once", "--json")
    assert result.returncode == 3, result.stderr
    assert json.loads(result.stdout)["error"] == "target_unavailable"
    assert (await world.progress()).change_cursor == cursor
    world.dynamodb_proxy.heal()
    assert cli(world.environment(), "sync", "--once").returncode == 0
    await assert_equal_to_the_source(world)


async def test_postgres_going_away_mid_pass_is_source_unavailable_and_the_next_pass_finishes(world: World):
    await migrated(world)
    world.postgres_proxy.refuse()
    with pytest.raises(SourceUnavailable):
        await sync_once(world)
    world.postgres_proxy.heal()
    assert (await sync_once(world)).caught_up
    await assert_equal_to_the_source(world)


async def test_verify_is_exact_under_unprocessed_keys_and_throttled_reads(world: World):
    await migrated(world)
    world.dynamodb_proxy.unprocessed({5, 6, 7}, times=3, operation="BatchGetItem")
    world.dynamodb_proxy.throttle("BatchGetItem", times=2)
    async with UserMigration.from_env(world.environment()) as migration:
        found = []
        summary = await migration.verify(VerifyRequest(batch_size=10, on_difference=found.append))
    counts = summary.counts
    assert (counts.missing, counts.different, counts.extra) == (5, 20, 5)
    assert sorted(d.user_id for d in found if d.problem.value == "missing") == list(range(100, 105))
    assert sorted(d.user_id for d in found if d.problem.value == "extra") == list(range(41, 46))


async def test_verify_repair_with_lost_answers_repairs_and_counts_once(world: World):
    await migrated(world)
    world.dynamodb_proxy.lose_response("PutItem", when=once_per_user())
    world.dynamodb_proxy.lose_response("DeleteItem", when=once_per_user())
    async with UserMigration.from_env(world.environment()) as migration:
        summary = await migration.verify(VerifyRequest(batch_size=10, repair=True))
    assert (summary.counts.repaired, summary.counts.not_repaired) == (30, 0)
    await assert_equal_to_the_source(world)


async def test_verify_with_dynamodb_unreachable_is_exit_3(world: World):
    await migrated(world)
    world.dynamodb_proxy.refuse()
    result = cli(world.environment(**ONE_RETRY), "verify", "--json")
    assert result.returncode == 3, result.stderr
    with pytest.raises(TargetUnavailable):
        async with UserMigration.from_env(world.environment(**ONE_RETRY), check_tables=False) as migration:
            await migration.verify()
