"""A whole migration run: every page of the source, one after the other, resumable.

The page engine (`domain.engine.pump`) reads the next pages while the current ones are being
written: at most `prefetch_pages` pages wait and `pages_in_flight` are migrated at once, so memory
stays flat however large the table is. After each page the run records a checkpoint: the id a later run may
resume from. The checkpoint never moves past a valid user that could not be written, so resuming
retries it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Sequence
from typing import Any

import attrs

from user_migration.domain.convert.rules import Reason
from user_migration.domain.engine.pump import PagePump
from user_migration.domain.keys import KeyKind, UserId
from user_migration.domain.migrate.migration import Migration, next_start_after
from user_migration.domain.migrate.report import BatchOutcome
from user_migration.domain.migrate.request import MAX_BATCH_SIZE, BatchRequest, RunRequest
from user_migration.domain.model import SourceUser
from user_migration.ports.migration_state import MigrationState
from user_migration.ports.user_source import UserSource

NOT_IN_SOURCE = Reason("not_in_source", "Not found in the source database")
# Enough to keep DynamoDB busy while a page is read, checked or accounted (see `make bench`).
DEFAULT_PAGES_IN_FLIGHT = 2
# Segments a worker of the offline mode migrates side by side (`SEGMENTS_IN_FLIGHT`): its batched
# requests are few and large, and one segment at a time leaves DynamoDB idle between its steps.
OFFLINE_SEGMENTS_IN_FLIGHT = 4


@attrs.frozen
class RunProgress:
    """Where a run stands, after each page: the counts so far."""

    users_read: int
    migrated: int
    skipped: int
    failed: int
    elapsed_seconds: float


@attrs.frozen
class RunSummary:
    """The outcome of a whole run, with every failed user and its reasons."""

    users_read: int
    migrated: int
    skipped: int
    failures: dict[UserId, tuple[str, ...]]
    dry_run: bool
    elapsed_seconds: float
    resume_from_user_id: UserId | None
    stopped_early: bool = False
    rewritten: int = 0
    # With a rewrite: stored items left as they were (someone else's, or changed), with the reason.
    kept: dict[UserId, str] = attrs.field(factory=dict)
    rewrite: bool = False

    @property
    def failed(self) -> int:
        """How many users could not be migrated."""
        return len(self.failures)


@attrs.define
class RunTally:
    started: float = attrs.Factory(time.perf_counter)
    users_read: int = 0
    migrated: int = 0
    skipped: int = 0
    failures: dict[UserId, tuple[str, ...]] = attrs.Factory(dict)
    rewritten: int = 0
    kept: dict[UserId, str] = attrs.Factory(dict)

    def add(self, outcome: BatchOutcome) -> RunProgress:
        self.users_read += outcome.read
        self.migrated += outcome.migrated
        self.skipped += outcome.skipped
        self.failures.update(outcome.failures)
        self.rewritten += outcome.rewritten
        self.kept.update(outcome.kept)
        return RunProgress(self.users_read, self.migrated, self.skipped, len(self.failures), self.elapsed())

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def summary(
        self, dry_run: bool, resume_from: UserId | None, stopped_early: bool = False, rewrite: bool = False
    ) -> RunSummary:
        failures = {user_id: self.failures[user_id] for user_id in sorted(self.failures)}
        return RunSummary(
            self.users_read,
            self.migrated,
            self.skipped,
            failures,
            dry_run,
            self.elapsed(),
            resume_from,
            stopped_early,
            self.rewritten,
            {user_id: self.kept[user_id] for user_id in sorted(self.kept)},
            rewrite,
        )


@attrs.define
class PageCheckpoints:
    """Where a run may resume, page after page: past the page, but never past a valid user
    whose write failed."""

    kind: KeyKind = KeyKind.INTEGER
    latest: UserId | None = None
    first_unwritten: UserId | None = None

    def after(self, page: Sequence[SourceUser], outcome: BatchOutcome) -> UserId:
        if outcome.write_failed:
            lowest = min(outcome.write_failed)
            if self.first_unwritten is None or lowest < self.first_unwritten:  # type: ignore[operator]
                self.first_unwritten = lowest
        if self.first_unwritten is not None:
            self.latest = self.first_unwritten
        else:
            following = self.kind.after(page[-1].id)
            self.latest = following if following is not None else self.kind.last
        return self.latest


ProgressCallback = Callable[[RunProgress], None]


@attrs.define(eq=False, slots=False)
class MigrationRun:
    """Runs the migration over the whole source, or over a list of user ids to retry."""

    _source: UserSource
    _state: MigrationState
    _migration: Migration
    _prefetch_pages: int = 2
    _pages_in_flight: int = DEFAULT_PAGES_IN_FLIGHT

    async def total_from(self, start_user_id: UserId | None) -> int:
        """How many users a run from `start_user_id` will read."""
        return await self._source.count_users(start_user_id)

    async def resume_point(self) -> UserId:
        """Where `--resume` starts: the recorded checkpoint, or the beginning."""
        progress = await self._state.read_progress()
        recorded = progress.resume_from_user_id
        return recorded if recorded is not None and recorded != 0 else self._source.key_kind.first

    async def migrate_all(self, request: RunRequest) -> RunSummary:
        """Migrate every user from the request's start (or its resume point), page after page (with
        `rewrite`, the items the migration wrote earlier are rewritten where nobody changed them).

        Up to `pages_in_flight` pages are migrated side by side (their id ranges never overlap),
        so that DynamoDB is kept busy while a page is checked, accounted or read; their outcomes
        are taken in page order, so progress and checkpoints advance as in a page-by-page run.
        Setting `stop` ends the run cleanly after the pages in hand, their checkpoints recorded.
        """
        kind = self._source.key_kind
        batch_size, dry_run, rewrite, on_progress = (
            request.batch_size,
            request.dry_run,
            request.rewrite,
            request.on_progress,
        )
        start = await self.resume_point() if request.resume else request.start_user_id
        start = kind.first if start is None else start
        BatchRequest(start, batch_size, dry_run, rewrite)  # checks the parameters
        if not dry_run:
            await self._migration.mark_changes_from()
        tally = RunTally()
        checkpoints = PageCheckpoints(kind)

        async def read_page(start: UserId) -> tuple[list[SourceUser], UserId | None]:
            page = list(await self._source.read_page(start, batch_size))
            return page, next_start_after(page, batch_size, self._source.key_kind)

        async def migrate_page(page: list[SourceUser]) -> BatchOutcome:
            return await self._migration.migrate_users(page, dry_run, rewrite)

        async def finish(page: list[SourceUser], outcome: BatchOutcome) -> None:
            if not dry_run and page:
                await self._state.record_checkpoint(checkpoints.after(page, outcome))
            progress = tally.add(outcome)
            if on_progress is not None:
                on_progress(progress)

        pump: PagePump[UserId, list[SourceUser], Any] = PagePump(
            read_page, migrate_page, finish, self._prefetch_pages, self._pages_in_flight
        )
        ended = await pump.run(start, request.stop)
        return tally.summary(dry_run, checkpoints.latest, stopped_early=ended.stopped_early, rewrite=rewrite)

    async def retry(
        self,
        user_ids: Collection[UserId],
        dry_run: bool = False,
        batch_size: int = MAX_BATCH_SIZE,
        on_progress: ProgressCallback | None = None,
        rewrite: bool = False,
    ) -> RunSummary:
        """Migrate exactly these users again (e.g. the failures of an earlier run, after fixing them)."""
        tally = RunTally()
        wanted = sorted(set(user_ids))
        for first in range(0, len(wanted), batch_size):
            chunk = wanted[first : first + batch_size]
            users = await self._source.read_users(chunk)
            outcome = await self._migration.migrate_users(users, dry_run, rewrite)
            found = {user.id for user in users}
            missing = {user_id: (NOT_IN_SOURCE,) for user_id in chunk if user_id not in found}
            progress = tally.add(attrs.evolve(outcome, failures={**outcome.failures, **missing}))
            if on_progress is not None:
                on_progress(progress)
        return tally.summary(dry_run, None, rewrite=rewrite)
