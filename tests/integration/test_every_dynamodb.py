"""What every DynamoDB implementation must agree on, run on moto, dynalite and DynamoDB Local:
`sync` deletes every item whose row was deleted, `verify --repair` deletes the extra items the
migration wrote, a delete's condition holds on every kind of value the migration writes, and it
keeps an item changed inside a map or a list after the delete read it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import attrs
import pytest

from tests.cli_runner import cli
from tests.factories import prepared_user, valid_user
from tests.integration.test_cli_migrate import stored
from tests.integration.test_cli_sync import dynamodb_users
from tests.integration.test_cli_verify import foreign_item
from tests.real_adapters import RacingClient, create_dynamodb_tables, execute, fresh_environment, insert_users
from tests.real_adapters import quote_table_name as quoted
from user_migration.adapters.dynamodb.client import dynamodb_client
from user_migration.adapters.dynamodb.conditional import CHANGED_WHILE_DELETING
from user_migration.adapters.dynamodb.target import DynamoDbUserTarget
from user_migration.domain.model import DeleteOutcome, WriteRule


@pytest.fixture
async def client(any_dynamodb_endpoint: str) -> AsyncIterator[Any]:
    async with dynamodb_client(any_dynamodb_endpoint, "us-east-1") as client:
        yield client


@pytest.fixture
async def env(postgres_dsn: str, any_dynamodb_endpoint: str, client: Any) -> dict[str, str]:
    return await fresh_environment(postgres_dsn, any_dynamodb_endpoint, client)


async def test_sync_deletes_every_item_whose_row_was_deleted(env):
    # 300 users in 6 pages of 50, two rows in three of each page deleted and the third kept: as many
    # pages as 600 users in pages of 100 (what this was), with half the writes and deletes.
    insert_users(env["DATABASE_URL"], env["SOURCE_TABLE"], [valid_user(i) for i in range(1, 301)])
    assert cli(env, "migrate", "--all").returncode == 0
    execute(env["DATABASE_URL"], f"DELETE FROM {quoted(env['SOURCE_TABLE'])} WHERE id %% 3 <> 0")  # 200 rows

    result = cli(env, "sync", "--once", "--json", "--batch-size", "50")

    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["deleted"], summary["failed_count"], summary["errors"]) == (200, 0, [])
    assert await dynamodb_users(env) == {i: valid_user(i) for i in range(3, 301, 3)}
    assert await stored(env) == (100, 100)


async def test_verify_repair_deletes_the_extra_items_the_migration_wrote(env, client):
    insert_users(env["DATABASE_URL"], env["SOURCE_TABLE"], [valid_user(i) for i in range(1, 51)])
    assert cli(env, "migrate", "--all").returncode == 0
    execute(env["DATABASE_URL"], f"DELETE FROM {quoted(env['SOURCE_TABLE'])} WHERE id IN (9, 20, 31)")
    await client.put_item(TableName=env["DYNAMODB_TABLE"], Item=foreign_item(70))  # an application's

    result = cli(env, "verify", "--repair", "--json", "--batch-size", "7")

    assert result.returncode == 1, result.stderr  # 70 is not the migration's: left, reported
    counts = json.loads(result.stdout)
    assert (counts["extra"], counts["repaired"], counts["not_repaired"]) == (4, 3, 1)
    assert sorted(await dynamodb_users(env)) == [*(i for i in range(1, 51) if i not in (9, 20, 31)), 70]
    assert await stored(env) == (48, 47)  # 70 was never counted
    again = json.loads(cli(env, "verify", "--json").stdout)
    assert (again["checked"], again["matching"], again["extra"]) == (47, 47, 1)


async def test_a_delete_compares_every_kind_of_value_the_migration_writes(client):
    users_table, _ = await create_dynamodb_tables(client)
    kinds = {
        "avatar": b"\x00\xffbinary",
        "active": True,
        "nothing": None,
        "score": Decimal("12.50"),
        "big": 10**30,
        "blank": "",
        "settings": {"empty": {}, "none": [], "deep": [[{"a": [1, {"b": None, "c": b"\x01"}]}]], "0": "zero"},
    }
    user = prepared_user(1)
    items = [user, attrs.evolve(user, user_id=2, attributes={**user.attributes, **kinds})]
    target = DynamoDbUserTarget(client, users_table)
    await target.write_users_if(items, WriteRule.ABSENT)

    assert await target.delete_unchanged([1, 2]) == DeleteOutcome(deleted=(1, 2))
    assert await target.count_users() == 0


def _nested_value(item: dict[str, Any]) -> None:
    item["profile"]["M"]["nested"]["M"]["x"] = {"N": "2"}


def _key_added_to_a_map(item: dict[str, Any]) -> None:
    item["profile"]["M"]["nested"]["M"]["y"] = {"N": "1"}


def _value_added_to_a_list(item: dict[str, Any]) -> None:
    item["profile"]["M"]["tags"]["L"].append({"S": "c"})


def _null_became_a_value(item: dict[str, Any]) -> None:
    item["profile"]["M"]["none"] = {"S": "set"}


@pytest.mark.parametrize("change", [_nested_value, _key_added_to_a_map, _value_added_to_a_list, _null_became_a_value])
async def test_a_delete_keeps_an_item_changed_inside_its_maps_and_lists_after_it_was_read(client, change):
    users_table, _ = await create_dynamodb_tables(client)
    profile = {"plan": "pro", "tags": ["a", "b"], "nested": {"x": 1}, "none": None, "empty": {}, "flag": False}
    await DynamoDbUserTarget(client, users_table).write_users_if([prepared_user(1, profile=profile)], WriteRule.ABSENT)
    target = DynamoDbUserTarget(RacingClient(client, change), users_table)

    outcome = await target.delete_unchanged([1])

    assert outcome == DeleteOutcome(kept={1: CHANGED_WHILE_DELETING})
    assert await DynamoDbUserTarget(client, users_table).existing_user_ids([1]) == {1}
