"""JWTs and hashed static tokens over HTTP: 401 for a bad token, 403 for a missing scope, and no
token, good or bad, ever reaches the logs."""

from __future__ import annotations

import hashlib
import logging
import time

import jwt
import pytest

from tests.factories import valid_user
from tests.real_adapters import create_dynamodb_tables, create_source_table, insert_users, unique_name
from user_migration.entrypoints.http.app import init_app
from user_migration.entrypoints.http.auth import JwtRules

SECRET = "an-hs256-secret-for-the-tests-0123456789"
RULES = JwtRules("HS256", SECRET, issuer="https://idp.example", audience="user-migration")
NOW = int(time.time())
CLAIMS = {"exp": NOW + 86_400, "iss": "https://idp.example", "aud": "user-migration"}
HASHED_TOKEN = "only-its-hash-is-configured"


def token(**changes) -> str:
    claims = {**CLAIMS, **changes}
    return jwt.encode({key: value for key, value in claims.items() if value is not None}, SECRET, algorithm="HS256")


@pytest.fixture
async def client(aiohttp_client, live_settings, postgres_dsn, dynamodb):
    source_table = unique_name("users")
    create_source_table(postgres_dsn, source_table)
    insert_users(postgres_dsn, source_table, [valid_user(i) for i in range(1, 4)])
    users_table, state_table = await create_dynamodb_tables(dynamodb)
    settings = live_settings(
        source_table=source_table,
        dynamodb_table=users_table,
        dynamodb_state_table=state_table,
        api_tokens=("sha256:" + hashlib.sha256(HASHED_TOKEN.encode()).hexdigest(),),
        jwt_rules=RULES,
    )
    return await aiohttp_client(await init_app(settings))


async def status_of(client, presented: str | None, path: str = "/m2/migration/stats") -> int:
    headers = {} if presented is None else {"Authorization": presented}
    response = await client.get(path, headers=headers)
    body = await response.json()
    assert set(body) == {"error", "message"} or response.status == 200
    return response.status


async def test_scopes_decide_between_read_and_write(client):
    reader = f"Bearer {token(scope='migration:read')}"
    writer = f"Bearer {token(scope='migration:write')}"
    assert await status_of(client, reader) == 200
    response = await client.get("/m2/migration/users", headers={"Authorization": reader})
    assert response.status == 403
    assert await response.json() == {
        "error": "forbidden",
        "message": "the token does not grant the scope migration:write",
    }
    assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]
    assert await status_of(client, writer, "/m2/migration/users?dry_run=true") == 200
    assert await status_of(client, writer) == 200  # write implies read
    assert await status_of(client, f"Bearer {token(scope='profile email')}") == 403
    assert await status_of(client, f"Bearer {token()}") == 403  # valid, but no scope at all
    metrics = await client.get("/metrics", headers={"Authorization": reader})
    assert metrics.status == 200


async def test_a_hashed_static_token_has_every_scope(client):
    assert await status_of(client, f"Bearer {HASHED_TOKEN}", "/m2/migration/users?batch_size=5") == 200
    hashed = "sha256:" + hashlib.sha256(HASHED_TOKEN.encode()).hexdigest()
    assert await status_of(client, f"Bearer {hashed}") == 401  # the hash itself is not a token


BAD = {
    "missing header": None,
    "wrong scheme": f"Basic {token(scope='migration:write')}",
    "empty token": "Bearer ",
    "wrong token": "Bearer not-a-configured-token",
    "expired": f"Bearer {token(scope='migration:write', exp=NOW - 3600)}",
    "not yet valid": f"Bearer {token(scope='migration:write', nbf=NOW + 86_400)}",
    "wrong issuer": f"Bearer {token(scope='migration:write', iss='https://evil.example')}",
    "wrong audience": f"Bearer {token(scope='migration:write', aud='another-service')}",
    "alg none": f"Bearer {jwt.encode({**CLAIMS, 'scope': 'migration:write'}, None, algorithm='none')}",
    "wrong algorithm": f"Bearer {jwt.encode({**CLAIMS, 'scope': 'migration:write'}, SECRET * 2, algorithm='HS512')}",
    "wrong key": f"Bearer {jwt.encode({**CLAIMS, 'scope': 'migration:write'}, 'x' * 40, algorithm='HS256')}",
    "10 KB header": "Bearer " + "k" * 10_240,
}


@pytest.mark.parametrize("case", list(BAD))
async def test_bad_credentials_are_refused_and_never_logged(client, caplog, case):
    caplog.set_level(logging.DEBUG)
    presented = BAD[case]
    for path in ("/m2/migration/users", "/m2/migration/stats", "/metrics"):
        assert await status_of(client, presented, path) == 401
    secret_part = (presented or "").partition(" ")[2]
    if secret_part:
        assert secret_part not in caplog.text
        assert secret_part[:40] not in caplog.text


async def test_good_tokens_are_not_logged_either(client, caplog):
    caplog.set_level(logging.DEBUG)
    good = token(scope="migration:write")
    assert await status_of(client, f"Bearer {good}", "/m2/migration/users") == 200
    assert good not in caplog.text
    assert good.split(".")[1] not in caplog.text
    assert "request" in caplog.text  # the access log did run


async def test_an_oversized_header_is_refused_without_logging_it(client, caplog):
    caplog.set_level(logging.DEBUG)
    huge = "Bearer " + "q" * 100_000
    response = await client.get("/m2/migration/stats", headers={"Authorization": huge})
    assert response.status in (400, 431)
    assert "qqqqqqqqqqqqqqqq" not in caplog.text
