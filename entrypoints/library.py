"""The in-process library: the migration for other Python services, without HTTP.

    async with UserMigration.from_env() as migration:
        report = await migration.migrate_batch(batch_size=100)

It returns the same typed reports the API serializes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from types import TracebackType

from user_migration.adapters.postgres.cdc import (
    CaptureNames,
    CaptureSetup,
    CaptureTeardown,
    change_capture_problems,
    set_up_change_capture,
    tear_down_change_capture,
)
from user_migration.container import Container, build_container, resolve
from user_migration.domain.budget.bucket import BudgetSnapshot, TokenBucketBudget
from user_migration.domain.convert.mapping import SourcePlan, UserMapping
from user_migration.domain.convert.rules import UserPreparer
from user_migration.domain.keys import KeyKind, UserId
from user_migration.domain.migrate.migration import Migration
from user_migration.domain.migrate.report import MigrationReport, MigrationStats
from user_migration.domain.migrate.request import (
    DEFAULT_BATCH_SIZE,
    MAX_BATCH_SIZE,
    BatchRequest,
    RunRequest,
    SingleUserRequest,
)
from user_migration.domain.migrate.run import MigrationRun, ProgressCallback, RunSummary
from user_migration.domain.model import ChangeCursor
from user_migration.domain.observe.source_count import CountMode
from user_migration.domain.observe.statistics import Statistics, count_mode
from user_migration.domain.parallel.migrate_worker import SegmentWorker, WorkerSummary
from user_migration.domain.parallel.sync_worker import SyncWorker, SyncWorkerSummary
from user_migration.domain.parallel.verify_worker import VerifyWorker, VerifyWorkerSummary
from user_migration.domain.sync.poll import ChangeSync, SyncSummary
from user_migration.domain.sync.request import FollowRequest, StreamRequest, SyncRequest
from user_migration.domain.sync.stream import StreamSummary, StreamSync, backfill_pending_mark
from user_migration.domain.verify.differences import VerifyPage, VerifySummary
from user_migration.domain.verify.request import VerifyPageRequest, VerifyRequest
from user_migration.domain.verify.verification import Verification
from user_migration.entrypoints.settings import load_settings
from user_migration.ports.segment_leases import SegmentLeases

WRITE_GRACE_SECONDS = 60.0


class UserMigration:
    """A wired migration; use it as an async context manager so its connections are closed."""

    def __init__(self, container: Container, check_tables: bool = True) -> None:
        self.container = container
        self._check_tables = check_tables
        self._migration: Migration | None = None
        self._run: MigrationRun | None = None
        self._sync: ChangeSync | None = None
        self._statistics: Statistics | None = None

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, mapping_file: str | None = None, check_tables: bool = True
    ) -> UserMigration:
        """Configured from the environment (see docs/configuration.md), with the mapping of `mapping_file`
        (or `MAPPING_FILE`); raises `ConfigurationError` listing every problem. With
        `check_tables=False` entering does not check the DynamoDB tables (only the source)."""
        settings = load_settings(environ, purpose="library", mapping_file=mapping_file)
        return cls(build_container(settings.container_config()), check_tables)

    async def __aenter__(self) -> UserMigration:
        self._migration = await resolve(self.container.migration())
        self._run = await resolve(self.container.migration_run())
        self._sync = await resolve(self.container.change_sync())
        self._statistics = await resolve(self.container.statistics())
        try:
            await self.check_setup()
        except BaseException:
            await resolve(self.container.shutdown_resources())
            raise
        return self

    async def check_setup(self) -> None:
        """Check the mapping against the source and that both DynamoDB tables exist: a mismatch
        raises `MappingError` / `TargetTableMissing` (the operator's to fix), an outage
        `DependencyUnavailable`. Called on entering; call again to re-check."""
        source = await resolve(self.container.user_source())
        await source.check_ready()
        if self._check_tables:
            target = await resolve(self.container.user_target())
            state = await resolve(self.container.migration_state())
            await target.check_ready()
            await state.check_ready()

    async def describe_source(self) -> SourcePlan:
        """Every source column with the attribute and type it becomes under the mapping."""
        source = await resolve(self.container.user_source())
        plan: SourcePlan = await source.describe()
        return plan

    @property
    def mapping(self) -> UserMapping:
        """The mapping in use."""
        mapping: UserMapping = self.container.mapping()
        return mapping

    @property
    def key_kind(self) -> KeyKind:
        """The kind of the source's key: user ids are ints for an integer key, strs for a uuid or text one."""
        return self.mapping.key_kind

    def preparer(self) -> UserPreparer:
        """The rules of the mapping, compiled (validates and prepares source users)."""
        preparer: UserPreparer = self.container.preparer()
        return preparer

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._migration = self._run = self._sync = None
        self._statistics = None
        # A write already started (shielded from cancellation) finishes and settles first.
        await self.container.writes_in_flight().wait(within_seconds=WRITE_GRACE_SECONDS)
        await resolve(self.container.shutdown_resources())

    @property
    def _use_case(self) -> Migration:
        if self._migration is None:
            raise RuntimeError("use `async with UserMigration...` before calling it")
        return self._migration

    @property
    def _change_sync(self) -> ChangeSync:
        if self._sync is None:
            raise RuntimeError("use `async with UserMigration...` before calling it")
        return self._sync

    @property
    def _whole_run(self) -> MigrationRun:
        if self._run is None:
            raise RuntimeError("use `async with UserMigration...` before calling it")
        return self._run

    async def migrate_batch(
        self,
        batch_size: int = DEFAULT_BATCH_SIZE,
        start_user_id: UserId | None = None,
        dry_run: bool = False,
        rewrite: bool = False,
    ) -> MigrationReport:
        """Migrate one page of users with ids from `start_user_id` upwards (`rewrite`: see `migrate_all`)."""
        start = self.key_kind.first if start_user_id is None else start_user_id
        return await self._use_case.migrate_batch(BatchRequest(start, batch_size, dry_run, rewrite))

    async def migrate_user(self, user_id: UserId, dry_run: bool = False, rewrite: bool = False) -> MigrationReport:
        """Migrate one user; raises `UserNotFound` when the source has no such user."""
        return await self._use_case.migrate_user(SingleUserRequest(user_id, dry_run, rewrite))

    async def stats(self, postgres_count: str | CountMode | None = None) -> MigrationStats:
        """The migration statistics. `postgres_count`: "exact" (the source's exact count as of the
        moment `total_postgres_users_as_of` states, taken now or reused for `STATS_REFRESH_SECONDS`)
        or "estimate" (the planner's, in constant time); default `STATS_POSTGRES_COUNT`."""
        if self._statistics is None:
            raise RuntimeError("use `async with UserMigration...` before calling it")
        return await self._statistics.read(count_mode(postgres_count))

    async def migrate_all(self, request: RunRequest | None = None) -> RunSummary:
        """Migrate the whole source as `request` says (`RunRequest`; by default from the beginning,
        `MAX_BATCH_SIZE` users a page), `PAGES_IN_FLIGHT` pages side by side (the next ones are read
        while these are written), progress and checkpoints in page order."""
        return await self._whole_run.migrate_all(request if request is not None else RunRequest())

    async def work(
        self,
        batch_size: int = MAX_BATCH_SIZE,
        restart: bool = False,
        on_progress: ProgressCallback | None = None,
        stop: asyncio.Event | None = None,
        worker: str | None = None,
    ) -> WorkerSummary:
        """Be a worker of the run over the whole source: take segments of the id space under
        leases, one after the other, until none is left (see `domain.parallel.migrate_worker`). Every process
        doing this on the same tables shares the run; a finished run is walked again only with
        `restart=True`."""
        if self._migration is None:
            raise RuntimeError("use UserMigration inside `async with`")
        segment_worker: SegmentWorker = await resolve(self.container.segment_worker())
        if worker is not None:
            segment_worker.worker = worker
        return await segment_worker.run(batch_size, restart, on_progress, stop)

    async def budget_snapshot(self) -> BudgetSnapshot:
        """What this process spent of the write budget so far, and may spend now."""
        budget: TokenBucketBudget = await resolve(self.container.write_budget())
        return budget.snapshot()

    async def restart_run(self) -> int:
        """Begin a new run over the whole source (unless another process just did): its number."""
        leases: SegmentLeases = await resolve(self.container.segment_leases())
        return await leases.restart(await leases.run_number())

    async def users_to_migrate(self, start_user_id: UserId | None = None) -> int:
        """How many source users have `id >= start_user_id` (the total of a progress display)."""
        return await self._whole_run.total_from(start_user_id)

    async def resume_point(self) -> UserId:
        """Where `migrate_all(resume=True)` would start."""
        return await self._whole_run.resume_point()

    async def retry_users(
        self,
        user_ids: Collection[UserId],
        dry_run: bool = False,
        on_progress: ProgressCallback | None = None,
        rewrite: bool = False,
    ) -> RunSummary:
        """Migrate exactly these users (e.g. an earlier run's failures, after fixing their rows)."""
        return await self._whole_run.retry(user_ids, dry_run, on_progress=on_progress, rewrite=rewrite)

    async def sync_once(self, request: SyncRequest | None = None) -> SyncSummary:
        """Carry every change committed in the source so far into the target (updated, inserted
        and deleted rows; see `domain.sync.poll`), never replacing an item newer than its row; the
        source's change cursor moves only when everything was carried over."""
        return await self._change_sync.catch_up(request if request is not None else SyncRequest())

    async def sync_follow(self, request: FollowRequest[SyncSummary]) -> SyncSummary:
        """`sync_once` again and again, `interval_seconds` apart, until `stop` is set; the totals.
        With `on_unavailable`, a pass that finds a dependency down is told to it and tried again
        after the interval; without, that error ends the follow."""
        return await self._change_sync.follow(request)

    async def sync_as_worker(self, request: SyncRequest | None = None) -> SyncWorkerSummary:
        """Be a worker of the current pass of `sync --workers`: take segments under leases of the
        passes' own and carry each one's changes and deletes (see `domain.parallel.sync_worker`); returns
        when the pass is finished (its cursor recorded once, by whichever worker saw it first)."""
        worker: SyncWorker = await resolve(self.container.sync_worker())
        return await worker.run_pass(request if request is not None else SyncRequest())

    async def sync_follow_as_worker(self, request: FollowRequest[SyncWorkerSummary]) -> SyncWorkerSummary:
        """`sync_as_worker` pass after pass, `interval_seconds` apart, until `stop`; the totals."""
        worker: SyncWorker = await resolve(self.container.sync_worker())
        return await worker.follow(request)

    async def stream_changes(self, request: StreamRequest) -> StreamSummary:
        """Stream the source's changes (the slot `cdc setup` made) into the target until `stop`
        is set: a backfill first when this slot's was not finished, then every committed
        transaction in commit order, acknowledged once stored (see `domain.sync.stream`)."""
        if self._sync is None:
            raise RuntimeError("use `async with UserMigration...` before calling it")
        stream_sync: StreamSync = await resolve(self.container.stream_sync())
        return await stream_sync.follow(request)

    async def change_capture_problems(self) -> list[str]:
        """Every setting and privilege change capture lacks on the source ([] when none)."""
        pool = await resolve(self.container.postgres_pool())
        return await change_capture_problems(pool, self.mapping, self._capture_names)

    async def set_up_change_capture(self) -> CaptureSetup:
        """Create the publication and the replication slot (a new slot's backfill is marked as
        still to do first); raises `SetupError` naming every missing setting or privilege."""
        pool = await resolve(self.container.postgres_pool())
        state = await resolve(self.container.migration_state())
        names = self._capture_names

        async def mark_backfill_pending() -> None:
            await state.record_change_cursor(ChangeCursor(backfill_pending_mark(names.slot), datetime.now(UTC)))

        return await set_up_change_capture(pool, self.mapping, names, mark_backfill_pending)

    async def tear_down_change_capture(self) -> CaptureTeardown:
        """Drop the replication slot and the publication, and check they are gone."""
        pool = await resolve(self.container.postgres_pool())
        return await tear_down_change_capture(pool, self._capture_names)

    @property
    def _capture_names(self) -> CaptureNames:
        names: CaptureNames = self.container.capture_names()
        return names

    async def _verification(self) -> Verification:
        if self._migration is None:  # its resources live inside `async with`
            raise RuntimeError("use `async with UserMigration...` before calling it")
        verification: Verification = await resolve(self.container.verification())
        return verification

    async def verify(self, request: VerifyRequest | None = None) -> VerifySummary:
        """Compare every row with an id in the request's range (through the mapping) with its item,
        and every item in that range with its row; each difference goes to `on_difference` once it
        was checked again (see `domain.verify.verification`). `repair=True` writes missing items,
        replaces different ones that are not newer than their row, deletes extra items this tool
        wrote, and checks each again. Raises `InvalidParameter` for a bad range."""
        verification = await self._verification()
        return await verification.verify(request if request is not None else VerifyRequest())

    async def verify_as_worker(
        self, request: VerifyRequest | None = None, restart: bool = False
    ) -> VerifyWorkerSummary:
        """Be a worker of the verify pass over the whole id space: take segments under leases of
        verify's own, and verify each one's rows and its part of the scan for extra items (see
        `domain.parallel.verify_worker`). Every process doing this on the same tables shares the pass; a
        finished pass is verified again only with `restart=True`."""
        await self._verification()  # inside `async with`
        worker: VerifyWorker = await resolve(self.container.verify_worker())
        return await worker.run(request if request is not None else VerifyRequest(), restart)

    async def restart_verify_pass(self) -> int:
        """Begin a new verify pass (unless another process just did): its number."""
        leases: SegmentLeases = await resolve(self.container.verify_leases())
        return await leases.restart(await leases.run_number())

    async def verify_page(
        self, start_user_id: UserId | None = None, batch_size: int = DEFAULT_BATCH_SIZE
    ) -> VerifyPage:
        """Verify one keyset page (as `GET /m2/migration/verify` does): its differences, counts and
        `next_start_user_id` (None at the end)."""
        verification = await self._verification()
        start = self.key_kind.first if start_user_id is None else start_user_id
        return await verification.verify_page(VerifyPageRequest(start, batch_size))

    async def users_to_verify(self, start_user_id: UserId | None = None, end_user_id: UserId | None = None) -> int:
        """How many source rows a verify of this range compares (the total of a progress display)."""
        verification = await self._verification()
        return await verification.users_to_verify(start_user_id, end_user_id)
