"""The HTTP API on a uuid-keyed and a text-keyed table (Supabase's `auth.users`, Keycloak's
`user_entity`): the same paths and fields, ids as strings, paging by `next_start_user_id` with no
gap and no repeat, a malformed id a 400 naming its parameter (real PostgreSQL, moto server)."""

from __future__ import annotations

import json
import tomllib
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import AUTH, TOKEN
from tests.keyed_tables import KeyedTable, keycloak_table, supabase_table
from user_migration.adapters.dynamodb.tables import ensure_tables
from user_migration.domain.convert.mapping import UserMapping, parse_mapping
from user_migration.entrypoints.http.app import init_app
from user_migration.entrypoints.settings import Settings


def read_mapping_file(path: str) -> UserMapping:
    return parse_mapping(tomllib.loads(Path(path).read_text()), path)


@pytest.fixture(params=["uuid", "text"])
async def api(request, aiohttp_client, postgres_dsn, dynamodb_endpoint, dynamodb, tmp_path: Path) -> Any:
    make = supabase_table if request.param == "uuid" else keycloak_table
    table = make(postgres_dsn, dynamodb_endpoint, tmp_path, 57)
    await ensure_tables(dynamodb, table.env["DYNAMODB_TABLE"], table.env["DYNAMODB_STATE_TABLE"], "id", "S")
    mapping_file = table.env["MAPPING_FILE"]
    mapping = read_mapping_file(mapping_file)
    settings = Settings(
        database_url=postgres_dsn,
        dynamodb_endpoint_url=dynamodb_endpoint,
        aws_region="us-east-1",
        api_tokens=(TOKEN,),
        dynamodb_table=table.env["DYNAMODB_TABLE"],
        dynamodb_state_table=table.env["DYNAMODB_STATE_TABLE"],
        mapping_file=mapping_file,
        mapping=mapping,
    )
    client = await aiohttp_client(await init_app(settings))
    return client, table


async def get(client: Any, path: str, **params: Any) -> tuple[int, Any]:
    response = await client.get(path, params=params, headers=AUTH)
    return response.status, await response.json()


async def test_paging_by_next_start_user_id_moves_every_user_once(api):
    client, table = api
    table: KeyedTable
    start: str | None = None
    pages, migrated, starts = 0, 0, []
    while True:
        params = {"batch_size": 10} if start is None else {"batch_size": 10, "start_user_id": start}
        status, report = await get(client, "/m2/migration/users", **params)
        assert status == 200, report
        assert report["failed_user_ids"] == []
        assert report["skipped_count"] == 0  # no user read twice
        migrated += report["migrated_count"]
        pages += 1
        start = report["next_start_user_id"]
        if start is None:
            break
        assert isinstance(start, str)
        starts.append(start)
    assert migrated == 57  # none skipped over
    assert pages == 6
    assert starts == sorted(starts)
    assert sorted(await table.items()) == sorted(table.ids)
    status, stats = await get(client, "/m2/migration/stats")
    assert status == 200, stats
    assert stats["total_dynamo_users"] == 57
    assert stats["last_migrated_user_id"] == max(table.ids)
    # The verify pages follow the same order: every row compared once.
    start, checked = None, 0
    while True:
        params = {"batch_size": 10} if start is None else {"batch_size": 10, "start_user_id": start}
        status, page = await get(client, "/m2/migration/verify", **params)
        assert status == 200, page
        assert page["differences"] == []
        assert page["checked"] == page["matching"]
        checked += page["checked"]
        start = page["next_start_user_id"]
        if start is None:
            break
    assert checked == 57


async def test_one_user_by_its_id_and_a_failed_user_listed_as_a_string(api):
    client, table = api
    broken = table.ids[5]
    table.update_email(broken, "not an email")
    status, report = await get(client, "/m2/migration/users", user_id=broken)
    assert status == 200, report
    assert (report["failed_user_ids"], report["errors"]) == ([broken], [f"User {broken}: Invalid email format"])
    status, report = await get(client, "/m2/migration/users", user_id=table.ids[6])
    assert (status, report["migrated_count"]) == (200, 1)
    unknown = str(uuid.uuid4()) if table.kind == "uuid" else "nobody-here"
    status, error = await get(client, "/m2/migration/users", user_id=unknown)
    assert status == 404, error


async def test_a_malformed_id_is_a_400_naming_the_parameter(api):
    client, table = api
    if table.kind == "uuid":
        for parameter in ("user_id", "start_user_id"):
            status, error = await get(client, "/m2/migration/users", **{parameter: "12345"})
            assert status == 400, error
            assert error["error"] == "invalid_parameter"
            assert error["message"] == f"{parameter} must be a uuid (e.g. 00000000-0000-0000-0000-000000000000)"
        status, error = await get(client, "/m2/migration/verify", start_user_id="not-a-uuid")
        assert status == 400, error
        assert error["message"].startswith("start_user_id must be a uuid")
    else:
        status, error = await get(client, "/m2/migration/users", user_id="a\x00b")
        assert status == 400, error
        assert error["message"] == "user_id must be a text (without NUL characters)"


async def test_the_openapi_document_says_ids_are_strings(api):
    client, table = api
    response = await client.get("/m2/migration/openapi.json")
    document = await response.json()
    parameters = document["components"]["parameters"]
    assert parameters["start_user_id"]["schema"]["type"] == "string"
    assert parameters["user_id"]["schema"]["type"] == "string"
    report = document["components"]["schemas"]["MigrationReport"]["properties"]
    assert report["next_start_user_id"]["type"] == "string"
    assert report["failed_user_ids"]["items"]["type"] == "string"
    assert f"source key is a {table.kind}" in document["info"]["description"]


async def test_the_dashboards_overview_and_failures_carry_string_ids(api):
    client, table = api
    broken = table.ids[4]
    table.update_email(broken, "not an email")
    start: str | None = None
    while True:  # the whole table through the batch endpoint
        params = {"batch_size": 25} if start is None else {"batch_size": 25, "start_user_id": start}
        status, report = await get(client, "/m2/migration/users", **params)
        assert status == 200, report
        if (start := report["next_start_user_id"]) is None:
            break
    status, overview = await get(client, "/m2/migration/overview")
    assert status == 200, overview
    assert overview["failures"]["failing_users"] == 1
    assert overview["failures"]["by_reason"][0]["example_user_ids"] == [broken]
    response = await client.get("/m2/migration/failures", headers=AUTH)
    assert response.status == 200
    lines = (await response.text()).splitlines()
    assert [json.loads(line)["user_id"] for line in lines] == [broken]
    page = await client.get("/m2/migration/dashboard")
    assert page.status == 200
