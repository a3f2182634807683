"""Everything the people watching a migration look at, read at one moment: the dashboard's data.

The statistics, the pace, every segment with its state, the failing users by reason, the write
budget, the sync's lag and the latest verify, in one answer, so that a page showing it shows
numbers that belong together (and the same as `GET /m2/migration/stats` gave at that moment).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime

import attrs

from user_migration.domain.budget.bucket import BudgetSnapshot
from user_migration.domain.budget.shares import PublishedRate, is_live
from user_migration.domain.keys import UserId
from user_migration.domain.migrate.report import MigrationStats
from user_migration.domain.migrate.request import MAX_USER_ID
from user_migration.domain.model import MigrationProgress
from user_migration.domain.observe.progress_rate import Pace, ProgressRate
from user_migration.domain.observe.statistics import Statistics
from user_migration.domain.parallel.segments import SegmentLease, SegmentPlan
from user_migration.domain.verify.differences import LatestVerification, VerifyCounts
from user_migration.ports.migration_state import MigrationState
from user_migration.ports.segment_leases import SegmentLeases
from user_migration.ports.verify_results import VerifyResults
from user_migration.ports.write_budget import BudgetShares

# Ids shown for each reason (all of them are in the download).
EXAMPLES_PER_REASON = 5
SEGMENT_STATES = ("pending", "leased", "done", "failing")


@attrs.frozen
class SegmentCell:
    """One segment: ids `lowest..highest`, its state (`failing` when users of it are failing,
    else its lease's), its lease's state and the worker that owns it, the next id to read, how far
    that is through its ids (None for the last segment, open up to the largest id), and its
    failing users."""

    index: int
    lowest: UserId
    highest: UserId
    state: str
    lease: str
    owner: str | None
    next_user_id: UserId
    progress: float | None
    failing_users: int


@attrs.frozen
class SegmentsView:
    """The current run's segments, how many are in each state, and the lease takes and steals."""

    run: int
    counts: dict[str, int]
    lease_takes: int
    lease_steals: int
    cells: tuple[SegmentCell, ...]


@attrs.frozen
class ReasonView:
    """The users failing with one reason code, and the lowest few of their ids."""

    code: str
    users: int
    example_user_ids: tuple[UserId, ...]


@attrs.frozen
class FailuresView:
    """Every failing user, counted once, and by reason code (a user counts under each of its codes)."""

    failing_users: int
    by_reason: tuple[ReasonView, ...]


@attrs.frozen
class BudgetView:
    """The write budget of every process writing the table (None: unlimited), this process's share
    now, what this process spent and how often DynamoDB throttled it, and the rates the processes
    sharing the budget published (live ones)."""

    budget_units_per_second: float | None
    units_per_second: float | None
    units_spent: float
    throttled: int
    processes_sharing: int
    shared_units_per_second: float


@attrs.frozen
class SyncView:
    """How old the change cursor DynamoDB caught up to is (None before there is one), and the
    changes the sync applied."""

    lag_seconds: float | None
    cursor_taken_at: datetime | None
    changes_applied: int


@attrs.frozen
class VerifyView:
    """The latest verify this process ran (a whole run or a page)."""

    finished_at: datetime
    counts: VerifyCounts


@attrs.frozen
class VerifyPassView:
    """The current verify pass (`verify --workers`), as its segments' recorded results tell it,
    whichever processes ran it: how many segments are verified, and what they found together."""

    verify_pass: int
    segments: int
    segments_verified: int
    finished: bool
    counts: VerifyCounts


@attrs.frozen
class Overview:
    """The dashboard's data at `generated_at`."""

    generated_at: datetime
    stats: MigrationStats
    pace: Pace
    segments: SegmentsView
    failures: FailuresView
    write_budget: BudgetView
    sync: SyncView
    verify: VerifyView | None
    # None before any verify pass recorded a result.
    verify_pass: VerifyPassView | None = None


def verify_pass_view(verify_pass: int, segments: int, results: Mapping[int, VerifyCounts]) -> VerifyPassView | None:
    """The pass as its recorded results tell it (None for a first pass nothing was recorded of)."""
    if not results and verify_pass == 1:
        return None
    total = VerifyCounts.sum_of(results.values())
    return VerifyPassView(verify_pass, segments, len(results), len(results) >= segments, total)


def segment_cells(leases: Sequence[SegmentLease], failing: Mapping[UserId, object]) -> tuple[SegmentCell, ...]:
    """The leases as cells, with the failing users counted in the segment they fall in."""
    if not leases:
        return ()
    plan = SegmentPlan(tuple(lease.segment.lowest for lease in leases))
    failing_in = {index: len(ids) for index, ids in plan.group(failing).items()}
    cells = []
    for position, lease in enumerate(leases):
        segment = lease.segment
        # How far through its ids a segment is: by arithmetic on integer ids; a uuid or text segment
        # shows only whether it is done.
        through = 1.0
        bounded = False
        if isinstance(segment.lowest, int) and isinstance(segment.highest, int) and isinstance(lease.checkpoint, int):
            bounded = segment.highest < MAX_USER_ID
            span = segment.highest - segment.lowest + 1
            through = 1.0 if lease.done else (lease.checkpoint - segment.lowest) / span
        failing_here = failing_in.get(position, 0)
        cells.append(
            SegmentCell(
                segment.index,
                segment.lowest,
                segment.highest,
                "failing" if failing_here else lease.state,
                lease.state,
                lease.owner,
                lease.checkpoint,
                round(min(max(through, 0.0), 1.0), 3) if bounded or lease.done else None,
                failing_here,
            )
        )
    return tuple(cells)


def failures_view(failing: Mapping[UserId, Sequence[str]]) -> FailuresView:
    """The failing users by reason code, the most frequent first."""
    by_code: dict[str, list[UserId]] = {}
    for user_id in sorted(failing):
        for code in failing[user_id]:
            by_code.setdefault(code, []).append(user_id)
    ordered = sorted(by_code.items(), key=lambda entry: (-len(entry[1]), entry[0]))
    return FailuresView(
        len(failing),
        tuple(ReasonView(code, len(ids), tuple(ids[:EXAMPLES_PER_REASON])) for code, ids in ordered),
    )


def sync_view(progress: MigrationProgress, now: datetime) -> SyncView:
    """The sync's lag at `now`, from the change cursor of `progress`."""
    cursor = progress.change_cursor
    if cursor is None:
        return SyncView(None, None, progress.changes_applied)
    lag = max((now - cursor.taken_at).total_seconds(), 0.0)
    return SyncView(round(lag, 1), cursor.taken_at, progress.changes_applied)


def _utc_now() -> datetime:
    return datetime.now(UTC)


@attrs.define(eq=False, slots=False)
class MigrationOverview:
    """Reads the dashboard's data from the ports (all at once) and keeps the readings the pace is
    measured from: one per process, shared by whoever watches."""

    _statistics: Statistics
    _state: MigrationState
    _leases: SegmentLeases
    _shares: BudgetShares
    _budget: Callable[[], BudgetSnapshot | None]
    _latest_verification: LatestVerification
    _clock: Callable[[], datetime] = _utc_now
    _monotonic: Callable[[], float] = time.monotonic
    _verify_leases: SegmentLeases | None = None
    _verify_results: VerifyResults | None = None
    _rate: ProgressRate = attrs.field(init=False, factory=ProgressRate)

    async def read(self) -> Overview:
        """Everything, as it stands now."""
        (stats, progress), leases, activity, failing, rates, verify_pass = await asyncio.gather(
            self._statistics.read_with_progress(),
            self._leases.leases(),
            self._leases.activity(),
            self._state.failing_users(),
            self._shares.rates(),
            self._verify_pass(),
        )
        now = self._clock()
        cells = segment_cells(leases, failing)
        run = leases[0].run if leases else await self._leases.run_number()
        counts = {state: sum(cell.state == state for cell in cells) for state in SEGMENT_STATES}
        return Overview(
            generated_at=now,
            stats=stats,
            pace=self._rate.observe(self._monotonic(), stats.total_dynamo_users, stats.pending_migration),
            segments=SegmentsView(run, counts, activity.takes, activity.steals, cells),
            failures=failures_view(failing),
            write_budget=_budget_view(self._budget(), [r for r in rates if is_live(r, now.timestamp())]),
            sync=sync_view(progress, now),
            verify=self._verify_view(),
            verify_pass=verify_pass,
        )

    async def _verify_pass(self) -> VerifyPassView | None:
        if self._verify_leases is None or self._verify_results is None:
            return None
        verify_pass, plan = await asyncio.gather(self._verify_leases.run_number(), self._verify_leases.plan())
        return verify_pass_view(verify_pass, len(plan), await self._verify_results.read(verify_pass))

    def _verify_view(self) -> VerifyView | None:
        latest = self._latest_verification
        if latest.counts is None or latest.finished_at is None:
            return None
        return VerifyView(latest.finished_at, attrs.evolve(latest.counts))


def _budget_view(snapshot: BudgetSnapshot | None, live_rates: Sequence[PublishedRate]) -> BudgetView:
    spent = snapshot if snapshot is not None else BudgetSnapshot(0.0, 0, None, None)
    shared = sum(rate.units_per_second for rate in live_rates)
    return BudgetView(
        spent.budget,
        None if spent.units_per_second is None else round(spent.units_per_second, 1),
        round(spent.units_spent, 1),
        spent.throttled,
        len(live_rates),
        round(shared, 1),
    )
