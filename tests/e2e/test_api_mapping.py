"""The HTTP API under a mapping of one's own: a mismatch is a 409 naming what to fix, and
`rewrite=true` reaches the items the tool wrote earlier."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.conftest import AUTH
from tests.factories import valid_user
from tests.real_adapters import create_dynamodb_tables, create_source_table, insert_users, unique_name
from user_migration.entrypoints.http.app import init_app
from user_migration.entrypoints.mapping_file import read_mapping

USERS = "/m2/migration/users"


def mapping_file(tmp_path: Path, table: str, display_name: str) -> Path:
    path = tmp_path / f"{unique_name('mapping')}.toml"
    path.write_text(
        f'[source]\ntable = "{table}"\n[attributes]\nusername = "username"\nemail = "email"\n'
        f'created_at = "created_at"\nstatus = "status"\ndisplay_name = "{display_name}"\n'
        '[other_columns]\nexclude = ["profile", "updated_at", "display_name"]\n'
    )
    return path


async def test_a_mapping_that_does_not_fit_is_a_409_naming_the_column(
    aiohttp_client, live_settings, postgres_dsn, dynamodb, tmp_path
):
    table = unique_name("users")
    create_source_table(postgres_dsn, table)
    users_table, state_table = await create_dynamodb_tables(dynamodb)
    mapping, problems = read_mapping(mapping_file(tmp_path, table, "nickname"), "users")
    assert problems == []
    settings = live_settings(mapping=mapping, dynamodb_table=users_table, dynamodb_state_table=state_table)
    client = await aiohttp_client(await init_app(settings))
    for path in (USERS, "/m2/migration/stats"):
        response = await client.get(path, headers=AUTH)
        assert response.status == 409, path
        body = await response.json()
        assert body["error"] == "mapping_error"
        assert "nickname" in body["message"]
    ready = await client.get("/readyz")
    assert ready.status == 503
    assert "nickname" in (await ready.json())["checks"]["postgres"]


async def test_rewrite_true_rewrites_the_tools_items_and_lists_the_others(
    aiohttp_client, live_settings, postgres_dsn, dynamodb, tmp_path
):
    table = unique_name("users")
    create_source_table(postgres_dsn, table)
    insert_users(postgres_dsn, table, [valid_user(i) for i in range(1, 6)])
    users_table, state_table = await create_dynamodb_tables(dynamodb)

    async def app_for(display_name: str):
        mapping, problems = read_mapping(mapping_file(tmp_path, table, display_name), "users")
        assert problems == []
        settings = live_settings(mapping=mapping, dynamodb_table=users_table, dynamodb_state_table=state_table)
        return await aiohttp_client(await init_app(settings))

    first = await app_for("display_name")
    assert (await (await first.get(USERS, headers=AUTH)).json())["migrated_count"] == 5
    await dynamodb.put_item(TableName=users_table, Item={"user_id": {"N": "4"}, "username": {"S": "the app's"}})

    fixed = await app_for("upper(display_name)")
    plain = await (await fixed.get(USERS, headers=AUTH)).json()
    assert "rewritten_count" not in plain
    assert plain["skipped_count"] == 5
    response = await fixed.get(USERS, params={"rewrite": "true"}, headers=AUTH)
    assert response.status == 200
    report = await response.json()
    assert report["rewritten_count"] == 4
    assert report["migrated_count"] == 4
    assert report["not_rewritten_user_ids"] == [4]
    assert report["not_rewritten"] == ["User 4: not written by the migration (no migration_digest): left as it is"]
    stored = await dynamodb.get_item(TableName=users_table, Key={"user_id": {"N": "1"}}, ConsistentRead=True)
    assert stored["Item"]["display_name"] == {"S": "USER 1"}
    stats = await (await fixed.get("/m2/migration/stats", headers=AUTH)).json()
    assert stats["total_dynamo_users"] == 5
