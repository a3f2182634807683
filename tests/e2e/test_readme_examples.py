"""The Python examples of README.md and docs/ are run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.factories import valid_user
from tests.real_adapters import create_dynamodb_tables, create_source_table, insert_users, unique_name

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
TESTING = ROOT / "docs" / "testing.md"  # the harness example lives on the testing page


def example(name: str, page: Path = README) -> str:
    match = re.search(rf"<!-- readme-example: {name} -->\n```python\n(.*?)```", page.read_text(), re.DOTALL)
    assert match, f"example {name!r} not found in {page.name}"
    return match.group(1)


async def test_library_example(postgres_dsn, dynamodb_endpoint, dynamodb, monkeypatch, capsys):
    import asyncio

    table = unique_name("users")
    create_source_table(postgres_dsn, table)
    insert_users(postgres_dsn, table, [valid_user(i) for i in range(1, 251)] + [valid_user(251, username=None)])
    users_table, state_table = await create_dynamodb_tables(dynamodb)
    for name, value in {
        "DATABASE_URL": postgres_dsn,
        "SOURCE_TABLE": table,
        "DYNAMODB_TABLE": users_table,
        "DYNAMODB_STATE_TABLE": state_table,
        "DYNAMODB_ENDPOINT_URL": dynamodb_endpoint,
    }.items():
        monkeypatch.setenv(name, value)
    code = example("library")
    # The example calls asyncio.run(); here a loop is already running, so await its coroutine instead.
    namespace: dict = {}
    exec(compile(code.replace("asyncio.run(migrate_everything())", ""), "README.md", "exec"), namespace)
    await namespace["migrate_everything"]()
    assert "asyncio.run(migrate_everything())" in code
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("MigrationStats(total_postgres_users=251, total_dynamo_users=0")
    assert printed[-1].startswith("MigrationStats(total_postgres_users=251, total_dynamo_users=250")
    assert await asyncio.wait_for(_count(dynamodb, users_table), 30) == 250


async def _count(client, table):
    from user_migration.adapters.dynamodb.target import DynamoDbUserTarget

    return await DynamoDbUserTarget(client, table).count_users()


@pytest.mark.parametrize("test_name", ["test_alice_is_migrated", "test_alice_through_the_library"])
async def test_harness_example(aiohttp_client, test_name):
    namespace: dict = {}
    exec(compile(example("harness", TESTING), "docs/testing.md", "exec"), namespace)
    test = namespace[test_name]
    if "aiohttp_client" in test.__code__.co_varnames[: test.__code__.co_argcount]:
        await test(aiohttp_client)
    else:
        await test()
