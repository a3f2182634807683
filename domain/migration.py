"""The migration use cases, written against the ports only."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import attrs

from domain.conversion import Rejection, prepare_user
from domain.errors import UserNotFound
from domain.model import User, UserItem
from domain.range_locks import UserRangeLocks
from domain.report import MigrationReport, MigrationStats
from domain.request import MAX_USER_ID, BatchRequest, MigrationRequest, SingleUserRequest
from domain.validation import failure_text
from ports.migration_state import MigrationState
from ports.user_source import UserSource
from ports.user_target import UserTarget


def _utc_now() -> datetime:
    return datetime.now(UTC)


@attrs.frozen
class _Outcome:
    migrated: int
    skipped: int
    failures: dict[int, str]


class Migration:
    """Moves users from a source to a target: a batch, a single user, or the statistics.

    Existing items are never overwritten: users already in the target are skipped. Work on
    overlapping id ranges is serialized within the process, so no user is written twice and the
    counters stay exact. A dry run reads, validates and checks existence, and writes nothing.
    """

    def __init__(
        self,
        source: UserSource,
        target: UserTarget,
        state: MigrationState,
        locks: UserRangeLocks | None = None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._source = source
        self._target = target
        self._state = state
        self._locks = locks if locks is not None else UserRangeLocks()
        self._clock = clock

    async def run(self, request: MigrationRequest) -> MigrationReport:
        """Carry out a planned request of either kind."""
        if isinstance(request, SingleUserRequest):
            return await self.migrate_user(request)
        return await self.migrate_batch(request)

    async def migrate_batch(self, request: BatchRequest) -> MigrationReport:
        """Migrate one keyset page: `id >= start_user_id ORDER BY id LIMIT batch_size`."""
        started = time.perf_counter()
        users = await self._source.read_page(request.start_user_id, request.batch_size)
        outcome = await self._migrate(users, request.dry_run)
        next_start = None
        if len(users) == request.batch_size and users[-1].id < MAX_USER_ID:
            next_start = users[-1].id + 1
        return self._report(outcome, next_start, request.dry_run, started)

    async def migrate_user(self, request: SingleUserRequest) -> MigrationReport:
        """Migrate one user by id; raises `UserNotFound` when the source has no such user."""
        started = time.perf_counter()
        user = await self._source.read_user(request.user_id)
        if user is None:
            raise UserNotFound(request.user_id)
        outcome = await self._migrate([user], request.dry_run)
        return self._report(outcome, None, request.dry_run, started)

    async def statistics(self) -> MigrationStats:
        """Totals on both sides, from one count on the source and one read of the counters."""
        total_postgres = await self._source.count_users()
        progress = await self._state.read_progress()
        return MigrationStats(
            total_postgres_users=total_postgres,
            total_dynamo_users=progress.migrated_users,
            pending_migration=max(total_postgres - progress.migrated_users, 0),
            last_migrated_user_id=progress.last_migrated_user_id,
        )

    async def _migrate(self, users: Sequence[User], dry_run: bool) -> _Outcome:
        migrated_at = self._clock()
        failures: dict[int, str] = {}
        items: list[UserItem] = []
        for user in users:
            prepared = prepare_user(user, migrated_at)
            if isinstance(prepared, Rejection):
                failures[user.id] = failure_text(user.id, list(prepared.reasons))
            else:
                items.append(prepared)
        if not items:
            return _Outcome(0, 0, failures)
        if dry_run:
            existing = await self._target.existing_user_ids([item.user_id for item in items])
            return _Outcome(len(items) - len(existing), len(existing), failures)
        user_ids = [item.user_id for item in items]
        async with self._locks.hold(min(user_ids), max(user_ids)):
            existing = await self._target.existing_user_ids(user_ids)
            to_write = [item for item in items if item.user_id not in existing]
            written = await self._target.write_users(to_write) if to_write else None
            if written is not None and written.written:
                await self._state.record_written(len(written.written), max(written.written))
        if written is not None:
            for user_id, reason in written.failed.items():
                failures[user_id] = failure_text(user_id, [f"Write failed: {reason}"])
        return _Outcome(len(written.written) if written else 0, len(existing), failures)

    def _report(self, outcome: _Outcome, next_start: int | None, dry_run: bool, started: float) -> MigrationReport:
        failed_ids = sorted(outcome.failures)
        return MigrationReport(
            migrated_count=outcome.migrated,
            skipped_count=outcome.skipped,
            failed_count=len(failed_ids),
            failed_user_ids=failed_ids,
            errors=[outcome.failures[user_id] for user_id in failed_ids],
            next_start_user_id=next_start,
            dry_run=dry_run,
            processing_time_ms=round((time.perf_counter() - started) * 1000),
        )
