"""The one place where configuration, clients, adapters and use cases are wired.

Ports are `Dependency` providers with the real adapter as default, so any adapter implementing a
port can be swapped in with `container.user_source.override(...)`, and one that does not
implement it is refused.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator
from typing import Any

import aiopg
from dependency_injector import containers, providers

from adapters.dynamodb_client import dynamodb_client
from adapters.dynamodb_state import DynamoDbMigrationState
from adapters.dynamodb_target import DynamoDbUserTarget
from adapters.postgres import PostgresUserSource, create_pool
from domain.differences import LatestVerification
from domain.mapping import UserMapping, default_mapping
from domain.migration import Migration
from domain.migration_run import DEFAULT_PAGES_IN_FLIGHT, MigrationRun
from domain.range_locks import UserRangeLocks
from domain.rules import UserPreparer
from domain.sync import ChangeSync
from domain.verification import Verification
from domain.writes_in_flight import WritesInFlight
from ports import MigrationState, UserSource, UserTarget


async def postgres_pool(database_url: str, query_timeout: float) -> AsyncIterator[aiopg.Pool]:
    """The process's PostgreSQL pool, closed on shutdown."""
    pool = await create_pool(database_url, query_timeout=query_timeout)
    try:
        yield pool
    finally:
        pool.close()
        await pool.wait_closed()


async def dynamodb(endpoint_url: str | None, region_name: str | None, concurrency: int) -> AsyncIterator[Any]:
    """The process's DynamoDB client, closed on shutdown; enough connections for the batch
    reads and writes in flight (each up to `concurrency`) plus the state table's."""
    async with dynamodb_client(
        endpoint_url=endpoint_url, region_name=region_name, max_pool_connections=2 * concurrency + 8
    ) as client:
        yield client


def mapping_or_default(mapping: UserMapping | None) -> UserMapping:
    """The configured mapping, or the documented layout."""
    return mapping if mapping is not None else default_mapping()


def has_version(mapping: UserMapping) -> bool:
    """Whether the mapping names a `[source] version` (what `sync` needs)."""
    return mapping.version is not None


class Container(containers.DeclarativeContainer):
    """Wiring of the migration."""

    # Defaults for what a container used without settings (the test harness) still needs.
    config = providers.Configuration(
        default={"pages_in_flight": DEFAULT_PAGES_IN_FLIGHT, "offline_writes": False, "hold_lease_seconds": 60.0}
    )

    # What the source's rows mean: the mapping file's, or the documented layout.
    mapping = providers.Singleton(mapping_or_default, config.mapping)
    preparer = providers.Singleton(UserPreparer, mapping)

    postgres_pool = providers.Resource(
        postgres_pool, database_url=config.database_url, query_timeout=config.source_query_timeout
    )
    dynamodb_client = providers.Resource(
        dynamodb,
        endpoint_url=config.dynamodb_endpoint_url,
        region_name=config.aws_region,
        concurrency=config.dynamodb_concurrency,
    )

    user_source = providers.Dependency(
        instance_of=UserSource,
        default=providers.Singleton(PostgresUserSource, pool=postgres_pool, mapping=mapping),
    )
    user_target = providers.Dependency(
        instance_of=UserTarget,
        default=providers.Singleton(
            DynamoDbUserTarget,
            client=dynamodb_client,
            table=config.dynamodb_table,
            concurrency=config.dynamodb_concurrency,
            key_attribute=mapping.provided.key_attribute,
        ),
    )
    migration_state = providers.Dependency(
        instance_of=MigrationState,
        default=providers.Singleton(
            DynamoDbMigrationState,
            client=dynamodb_client,
            table=config.dynamodb_state_table,
            lease_seconds=config.hold_lease_seconds.as_float(),
        ),
    )

    range_locks = providers.Singleton(UserRangeLocks)
    writes_in_flight = providers.Singleton(WritesInFlight)
    migration = providers.Factory(
        Migration,
        source=user_source,
        target=user_target,
        state=migration_state,
        locks=range_locks,
        in_flight=writes_in_flight,
        preparer=preparer,
        offline=config.offline_writes.as_(bool),
    )
    migration_run = providers.Factory(
        MigrationRun,
        source=user_source,
        state=migration_state,
        migration=migration,
        pages_in_flight=config.pages_in_flight.as_int(),
    )
    # The counts of the last verify in this process (run or HTTP page), read by the metrics.
    latest_verification = providers.Singleton(LatestVerification)
    verification = providers.Factory(
        Verification,
        source=user_source,
        target=user_target,
        state=migration_state,
        migration=migration,
        preparer=preparer,
        pages_in_flight=config.pages_in_flight.as_int(),
        latest=latest_verification,
    )
    change_sync = providers.Factory(
        ChangeSync,
        source=user_source,
        target=user_target,
        state=migration_state,
        migration=migration,
        versioned=providers.Callable(has_version, mapping),
        pages_in_flight=config.pages_in_flight.as_int(),
    )


async def resolve(provided: Any) -> Any:
    """The value of a provider call: providers that depend on async resources return awaitables."""
    if inspect.isawaitable(provided):
        return await provided
    return provided


def build_container(config: dict[str, object]) -> Container:
    """A container configured with these values (see `Settings.container_config`)."""
    container = Container()
    container.config.from_dict(config)
    return container
