"""Real servers for the integration and end-to-end tiers, started by the tests themselves.

PostgreSQL: `TEST_DATABASE_URL` when set, otherwise an embedded server (pgserver) in a temporary
folder. DynamoDB: `TEST_DYNAMODB_ENDPOINT_URL` when set, otherwise moto in server mode in a child
process. The tests of what every DynamoDB must agree on (sync's deletes, verify's repair, the
target's contracts) also run on dynalite and DynamoDB Local (`tests/dynamodb_servers.py`;
`TEST_DYNALITE_ENDPOINT_URL`, `TEST_DYNAMODB_LOCAL_ENDPOINT_URL` when set). If a server cannot
start, the tests that need it fail loudly; none are skipped.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.dynamodb_servers import DYNAMODB_IMPLEMENTATIONS, Dynalite, DynamoDbLocal
from tests.shared_servers import session_server, start_sharing, stop_sharing
from user_migration.adapters.dynamodb.client import dynamodb_client
from user_migration.entrypoints.demo.embedded import EmbeddedDynamoDb, EmbeddedPostgres

# Never let a test reach real AWS with someone's real credentials.
os.environ.update(
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_SESSION_TOKEN="testing",
    AWS_DEFAULT_REGION="us-east-1",
    AWS_REGION="us-east-1",
)
os.environ.pop("AWS_PROFILE", None)


@pytest.fixture(scope="session")
def postgres_dsn() -> Iterator[str]:
    """A PostgreSQL server for the whole test session."""
    if os.environ.get("TEST_DATABASE_URL"):
        yield os.environ["TEST_DATABASE_URL"]
        return
    # A folder of its own, not under pytest's basetemp: pytest prunes old basetemp folders, and
    # a second pytest session running meanwhile would delete this one's data under it.
    data_dir = Path(tempfile.mkdtemp(prefix="user-migration-pgdata-"))
    server = EmbeddedPostgres(data_dir).start()
    try:
        yield server.dsn
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def logical_postgres_dsn() -> Iterator[str]:
    """A PostgreSQL server with `wal_level = logical` for the whole session (change data capture);
    `TEST_LOGICAL_DATABASE_URL` when set."""
    if os.environ.get("TEST_LOGICAL_DATABASE_URL"):
        yield os.environ["TEST_LOGICAL_DATABASE_URL"]
        return
    data_dir = Path(tempfile.mkdtemp(prefix="user-migration-pglogical-"))
    server = EmbeddedPostgres(data_dir).start({"wal_level": "logical", "max_slot_wal_keep_size": "1GB"})
    try:
        yield server.dsn
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def dynamodb_endpoint() -> Iterator[str]:
    """A DynamoDB endpoint (moto server over HTTP) for the whole test session."""
    yield from _dynamodb_server(EmbeddedDynamoDb(), "TEST_DYNAMODB_ENDPOINT_URL")


def _dynamodb_server(server: EmbeddedDynamoDb, variable: str, shared_as: str | None = None) -> Iterator[str]:
    """The endpoint in `variable` when set, otherwise `server`'s, started for the session (under xdist, once
    for every worker when `shared_as` names it: tests/shared_servers.py)."""
    if os.environ.get(variable):
        yield os.environ[variable]
        return
    with session_server(server, shared_as) as endpoint:
        yield endpoint


def pytest_configure(config: pytest.Config) -> None:
    start_sharing(config)


def pytest_unconfigure(config: pytest.Config) -> None:
    stop_sharing(config)


@pytest.fixture(scope="session")
def dynalite_endpoint() -> Iterator[str]:
    """dynalite (DynamoDB on Node.js, in memory) for the whole test session."""
    yield from _dynamodb_server(Dynalite(), "TEST_DYNALITE_ENDPOINT_URL", shared_as="dynalite")


@pytest.fixture(scope="session")
def dynamodb_local_endpoint() -> Iterator[str]:
    """DynamoDB Local (AWS's, on Java, in memory) for the whole test session."""
    yield from _dynamodb_server(DynamoDbLocal(), "TEST_DYNAMODB_LOCAL_ENDPOINT_URL", shared_as="dynamodb-local")


@pytest.fixture(params=list(DYNAMODB_IMPLEMENTATIONS))
def any_dynamodb_endpoint(request: pytest.FixtureRequest) -> str:
    """The endpoint of each DynamoDB implementation in turn (a test using this runs once on each)."""
    endpoint: str = request.getfixturevalue(DYNAMODB_IMPLEMENTATIONS[request.param])
    return endpoint


@pytest.fixture
async def dynamodb(dynamodb_endpoint: str) -> AsyncIterator[Any]:
    """A DynamoDB client on the test endpoint."""
    async with dynamodb_client(endpoint_url=dynamodb_endpoint, region_name="us-east-1") as client:
        yield client
