"""The OpenAPI document: served by the app, a valid OpenAPI document, and the live API keeps to it.

The live API is the real app on the real stack (PostgreSQL and moto's DynamoDB, fresh tables with
valid and invalid users), served over real HTTP on a free port from a thread with its own event
loop, so that schemathesis (synchronous, `requests`) can call it. Schemathesis runs every check it
has: no server error, status codes, content types, response bodies and headers as documented,
valid data accepted, invalid data rejected, requests without or with a wrong token refused,
unsupported methods answered with 405, ...
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Coroutine, Iterator
from importlib import resources
from typing import Any, TypeVar

import hypothesis
import jwt
import pytest
import requests
import schemathesis
from aiohttp import web
from schemathesis.core.result import Ok

from tests.e2e.conftest import AUTH, TOKEN
from tests.factories import valid_user
from tests.real_adapters import create_dynamodb_tables, create_source_table, insert_users, unique_name
from user_migration.adapters.dynamodb.client import dynamodb_client
from user_migration.entrypoints.demo.embedded import free_port
from user_migration.entrypoints.http.app import init_app
from user_migration.entrypoints.http.auth import JwtRules
from user_migration.entrypoints.http.openapi import OPENAPI_PATH
from user_migration.entrypoints.settings import Settings

T = TypeVar("T")
MAX_USER_ID = 2**63 - 1
MAX_EXAMPLES = 100
JWT_SECRET = "an-hs256-secret-for-the-openapi-tests-0123456789"
OPERATIONS = {
    "GET /m2/migration/users",
    "GET /m2/migration/stats",
    "GET /m2/migration/verify",
    "GET /m2/migration/overview",
    "GET /m2/migration/failures",
    "GET /m2/migration/dashboard",
    "GET /m2/migration/openapi.json",
    "GET /healthz",
    "GET /readyz",
    "GET /metrics",
}


class LiveServer:
    """An event loop in a thread of its own, serving the app on 127.0.0.1:<free port>."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="live-app", daemon=True)
        self._thread.start()
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        """Run a coroutine on the server's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def serve(self, settings: Settings) -> None:
        """Start serving the app built from `settings`."""
        self.run(self._serve(settings, free_port()))

    async def _serve(self, settings: Settings, port: int) -> None:
        app = await init_app(settings)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        self.base_url = f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        """Stop serving (the app's shutdown closes its pool and client), then the loop."""
        try:
            if self._runner is not None:
                self.run(self._runner.cleanup())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(30)
            self._loop.close()


@pytest.fixture(scope="module")
def live_server(postgres_dsn: str, dynamodb_endpoint: str) -> Iterator[LiveServer]:
    """The real app on fresh tables: valid users, invalid ones, and one at the largest id; it
    accepts the static token `TOKEN` and JWTs signed with `JWT_SECRET`.

    One per module: Hypothesis runs every generated case of a test against the same fixture.
    """
    source_table = unique_name("users")
    create_source_table(postgres_dsn, source_table)
    insert_users(
        postgres_dsn,
        source_table,
        [
            *(valid_user(user_id) for user_id in (0, 1, 2, 3, 4, 5, 10, 1000)),
            valid_user(6, email=None),
            valid_user(7, username="x", status="?"),
            valid_user(8, profile=[1, 2]),
            valid_user(MAX_USER_ID),
        ],
    )

    async def create_tables() -> tuple[str, str]:
        async with dynamodb_client(endpoint_url=dynamodb_endpoint, region_name="us-east-1") as client:
            return await create_dynamodb_tables(client)

    server = LiveServer()
    try:
        users_table, state_table = server.run(create_tables())
        server.serve(
            Settings(
                database_url=postgres_dsn,
                source_table=source_table,
                dynamodb_table=users_table,
                dynamodb_state_table=state_table,
                dynamodb_endpoint_url=dynamodb_endpoint,
                aws_region="us-east-1",
                api_tokens=(TOKEN, "second-token"),
                jwt_rules=JwtRules("HS256", JWT_SECRET),
            )
        )
        yield server
    finally:
        server.stop()


def packaged_document() -> dict[str, Any]:
    """The document as packaged with the service (`entrypoints/http/openapi.json`)."""
    document: dict[str, Any] = json.loads(
        resources.files("user_migration.entrypoints.http").joinpath("openapi.json").read_text()
    )
    return document


def served_document(server: LiveServer) -> requests.Response:
    """GET the document from the live app (with a token: the path may or may not be public)."""
    return requests.get(f"{server.base_url}{OPENAPI_PATH}", headers=AUTH, timeout=30)


def test_the_document_is_served_and_is_valid_openapi(live_server: LiveServer) -> None:
    response = served_document(live_server)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    packaged = packaged_document()
    assert response.json() == packaged
    assert packaged["openapi"].startswith("3.")

    loaded = schemathesis.openapi.from_url(f"{live_server.base_url}{OPENAPI_PATH}", headers=AUTH, timeout=30)
    loaded.validate()  # against the OpenAPI meta-schema; raises when the document is not valid OpenAPI
    every_operation = list(schemathesis.openapi.from_dict(packaged).get_all_operations())
    assert all(isinstance(result, Ok) for result in every_operation)  # no operation the loader refused
    assert {result.ok().label for result in every_operation if isinstance(result, Ok)} == OPERATIONS


# Loaded from the package, so that pytest can collect one test per operation before any server
# runs (the test above checks that the app serves this very document). `from_fixture` would load
# it from the live app instead, but schemathesis 4.32's lazy loader breaks on pytest 9.2
# (`Function._nodeid`). Every check schemathesis has is enabled, with a valid token on every
# request; its auth checks also send requests without a token and with a wrong one.
schema = schemathesis.openapi.from_dict(packaged_document())
schema.config.update(headers=AUTH, request_timeout=30)
schema.config.checks.update(included_check_names=["all"])
schema.config.generation.update(max_examples=MAX_EXAMPLES, database="none")


@hypothesis.settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=[hypothesis.HealthCheck.too_slow, hypothesis.HealthCheck.filter_too_much],
)
@schema.parametrize()
def test_the_live_api_keeps_to_its_document(case: schemathesis.Case[Any], live_server: LiveServer) -> None:
    case.call_and_validate(base_url=live_server.base_url, timeout=30)


# The operations that need a token, and what to send instead of a valid one.
SECURED = [
    "/m2/migration/users",
    "/m2/migration/stats",
    "/m2/migration/verify",
    "/m2/migration/overview",
    "/m2/migration/failures",
    "/metrics",
]
NOT_A_VALID_TOKEN = [{}, {"Authorization": "Bearer wrong-token"}, {"Authorization": f"Basic {TOKEN}"}]


@pytest.mark.parametrize("path", SECURED)
@pytest.mark.parametrize("headers", NOT_A_VALID_TOKEN, ids=["no-token", "wrong-token", "not-bearer"])
def test_without_a_valid_token_the_answer_is_the_documented_401(
    live_server: LiveServer, path: str, headers: dict[str, str]
) -> None:
    anonymous = schemathesis.openapi.from_dict(packaged_document())  # no configured token
    case = anonymous[path]["GET"].Case(headers=headers)
    response = case.call(base_url=live_server.base_url, timeout=30)
    assert response.status_code == 401
    assert response.headers["www-authenticate"][0].startswith("Bearer")
    case.validate_response(response)  # every check, against the documented 401


def test_without_the_scope_the_answer_is_the_documented_403(live_server: LiveServer) -> None:
    reader = jwt.encode({"exp": int(time.time()) + 3600, "scope": "migration:read"}, JWT_SECRET, algorithm="HS256")
    anonymous = schemathesis.openapi.from_dict(packaged_document())  # no configured token
    case = anonymous["/m2/migration/users"]["GET"].Case(headers={"Authorization": f"Bearer {reader}"})
    response = case.call(base_url=live_server.base_url, timeout=30)
    assert response.status_code == 403
    assert response.headers["www-authenticate"][0].startswith("Bearer")
    case.validate_response(response)  # every check, against the documented 403
