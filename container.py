"""The one place where configuration, clients, adapters and use cases are wired.

Ports are `Dependency` providers with the real adapter as default, so any adapter implementing a
port can be swapped in with `container.user_source.override(...)`, and one that does not
implement it is refused.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiopg
from dependency_injector import containers, providers

from user_migration.adapters.dynamodb.budget_shares import DynamoDbBudgetShares
from user_migration.adapters.dynamodb.capacity import DynamoDbTableCapacity
from user_migration.adapters.dynamodb.client import DEFAULT_RETRIES, DEFAULT_TIMEOUT_SECONDS, dynamodb_client
from user_migration.adapters.dynamodb.codec import key_attribute_type
from user_migration.adapters.dynamodb.lease_writes import SYNC_LEASES, VERIFY_LEASES
from user_migration.adapters.dynamodb.leases import DynamoDbSegmentLeases
from user_migration.adapters.dynamodb.plan import PlanStore
from user_migration.adapters.dynamodb.state import DynamoDbMigrationState
from user_migration.adapters.dynamodb.sync_passes import DynamoDbSyncPasses
from user_migration.adapters.dynamodb.target import DynamoDbUserTarget
from user_migration.adapters.dynamodb.verify_results import DynamoDbVerifyResults
from user_migration.adapters.postgres.cdc import CaptureNames
from user_migration.adapters.postgres.replication import PostgresChangeStream
from user_migration.adapters.postgres.source import PostgresUserSource, create_pool
from user_migration.domain.budget.bucket import FLOOR_UNITS_PER_SECOND, TokenBucketBudget
from user_migration.domain.budget.upkeep import BudgetUpkeep
from user_migration.domain.convert.mapping import UserMapping, default_mapping
from user_migration.domain.convert.rules import UserPreparer
from user_migration.domain.migrate.migration import Migration
from user_migration.domain.migrate.run import DEFAULT_PAGES_IN_FLIGHT, MigrationRun
from user_migration.domain.observe.source_count import DEFAULT_REFRESH_SECONDS, CountMode, SourceCounter
from user_migration.domain.observe.stall_watch import StallWatch
from user_migration.domain.observe.statistics import Statistics
from user_migration.domain.parallel.leased_pass import DEFAULT_LEASE_SECONDS, LeasedPass
from user_migration.domain.parallel.migrate_worker import SegmentWorker, boundaries_from
from user_migration.domain.parallel.segments import FEWEST_USERS_PER_SEGMENT
from user_migration.domain.parallel.sync_worker import SyncWorker
from user_migration.domain.parallel.verify_worker import VerifyWorker
from user_migration.domain.sync.poll import ChangeSync
from user_migration.domain.sync.stream import StreamSync
from user_migration.domain.verify.differences import LatestVerification
from user_migration.domain.verify.verification import Verification
from user_migration.domain.write.changes import ChangeWrites
from user_migration.domain.write.ledger import WriteLedger
from user_migration.domain.write.range_locks import UserRangeLocks
from user_migration.domain.write.writes_in_flight import WritesInFlight
from user_migration.ports import BudgetShares, ChangeStream, MigrationState, TableCapacity, UserSource, UserTarget
from user_migration.ports.segment_leases import SegmentLeases
from user_migration.ports.sync_passes import SyncPasses
from user_migration.ports.verify_results import VerifyResults


async def postgres_pool(database_url: str, query_timeout: float) -> AsyncIterator[aiopg.Pool]:
    """The process's PostgreSQL pool, closed on shutdown."""
    pool = await create_pool(database_url, query_timeout=query_timeout)
    try:
        yield pool
    finally:
        pool.close()
        await pool.wait_closed()


async def dynamodb(
    endpoint_url: str | None,
    region_name: str | None,
    concurrency: int,
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    retries: int = DEFAULT_RETRIES,
    watch: StallWatch | None = None,
    patience_seconds: float = 0.0,
) -> AsyncIterator[Any]:
    """The process's DynamoDB client, closed on shutdown; enough connections for the batch
    reads and writes in flight (each up to `concurrency`) plus the state table's; its requests
    reported to the process's stall watch."""
    async with dynamodb_client(
        endpoint_url=endpoint_url,
        region_name=region_name,
        max_pool_connections=2 * concurrency + 8,
        timeout_seconds=timeout_seconds,
        retries=retries,
        watch=watch,
        patience_seconds=patience_seconds,
    ) as client:
        yield client


# --- The write budget -------------------------------------------------------------------------------------
budget_log = logging.getLogger("user_migration.write_budget")


def budget_kind(max_write_units: float | None, write_capacity_percent: float | None) -> str:
    """Which write budget the settings ask for: `limited` (units or a percentage) or `unlimited`."""
    return "limited" if max_write_units or write_capacity_percent else "unlimited"


async def unlimited_write_budget() -> AsyncIterator[TokenBucketBudget]:
    """A budget that only counts (no MAX_WRITE_UNITS, no WRITE_CAPACITY_PERCENT): nothing to keep current."""
    yield TokenBucketBudget()


def _budget_unavailable(action: str, error: Exception) -> None:
    budget_log.warning("write budget: %s failed (%s); the budget stays as it was and it is tried again", action, error)


async def running_write_budget(
    client: Any,
    shares: BudgetShares,
    capacity: TableCapacity,
    max_write_units: float | None,
    write_capacity_percent: float | None,
) -> AsyncIterator[TokenBucketBudget]:
    """The process's budget, its share and (for a percentage) the table's capacity kept current while it runs;
    on shutdown its share is withdrawn, so that the other processes take it at once.

    `client` is taken (not used) so that the container shuts the client down only after this has left.
    """
    del client
    budget = TokenBucketBudget(max_write_units or FLOOR_UNITS_PER_SECOND)
    percent = None if max_write_units else write_capacity_percent
    upkeep = BudgetUpkeep(budget, shares, capacity, percent, on_unavailable=_budget_unavailable)
    await upkeep.start()
    try:
        yield budget
    finally:
        await upkeep.stop()


# ----------------------------------------------------------------------------------------------------------


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
        default={
            "pages_in_flight": DEFAULT_PAGES_IN_FLIGHT,
            "offline_writes": False,
            "segments_in_flight": 1,
            "dynamodb_write_path": "auto",
            "hold_lease_seconds": 60.0,
            "segment_lease_seconds": DEFAULT_LEASE_SECONDS,
            "segment_min_users": FEWEST_USERS_PER_SEGMENT,
            "worker_name": None,
            "stats_refresh_seconds": DEFAULT_REFRESH_SECONDS,
            "stats_postgres_count": CountMode.EXACT.value,
            "cdc_slot": "user_migration",
            "cdc_publication": "user_migration",
            "dynamodb_timeout_seconds": DEFAULT_TIMEOUT_SECONDS,
            "dynamodb_retries": DEFAULT_RETRIES,
            "dependency_patience_seconds": 0.0,
        }
    )

    # What the source's rows mean: the mapping file's, or the documented layout.
    mapping = providers.Singleton(mapping_or_default, config.mapping)
    preparer = providers.Singleton(UserPreparer, mapping)

    postgres_pool = providers.Resource(
        postgres_pool, database_url=config.database_url, query_timeout=config.source_query_timeout
    )
    # Who waits on which dependency since when (the CLI says stalls out loud, /metrics counts the timeouts).
    stall_watch = providers.Singleton(StallWatch)
    dynamodb_client = providers.Resource(
        dynamodb,
        endpoint_url=config.dynamodb_endpoint_url,
        region_name=config.aws_region,
        concurrency=config.dynamodb_concurrency,
        timeout_seconds=config.dynamodb_timeout_seconds.as_float(),
        retries=config.dynamodb_retries.as_int(),
        watch=stall_watch,
        patience_seconds=config.dependency_patience_seconds.as_float(),
    )

    # --- The write budget: one per process, so the CLI's writes and the HTTP batch endpoint's spend from the
    # same one. Unlimited (no I/O at all) unless MAX_WRITE_UNITS or WRITE_CAPACITY_PERCENT is set.
    budget_shares = providers.Dependency(
        instance_of=BudgetShares,
        default=providers.Singleton(DynamoDbBudgetShares, client=dynamodb_client, table=config.dynamodb_state_table),
    )
    table_capacity = providers.Dependency(
        instance_of=TableCapacity,
        default=providers.Singleton(DynamoDbTableCapacity, client=dynamodb_client, table=config.dynamodb_table),
    )
    write_budget = providers.Selector(
        providers.Callable(budget_kind, config.max_write_units, config.write_capacity_percent),
        unlimited=providers.Resource(unlimited_write_budget),
        limited=providers.Resource(
            running_write_budget,
            client=dynamodb_client,
            shares=budget_shares,
            capacity=table_capacity,
            max_write_units=config.max_write_units,
            write_capacity_percent=config.write_capacity_percent,
        ),
    )
    # ---

    user_source = providers.Dependency(
        instance_of=UserSource,
        default=providers.Singleton(
            PostgresUserSource,
            pool=postgres_pool,
            mapping=mapping,
            watch=stall_watch,
            patience_seconds=config.dependency_patience_seconds.as_float(),
        ),
    )
    user_target = providers.Dependency(
        instance_of=UserTarget,
        default=providers.Singleton(
            DynamoDbUserTarget,
            client=dynamodb_client,
            table=config.dynamodb_table,
            concurrency=config.dynamodb_concurrency,
            key_attribute=mapping.provided.key_attribute,
            budget=write_budget,
            key_type=providers.Callable(key_attribute_type, mapping.provided.key_kind),
            write_path=config.dynamodb_write_path,
        ),
    )
    # The segments of the id space (made once, from the source's distribution of ids).
    segment_plans = providers.Singleton(
        PlanStore,
        client=dynamodb_client,
        table=config.dynamodb_state_table,
        propose=providers.Callable(boundaries_from, user_source, config.segment_min_users.as_int()),
        kind=mapping.provided.key_kind,
    )
    migration_state = providers.Dependency(
        instance_of=MigrationState,
        default=providers.Singleton(
            DynamoDbMigrationState,
            client=dynamodb_client,
            table=config.dynamodb_state_table,
            lease_seconds=config.hold_lease_seconds.as_float(),
            plans=segment_plans,
        ),
    )
    segment_leases = providers.Dependency(
        instance_of=SegmentLeases,
        default=providers.Singleton(
            DynamoDbSegmentLeases, client=dynamodb_client, table=config.dynamodb_state_table, plans=segment_plans
        ),
    )
    # Verify's passes lease the same segments, in attributes of their own.
    verify_leases = providers.Dependency(
        instance_of=SegmentLeases,
        default=providers.Singleton(
            DynamoDbSegmentLeases,
            client=dynamodb_client,
            table=config.dynamodb_state_table,
            plans=segment_plans,
            names=VERIFY_LEASES,
        ),
    )
    # And so do the passes of `sync --workers`.
    sync_leases = providers.Dependency(
        instance_of=SegmentLeases,
        default=providers.Singleton(
            DynamoDbSegmentLeases,
            client=dynamodb_client,
            table=config.dynamodb_state_table,
            plans=segment_plans,
            names=SYNC_LEASES,
        ),
    )

    range_locks = providers.Singleton(UserRangeLocks)
    writes_in_flight = providers.Singleton(WritesInFlight)
    # Every write of users (the backfill, the endpoint's batches, sync, the stream, verify's repair) goes
    # through a ledger over the same range locks and writes in flight.
    write_ledger = providers.Factory(
        WriteLedger, target=user_target, state=migration_state, locks=range_locks, in_flight=writes_in_flight
    )
    migration = providers.Factory(
        Migration,
        source=user_source,
        target=user_target,
        state=migration_state,
        ledger=write_ledger,
        preparer=preparer,
        offline=config.offline_writes.as_(bool),
    )
    change_writes = providers.Factory(ChangeWrites, ledger=write_ledger, preparer=preparer)
    migration_run = providers.Factory(
        MigrationRun,
        source=user_source,
        state=migration_state,
        migration=migration,
        pages_in_flight=config.pages_in_flight.as_int(),
    )
    segment_worker = providers.Factory(
        SegmentWorker,
        source=user_source,
        migration=migration,
        leased=providers.Factory(
            LeasedPass, segment_leases, config.worker_name, config.segment_lease_seconds.as_float()
        ),
        pages_in_flight=config.pages_in_flight.as_int(),
        segments_in_flight=config.segments_in_flight.as_int(),
    )
    # The source's count, kept for the statistics (renewed in the background by the HTTP app).
    source_counter = providers.Singleton(
        SourceCounter, source=user_source, refresh_seconds=config.stats_refresh_seconds.as_float()
    )
    statistics = providers.Factory(
        Statistics,
        counter=source_counter,
        state=migration_state,
        default=providers.Callable(CountMode, config.stats_postgres_count),
    )
    # The counts of the last verify in this process (run or HTTP page), read by the metrics.
    latest_verification = providers.Singleton(LatestVerification)
    verification = providers.Factory(
        Verification,
        source=user_source,
        target=user_target,
        state=migration_state,
        changes=change_writes,
        preparer=preparer,
        pages_in_flight=config.pages_in_flight.as_int(),
        latest=latest_verification,
    )
    verify_results = providers.Dependency(
        instance_of=VerifyResults,
        default=providers.Singleton(
            DynamoDbVerifyResults, client=dynamodb_client, table=config.dynamodb_state_table, plans=segment_plans
        ),
    )
    verify_worker = providers.Factory(
        VerifyWorker,
        verification=verification,
        results=verify_results,
        leased=providers.Factory(
            LeasedPass, verify_leases, config.worker_name, config.segment_lease_seconds.as_float()
        ),
    )
    change_sync = providers.Factory(
        ChangeSync,
        source=user_source,
        target=user_target,
        state=migration_state,
        changes=change_writes,
        versioned=providers.Callable(has_version, mapping),
        pages_in_flight=config.pages_in_flight.as_int(),
    )
    sync_passes = providers.Dependency(
        instance_of=SyncPasses,
        default=providers.Singleton(
            DynamoDbSyncPasses, client=dynamodb_client, table=config.dynamodb_state_table, plans=segment_plans
        ),
    )
    sync_worker = providers.Factory(
        SyncWorker,
        sync=change_sync,
        source=user_source,
        state=migration_state,
        passes=sync_passes,
        leased=providers.Factory(LeasedPass, sync_leases, config.worker_name, config.segment_lease_seconds.as_float()),
    )
    # Change data capture: the slot and publication of the users table, and the stream through them.
    capture_names = providers.Singleton(CaptureNames, slot=config.cdc_slot, publication=config.cdc_publication)
    change_stream = providers.Dependency(
        instance_of=ChangeStream,
        default=providers.Singleton(
            PostgresChangeStream, dsn=config.database_url, pool=postgres_pool, mapping=mapping, names=capture_names
        ),
    )
    stream_sync = providers.Factory(
        StreamSync,
        stream=change_stream,
        stream_name=config.cdc_slot,
        source=user_source,
        target=user_target,
        state=migration_state,
        changes=change_writes,
        change_sync=change_sync,
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
