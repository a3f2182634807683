"""Auth, bad parameters, unknown routes and unreachable dependencies, over HTTP on the real stack."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer

from tests.e2e.conftest import AUTH, TOKEN, LiveService
from tests.factories import valid_user
from tests.real_adapters import create_dynamodb_tables, create_source_table, insert_users, unique_name
from user_migration.adapters.dynamodb.client import dynamodb_client
from user_migration.adapters.dynamodb.state import DynamoDbMigrationState
from user_migration.adapters.dynamodb.target import DynamoDbUserTarget
from user_migration.entrypoints.demo.embedded import free_port
from user_migration.entrypoints.http.app import init_app
from user_migration.entrypoints.settings import Settings

USERS = "/m2/migration/users"
STATS = "/m2/migration/stats"
# The refused requests' tests share one app (below): their fixture and they run in the module's event loop.
SHARED = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def refusing(postgres_dsn: str, dynamodb_endpoint: str) -> AsyncIterator[LiveService]:
    """One app on one stack, shared by the tests of requests it must refuse (49 of them, each of which would
    otherwise make its own tables and app): its source holds user 1 and nothing may ever be written, so each
    test's check that the users table is still empty also checks that no test before it wrote there."""
    source_table = unique_name("users")
    create_source_table(postgres_dsn, source_table)
    insert_users(postgres_dsn, source_table, [valid_user(1)])
    async with dynamodb_client(dynamodb_endpoint, "us-east-1") as dynamodb:
        users_table, state_table = await create_dynamodb_tables(dynamodb)
        settings = Settings(
            database_url=postgres_dsn,
            dynamodb_endpoint_url=dynamodb_endpoint,
            aws_region="us-east-1",
            api_tokens=(TOKEN, "second-token"),
            source_table=source_table,
            dynamodb_table=users_table,
            dynamodb_state_table=state_table,
        )
        async with TestClient(TestServer(await init_app(settings))) as client:
            yield LiveService(
                client,
                settings,
                DynamoDbUserTarget(dynamodb, users_table),
                DynamoDbMigrationState(dynamodb, state_table),
            )


@pytest.mark.parametrize("path", [USERS, STATS, "/nowhere"])
@pytest.mark.parametrize(
    "authorization",
    [
        None,
        f"Basic {TOKEN}",
        "Bearer",
        "Bearer ",
        "Bearer wrong-token",
        f"Bearer {TOKEN}x",
        f"Bearer {TOKEN[:-1]}",
        TOKEN,
        "Bearer " + "x" * 10_000,
    ],
)
@SHARED
async def test_requests_without_a_valid_token_are_refused(refusing: LiveService, path, authorization):
    headers = {} if authorization is None else {"Authorization": authorization}
    response = await refusing.client.get(path, headers=headers)
    assert response.status == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert await response.json() == {
        "error": "unauthorized",
        "message": "a valid bearer token is required (Authorization: Bearer <token>)",
    }
    assert await refusing.target.count_users() == 0


@SHARED
async def test_every_configured_token_is_accepted_and_the_scheme_is_case_insensitive(refusing: LiveService):
    for authorization in (f"Bearer {TOKEN}", "Bearer second-token", f"bearer {TOKEN}"):
        response = await refusing.client.get(STATS, headers={"Authorization": authorization})
        assert response.status == 200, authorization


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("batch_size=0", "batch_size"),
        ("batch_size=1001", "batch_size"),
        ("batch_size=-5", "batch_size"),
        ("batch_size=abc", "batch_size"),
        ("batch_size=2.5", "batch_size"),
        ("batch_size=", "batch_size"),
        ("batch_size=99999999999999999999999", "batch_size"),
        ("start_user_id=-1", "start_user_id"),
        ("start_user_id=9223372036854775808", "start_user_id"),
        ("start_user_id=1e3", "start_user_id"),
        ("user_id=0", "user_id"),
        ("user_id=-7", "user_id"),
        ("user_id=9223372036854775808", "user_id"),
        ("user_id=%00", "user_id"),
        ("dry_run=yes", "dry_run"),
        ("dry_run=", "dry_run"),
        ("dryrun=true", "dryrun"),
        ("batch_size=5&batch_size=5", "batch_size"),
        ("user_id=1&user_id=2", "user_id"),
        ("%ff%fe=1", "\ufffd\ufffd"),
    ],
)
@SHARED
async def test_bad_parameters_are_400_naming_the_parameter(refusing: LiveService, query, parameter):
    # The shared source holds user 1: a request that went through would write it.
    response = await refusing.client.get(f"{USERS}?{query}", headers=AUTH)
    assert response.status == 400
    body = await response.json()
    assert body["error"] == "invalid_parameter"
    assert parameter in body["message"]
    assert await refusing.target.count_users() == 0


async def test_user_id_with_batch_parameters_overrides_them(live: LiveService):
    insert_users(live.settings.database_url, live.settings.source_table, [valid_user(1), valid_user(2)])
    status, report = await live.get(USERS, user_id=2, batch_size=50, start_user_id=1)
    assert (status, report["migrated_count"]) == (200, 1)
    assert await live.target.existing_user_ids([1, 2]) == {2}


@SHARED
async def test_unknown_path_and_wrong_method_answer_json(refusing: LiveService):
    response = await refusing.client.get("/m2/migration/nothing", headers=AUTH)
    assert response.status == 404
    assert (await response.json())["error"] == "not_found"
    response = await refusing.client.post(USERS, headers=AUTH)
    assert response.status == 405
    assert (await response.json())["error"] == "method_not_allowed"
    assert "GET" in response.headers["Allow"]


async def test_postgres_unreachable_is_503_and_nothing_is_written(aiohttp_client, live_settings, live: LiveService):
    settings = live_settings(
        database_url=f"postgresql://postgres@127.0.0.1:{free_port()}/postgres",
        dynamodb_table=live.settings.dynamodb_table,
        dynamodb_state_table=live.settings.dynamodb_state_table,
    )
    client = await aiohttp_client(await init_app(settings))
    for path in (USERS, STATS):
        response = await client.get(path, headers=AUTH)
        assert response.status == 503
        body = await response.json()
        assert body["error"] == "source_unavailable"
        assert "Traceback" not in body["message"]
    assert await live.target.count_users() == 0


async def test_dynamodb_unreachable_is_503_and_no_progress_is_recorded(aiohttp_client, live_settings, live):
    insert_users(live.settings.database_url, live.settings.source_table, [valid_user(i) for i in range(1, 4)])
    settings = live_settings(
        source_table=live.settings.source_table,
        dynamodb_endpoint_url=f"http://127.0.0.1:{free_port()}",
        # How many times botocore tries a refused connection again is not what this proves: one retry
        # instead of the default three spares its waits (up to 1, 2, then 4 s) before the same 503.
        dynamodb_retries=1,
    )
    client = await aiohttp_client(await init_app(settings))
    for path in (USERS, STATS):
        response = await client.get(path, headers=AUTH)
        assert response.status == 503
        assert (await response.json())["error"] == "target_unavailable"
    assert (await live.state.read_progress()).migrated_users == 0
