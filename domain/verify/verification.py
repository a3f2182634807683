"""`verify`: does the target hold what the source holds? Every source row in a range, through
the mapping's rules, compared with its item; then every stored id in the range looked up among
the rows (a keys-only scan), for items whose row does not exist.

Both passes run on the page engine (`domain.engine.pump`): pages read ahead, a few checked side
by side, outcomes in page order, so memory stays flat at any table size: differences go to the
caller's callback as they are found, and only their counts are kept. Each difference is checked
again before it is reported (`domain.verify.step`). The HTTP page verifies one keyset page and
probes its id gaps for extra items instead of scanning the table; its last page scans the table
for the ids above its rows only when the table is small (`UserTarget.scan_user_ids_of_small_table`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import attrs

from user_migration.domain.convert.rules import UserPreparer
from user_migration.domain.engine.pump import PagePump, next_scanned_page
from user_migration.domain.keys import KeyKind, UserId
from user_migration.domain.migrate.migration import next_start_after
from user_migration.domain.model import SourceUser
from user_migration.domain.parallel.segments import ScanPart
from user_migration.domain.verify.differences import (
    Difference,
    LatestVerification,
    VerifyCounts,
    VerifyPage,
    VerifyProgress,
    VerifySummary,
)
from user_migration.domain.verify.request import VerifyPageRequest, VerifyRange, VerifyRequest
from user_migration.domain.verify.step import Findings, VerifyStep
from user_migration.domain.write.changes import ChangeWrites
from user_migration.ports.migration_state import MigrationState
from user_migration.ports.user_source import UserSource
from user_migration.ports.user_target import UserTarget

# Stored ids a page of the scan for extra items holds.
SCAN_PAGE_SIZE = 1000
# An HTTP page probes an id gap for extra items when it holds at most this many page sizes of ids.
GAP_PROBE_PAGES = 10

DifferenceCallback = Callable[[Difference], None]
VerifyProgressCallback = Callable[[VerifyProgress], None]


def _utc_now() -> datetime:
    return datetime.now(UTC)


@attrs.define
class _Tally:
    started: float = attrs.Factory(time.perf_counter)
    counts: VerifyCounts = attrs.Factory(VerifyCounts)
    scanned: int = 0

    def add(self, findings: Findings) -> VerifyProgress:
        self.counts.include(findings.counts)
        self.scanned += findings.scanned
        failing = self.counts.failing
        return VerifyProgress(self.counts.checked, self.scanned, failing, self.elapsed())

    def elapsed(self) -> float:
        return time.perf_counter() - self.started


class Verification:
    """Verifies the target against the source: a whole id range, or one page at a time."""

    def __init__(
        self,
        source: UserSource,
        target: UserTarget,
        state: MigrationState,
        changes: ChangeWrites,
        preparer: UserPreparer | None = None,
        clock: Callable[[], datetime] = _utc_now,
        prefetch_pages: int = 2,
        pages_in_flight: int = 2,
        scan_page_size: int = SCAN_PAGE_SIZE,
        latest: LatestVerification | None = None,
    ) -> None:
        self._source = source
        self._target = target
        self._state = state
        self._step = VerifyStep(source, target, changes, preparer or UserPreparer(), clock)
        self._clock = clock
        self._prefetch_pages = prefetch_pages
        self._pages_in_flight = pages_in_flight
        self._scan_page_size = scan_page_size
        self.latest = latest if latest is not None else LatestVerification()

    @property
    def key_kind(self) -> KeyKind:
        """The kind of the source's key (how ids of a request are read)."""
        return self._source.key_kind

    async def users_to_verify(self, start_user_id: UserId | None = None, end_user_id: UserId | None = None) -> int:
        """How many source rows a verify of this range compares (the total of a progress display)."""
        kind = self._source.key_kind
        start = kind.first if start_user_id is None else start_user_id
        following = None if end_user_id is None else kind.after(end_user_id)
        beyond = await self._source.count_users(following) if following is not None else 0
        return await self._source.count_users(start) - beyond

    async def verify(self, request: VerifyRequest, extras_in: ScanPart | None = None) -> VerifySummary:
        """Verify every row and every stored item with an id in `start_user_id..end_user_id`.

        Each difference goes to `on_difference` (in id order within a page, pages in order);
        with `repair`, missing and different items are fixed under the rule that never
        overwrites newer data, extra items the migration wrote are deleted, and each difference
        arrives with whether it is gone now. Setting `stop` ends the run after the pages in hand.

        With `extras_in`, the rows are those of the range, but the search for extra items is that
        part of a scan of the whole target (every id, in or out of the range): how the workers of
        a verify pass split both searches (`domain.parallel.verify_worker`).
        """
        kind, batch_size, repair = self._source.key_kind, request.batch_size, request.repair
        on_difference, on_progress, stop = request.on_difference, request.on_progress, request.stop
        start = kind.first if request.start_user_id is None else request.start_user_id
        wanted = VerifyRange(start, kind.last if request.end_user_id is None else request.end_user_id, batch_size)
        scanned = wanted if extras_in is None else VerifyRange(kind.first, kind.last, batch_size)
        tally = _Tally()

        async def finish(page: Sequence[object], findings: Findings) -> None:
            if not page:  # the end of a source or of a scan: nothing to tell
                return
            progress = tally.add(findings)
            if on_difference is not None:
                for difference in findings.differences:
                    on_difference(difference)
            if on_progress is not None:
                on_progress(progress)

        async def read_rows(start: UserId) -> tuple[list[SourceUser], UserId | None]:
            page = list(await self._source.read_page(start, batch_size))
            following = next_start_after(page, batch_size, self._source.key_kind)
            end = wanted.end_user_id
            if following is not None and following > end:  # type: ignore[operator]  # ids of one kind
                following = None
            return [row for row in page if row.id <= end], following  # type: ignore[operator]

        async def check_rows(rows: list[SourceUser]) -> Findings:
            return await self._step.rows(rows, repair)

        rows_pump: PagePump[UserId, list[SourceUser], Any] = PagePump(
            read_rows, check_rows, finish, self._prefetch_pages, self._pages_in_flight
        )
        stopped = (await rows_pump.run(wanted.start_user_id, stop)).stopped_early
        if not stopped:
            stopped = await self._scan_for_extras(scanned, repair, finish, stop, extras_in)
        if extras_in is None:  # a pass's part is not a verify of its own (its worker records the pass)
            self.latest.record(tally.counts, self._clock())
        return VerifySummary(attrs.evolve(tally.counts), repair, tally.elapsed(), stopped)

    def record_latest(self, counts: VerifyCounts) -> None:
        """Keep `counts` as this process's latest verify (a pass's worker, once it ended)."""
        self.latest.record(counts, self._clock())

    async def _scan_for_extras(
        self,
        wanted: VerifyRange,
        repair: bool,
        finish: Callable[[Sequence[object], Findings], Awaitable[None]],
        stop: asyncio.Event | None,
        part: ScanPart | None = None,
    ) -> bool:
        """The second pass: every stored id in the range (of `part`), a scan page at a time; True
        when `stop` ended it."""
        scan = self._target.scan_user_ids(wanted.start_user_id, wanted.end_user_id, self._scan_page_size, part)

        async def check_ids(user_ids: list[UserId]) -> Findings:
            return await self._step.stored_ids(user_ids, repair)

        pump = PagePump(next_scanned_page, check_ids, finish, self._prefetch_pages, self._pages_in_flight)
        try:
            return (await pump.run(scan, stop)).stopped_early
        finally:
            close = getattr(scan, "aclose", None)
            if close is not None:  # a scan left early releases its connection now
                await close()

    async def verify_page(self, request: VerifyPageRequest) -> VerifyPage:
        """Verify one keyset page of rows, and look for extra items among the ids it answers for:
        its id gaps are probed, each when it holds at most `GAP_PROBE_PAGES` page sizes of ids; on
        the last page every id above its rows is searched by a scan of the target, when the target
        holds at most that many items (else the ids up to the highest one the migration wrote are
        probed, as a gap). `extra_checked` says whether all of it was searched,
        `extra_checked_above` (last page only) whether the ids above were."""
        rows = list(await self._source.read_page(request.start_user_id, request.batch_size))
        following = next_start_after(rows, request.batch_size, self._source.key_kind)
        found = await self._step.rows(rows)
        cap = GAP_PROBE_PAGES * request.batch_size
        gaps = [(request.start_user_id, rows[-1].id)] if rows else []
        above: list[UserId] | None = None
        kind = self._source.key_kind
        if following is None:  # the last page answers for every id above its rows too
            after = kind.after(rows[-1].id) if rows else request.start_user_id
            above = [] if after is None else await self._target.scan_user_ids_of_small_table(after, kind.last, cap)
            if above is None and after is not None:  # too many items to scan: up to the highest id written
                highest = (await self._state.read_progress()).last_migrated_user_id
                if highest is not None and highest >= after:  # type: ignore[operator]  # ids of one kind
                    gaps.append((after, highest))
        row_ids = {row.id for row in rows}
        probed: list[UserId] = []
        extra_checked = following is not None or above is not None
        found_in_gaps: set[UserId] = set()
        for lowest, highest in gaps:
            if isinstance(lowest, int) and isinstance(highest, int):
                inside = sum(1 for user_id in row_ids if isinstance(user_id, int) and lowest <= user_id <= highest)
                if highest - lowest + 1 - inside > cap:
                    extra_checked = False
                    continue
                probed.extend(user_id for user_id in range(lowest, highest + 1) if user_id not in row_ids)
                continue
            # Uuid and text ids cannot be counted out between two ids: a gap is searched by a scan
            # of the target, when the target is small enough.
            gap_ids = await self._target.scan_user_ids_of_small_table(lowest, highest, cap)
            if gap_ids is None:
                extra_checked = False
                continue
            found_in_gaps.update(user_id for user_id in gap_ids if user_id not in row_ids)
        stored = await self._target.existing_user_ids(probed) if probed else set()
        stored.update(found_in_gaps)
        stored.update(above or ())
        extras = await self._step.stored_ids(stored) if stored else Findings()
        counts = attrs.evolve(found.counts)
        counts.include(extras.counts)
        differences = tuple(sorted(found.differences + extras.differences, key=lambda difference: difference.user_id))
        self.latest.record(counts, self._clock())
        checked_above = None if following is not None else above is not None
        return VerifyPage(differences, counts, following, extra_checked, checked_above)
