"""Fault tests: the real servers of the session (PostgreSQL, moto) behind fault-injecting proxies.

Every test gets its own proxies (so a fault never leaks into another test), its own source table
and DynamoDB tables, and direct (unproxied) access to all of them for the checks.

Write modes: a test marked `@both_write_modes` runs once in the live (default) mode, where each
user is one conditional PutItem, and once in the offline mode (`OFFLINE_WRITES=true`: existence
check, then BatchWriteItem). `world.write_operation` names the request that writes users in the
test's mode, so one fault (`proxy.hangup(world.write_operation)`) hits the writes of either. A test
that is not parametrized runs the live mode, the product's default.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import aioboto3
import attrs
import pytest
from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession
from aiohttp.test_utils import TestClient
from dependency_injector import providers

from tests.dynamodb_servers import DYNAMODB_IMPLEMENTATIONS
from tests.faults.fault_proxy import FaultProxy
from tests.real_adapters import create_dynamodb_tables, create_source_table, insert_users, unique_name
from user_migration.adapters.dynamodb.item_size import Item
from user_migration.adapters.dynamodb.state import DynamoDbMigrationState
from user_migration.adapters.dynamodb.target import DynamoDbUserTarget
from user_migration.adapters.postgres.source import PostgresUserSource, create_pool
from user_migration.container import build_container
from user_migration.domain.convert.mapping import default_mapping
from user_migration.domain.convert.rules import Rejection, prepare_user
from user_migration.domain.model import MigrationProgress, SourceUser, User
from user_migration.entrypoints.demo.embedded import free_port
from user_migration.entrypoints.http.app import init_app
from user_migration.entrypoints.settings import Settings

TOKEN = "fault-token-2718281828"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
USERS = "/m2/migration/users"
STATS = "/m2/migration/stats"


def postgres_target(dsn: str) -> tuple[tuple[str, int] | str, dict[str, Any]]:
    """Where a PostgreSQL DSN points (a TCP address or pgserver's Unix socket file) and the parts
    of the DSN a proxied one keeps (user, password, database, other query parameters)."""
    url = urlparse(dsn)
    query = {key: values[-1] for key, values in parse_qs(url.query).items()}
    host = query.pop("host", None) or url.hostname or "/tmp"
    port = int(query.pop("port", None) or url.port or 5432)
    target: tuple[str, int] | str = f"{host}/.s.PGSQL.{port}" if host.startswith("/") else (host, port)
    return target, {"user": url.username or "postgres", "password": url.password, "path": url.path, "query": query}


def proxied_dsn(dsn: str, proxy: FaultProxy) -> str:
    """The same database, reached over TCP through `proxy`."""
    _, parts = postgres_target(dsn)
    credentials = parts["user"] + (f":{parts['password']}" if parts["password"] else "")
    query = f"?{urlencode(parts['query'])}" if parts["query"] else ""
    return f"postgresql://{credentials}@127.0.0.1:{proxy.port}{parts['path']}{query}"


@pytest.fixture
def dynamodb_server(request: pytest.FixtureRequest) -> str:
    """The DynamoDB implementation of a test's world: moto, unless a test parametrizes this fixture
    (indirectly) with another of `DYNAMODB_IMPLEMENTATIONS`, e.g. DynamoDB Local for the batched path."""
    server: str = getattr(request, "param", "moto")
    return server


@pytest.fixture
def faults_dynamodb_endpoint(request: pytest.FixtureRequest, dynamodb_server: str) -> str:
    endpoint: str = request.getfixturevalue(DYNAMODB_IMPLEMENTATIONS[dynamodb_server])
    return endpoint


# One botocore session for the DynamoDB clients the tests make themselves (not the apps' and commands'): a
# client of a new session loads DynamoDB's service model and endpoint rules from their JSON files again,
# about 50 ms of CPU each time (measured), once or twice in every test here.
BOTOCORE_SESSION = AioSession()


@pytest.fixture
async def dynamodb(faults_dynamodb_endpoint: str) -> AsyncIterator[Any]:
    """A direct DynamoDB client on the world's implementation (moto by default). botocore's own check of each
    request is off, as in the service's client (`adapters.dynamodb.client`)."""
    config = AioConfig(max_pool_connections=32, parameter_validation=False)
    session = aioboto3.Session(botocore_session=BOTOCORE_SESSION)
    async with session.client(
        "dynamodb", endpoint_url=faults_dynamodb_endpoint, region_name="us-east-1", config=config
    ) as client:
        yield client


@pytest.fixture
def dynamodb_proxy(faults_dynamodb_endpoint: str) -> Iterator[FaultProxy]:
    """An HTTP-aware proxy in front of the world's DynamoDB (the session's moto server by default)."""
    url = urlparse(faults_dynamodb_endpoint)
    with FaultProxy((url.hostname or "127.0.0.1", url.port or 80), http=True, name="dynamodb-proxy") as proxy:
        yield proxy


@pytest.fixture
def postgres_proxy(postgres_dsn: str) -> Iterator[FaultProxy]:
    """A byte-level proxy in front of the session's PostgreSQL (TCP or Unix socket)."""
    target, _ = postgres_target(postgres_dsn)
    with FaultProxy(target, name="postgres-proxy") as proxy:
        yield proxy


def is_valid(user: User) -> bool:
    return not isinstance(prepare_user(user, datetime.now(UTC)), Rejection)


WRITE_MODES = ("live", "offline")
# Run a test in both write modes (the `write_mode` fixture, through which `world` takes its mode).
both_write_modes = pytest.mark.parametrize("write_mode", WRITE_MODES, indirect=True)


@pytest.fixture
def write_mode(request: pytest.FixtureRequest) -> str:
    """The write mode: `live` (the default: conditional PutItems) or `offline` (check, then BatchWriteItem)."""
    mode: str = getattr(request, "param", "live")
    assert mode in WRITE_MODES, mode
    return mode


# A run cut inside a hold leaves it to expire before the next run takes it over: 10 s here rather
# than the default 60, so that those tests wait seconds, not minutes (still far above a page's write).
HOLD_LEASE_SECONDS = 10.0


@attrs.define
class World:
    """Fresh tables on the real servers, proxies in front of them, and direct access for checks."""

    dsn: str  # direct
    source_table: str
    users_table: str
    state_table: str
    dynamodb: Any  # a direct DynamoDB client
    dynamodb_proxy: FaultProxy
    postgres_proxy: FaultProxy
    offline: bool = False  # the write mode of every app and process this world starts

    @property
    def write_operation(self) -> str:
        """The DynamoDB operation that writes users in this world's mode."""
        return "BatchWriteItem" if self.offline else "PutItem"

    @property
    def target(self) -> DynamoDbUserTarget:
        return DynamoDbUserTarget(self.dynamodb, self.users_table)

    @property
    def state(self) -> DynamoDbMigrationState:
        return DynamoDbMigrationState(self.dynamodb, self.state_table)

    @property
    def proxied_dsn(self) -> str:
        return proxied_dsn(self.dsn, self.postgres_proxy)

    def settings(self, **changes: Any) -> Settings:
        """Settings of an app that reaches both servers through the proxies."""
        settings = Settings(
            database_url=self.proxied_dsn,
            source_table=self.source_table,
            dynamodb_table=self.users_table,
            dynamodb_state_table=self.state_table,
            dynamodb_endpoint_url=self.dynamodb_proxy.url,
            aws_region="us-east-1",
            api_tokens=(TOKEN,),
            offline_writes=self.offline,
            hold_lease_seconds=HOLD_LEASE_SECONDS,
        )
        return attrs.evolve(settings, **changes)

    def environment(self, **changes: str) -> dict[str, str]:
        """The same, as the environment of a `user-migration` process."""
        env = {
            "DATABASE_URL": self.proxied_dsn,
            "SOURCE_TABLE": self.source_table,
            "DYNAMODB_ENDPOINT_URL": self.dynamodb_proxy.url,
            "DYNAMODB_TABLE": self.users_table,
            "DYNAMODB_STATE_TABLE": self.state_table,
            "AWS_REGION": "us-east-1",
            "MIGRATION_API_TOKENS": TOKEN,
            "LOG_FORMAT": "json",
            "OFFLINE_WRITES": "true" if self.offline else "false",
            "HOLD_LEASE_SECONDS": str(HOLD_LEASE_SECONDS),
        }
        return {**env, **changes}

    def seed(self, users: list[User]) -> list[User]:
        insert_users(self.dsn, self.source_table, users)
        return users

    async def source_users(self) -> dict[int, SourceUser]:
        """Every source row as the real PostgreSQL adapter reads it."""
        pool = await create_pool(self.dsn)
        try:
            users = await PostgresUserSource(pool, default_mapping(self.source_table)).read_page(0, 100_000)
        finally:
            pool.close()
            await pool.wait_closed()
        return {user.id: user for user in users}

    async def items(self) -> dict[int, Item]:
        """Every item of the users table (a consistent scan, straight to moto)."""
        items: dict[int, Item] = {}
        arguments: dict[str, Any] = {"TableName": self.users_table, "ConsistentRead": True}
        while True:
            response = await self.dynamodb.scan(**arguments)
            for item in response["Items"]:
                user_id = int(item["user_id"]["N"])
                assert user_id not in items, f"user {user_id} stored twice"
                items[user_id] = item
            if "LastEvaluatedKey" not in response:
                return items
            arguments["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    async def progress(self) -> MigrationProgress:
        return await self.state.read_progress()

    async def count_and_counter(self) -> tuple[int, int]:
        return await self.target.count_users(), (await self.progress()).migrated_users


@pytest.fixture
async def world(postgres_dsn, dynamodb, dynamodb_proxy, postgres_proxy, write_mode: str) -> World:
    source_table = unique_name("users")
    create_source_table(postgres_dsn, source_table)
    users_table, state_table = await create_dynamodb_tables(dynamodb)
    return World(
        postgres_dsn,
        source_table,
        users_table,
        state_table,
        dynamodb,
        dynamodb_proxy,
        postgres_proxy,
        offline=write_mode == "offline",
    )


def refuse_writes_of(world: World, user_ids: set[int]) -> Any:
    """Make every write of these users fail, on every attempt, the way each mode can fail one user
    alone: offline, DynamoDB leaves them in UnprocessedItems of their BatchWriteItem; live, each of
    their PutItems is answered 500 InternalServerError (the SDK retries it, the adapter reports it)."""
    if world.offline:
        return world.dynamodb_proxy.unprocessed(user_ids)
    return world.dynamodb_proxy.fail("PutItem", user_ids=user_ids)


@pytest.fixture
def app_client(aiohttp_client, world: World):
    """`await app_client(**settings_changes)`: an HTTP client on an app behind the proxies."""

    async def make(**changes: Any) -> TestClient:
        return await aiohttp_client(await init_app(world.settings(**changes)))

    return make


async def impatient_dynamodb(endpoint_url: str | None, region_name: str | None) -> AsyncIterator[Any]:
    """A DynamoDB client that makes one attempt per SDK call, so the adapter's own retries are what a
    throttled request goes through. Its timeouts are botocore's defaults: the throttles answer at once,
    and a shorter read timeout failed ordinary writes of a machine whose cores four test workers share."""
    config = AioConfig(max_pool_connections=32, retries={"mode": "standard", "total_max_attempts": 1})
    session = aioboto3.Session(botocore_session=BOTOCORE_SESSION)
    async with session.client("dynamodb", endpoint_url=endpoint_url, region_name=region_name, config=config) as client:
        yield client


@pytest.fixture
def impatient_app_client(aiohttp_client, world: World):
    """Like `app_client`, but the container's DynamoDB client is `impatient_dynamodb`: everything
    else (adapters, their own retries and backoff, use case, HTTP) is the production wiring.

    With the production client (botocore: 4 attempts per call, backoff up to 1+2+4 s) a request
    throttled on every attempt takes ~35 s before the adapter's 8 attempts are used up."""

    async def make(**changes: Any) -> TestClient:
        settings = world.settings(**changes)
        container = build_container(settings.container_config())
        container.dynamodb_client.override(
            providers.Resource(
                impatient_dynamodb, endpoint_url=settings.dynamodb_endpoint_url, region_name=settings.aws_region
            )
        )
        return await aiohttp_client(await init_app(settings, container))

    return make


async def get(client: TestClient, path: str = USERS, **params: Any) -> tuple[int, Any]:
    response = await client.get(path, params={k: str(v) for k, v in params.items()}, headers=AUTH)
    return response.status, await response.json()


# ---- processes -------------------------------------------------------------------------------


def cli_command(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "user_migration.entrypoints.cli", *arguments]


def process_environment(env: dict[str, str]) -> dict[str, str]:
    prefixes = ("DATABASE_", "DYNAMODB_", "SOURCE_", "MIGRATION_", "LOG_", "SHUTDOWN_", "HOST", "PORT")
    base = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    return {**base, **env}


def run_cli(env: dict[str, str], *arguments: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cli_command(*arguments),
        env=process_environment(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class ServeProcess:
    """`user-migration serve` in a child process, its stderr collected by a thread."""

    def __init__(self, env: dict[str, str]) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            cli_command("serve"),
            env=process_environment({**env, "HOST": "127.0.0.1", "PORT": str(self.port)}),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_until_listening(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                assert self.process.poll() is None, "".join(self.lines)
                assert time.monotonic() < deadline, "serve did not listen in time"
                time.sleep(0.05)

    def terminate(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def wait(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout=timeout)
        finally:
            self._reader.join(timeout=5)

    def close(self) -> None:
        """Make sure the process is gone and its pipe closed (no ResourceWarning)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self._reader.join(timeout=5)
        if self.process.stderr is not None:
            self.process.stderr.close()


@pytest.fixture
def serve_process() -> Iterator[Any]:
    """`serve_process(env)` starts a `user-migration serve`; all are stopped after the test."""
    started: list[ServeProcess] = []

    def start(env: dict[str, str]) -> ServeProcess:
        server = ServeProcess(env)
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()
