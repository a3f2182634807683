"""A worker of a run: takes segment leases one after the other and migrates each segment.

Every `migrate --all` process on the same tables is a worker of the same run. A worker takes a
free (or expired) segment (up to `segments_in_flight` of them side by side, each under its own
lease, sharing the worker's pages in flight), pumps its pages from the segment's checkpoint through the page engine,
and after each page records the checkpoint under its lease (which renews it); a background task
renews the lease between pages. A worker that could not renew in time stops writing before any
other worker could take the segment (`OwnLease.valid`, asked right before each write). Its summary
claims the pages it checkpointed and the pages in hand whose writes it settled before it found
its lease lost (the counters have them, and a next holder that reads them again finds them
stored): the workers' summaries add up to the users moved. What it wrote but did not settle is
counted once, in the counters, by the next holder of those ids (the holds' inheritance).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias

from user_migration.domain.engine.pump import PagePump
from user_migration.domain.errors import DependencyUnavailable
from user_migration.domain.keys import UserId
from user_migration.domain.migrate.migration import Migration, next_start_after
from user_migration.domain.migrate.report import BatchOutcome
from user_migration.domain.migrate.run import PageCheckpoints, ProgressCallback, RunSummary, RunTally
from user_migration.domain.model import SourceUser
from user_migration.domain.parallel.held_lease import HeldLease
from user_migration.domain.parallel.lease_loop import SegmentOutcome
from user_migration.domain.parallel.leased_pass import LeasedPass, LeasedPassSummary
from user_migration.domain.parallel.leases import OwnLease
from user_migration.domain.parallel.segments import (
    FEWEST_USERS_PER_SEGMENT,
    SegmentLease,
    resume_point,
    segments_for,
)
from user_migration.domain.write.ledger import Settle
from user_migration.ports.segment_leases import LeaseChange
from user_migration.ports.user_source import UserSource


class LeaseLost(Exception):
    """This worker may no longer write its segment: its lease could not be renewed in time."""


FENCED = BatchOutcome()  # a page whose writes the fence stopped

# What one worker did: the pages it checkpointed, and its leases.
WorkerSummary: TypeAlias = LeasedPassSummary[RunSummary, None]


class SegmentWorker:
    """Works on the run's segments until none is left (or `stop`)."""

    def __init__(
        self,
        source: UserSource,
        migration: Migration,
        leased: LeasedPass,
        prefetch_pages: int = 2,
        pages_in_flight: int = 2,
        segments_in_flight: int = 1,
    ) -> None:
        self._source = source
        self._pass = leased
        self._leases = leased.leases
        self._migration = migration
        self.worker = leased.worker
        # The pages in flight and read ahead are the worker's, shared by its segments in flight (at
        # least one each), so its memory does not grow with the segments it works side by side:
        # each segment's pump gets its part, and a page read and not yet migrated holds one of the
        # worker's turns (as many as one segment's pump holds pages, one a segment at least).
        self._prefetch = max(1, prefetch_pages // segments_in_flight)
        self._in_flight = max(1, pages_in_flight // segments_in_flight)
        self._segments_in_flight = segments_in_flight
        self._page_turns = (
            asyncio.Semaphore(max(prefetch_pages + pages_in_flight, segments_in_flight))
            if segments_in_flight > 1
            else None
        )

    async def run(
        self,
        batch_size: int,
        restart: bool = False,
        on_progress: ProgressCallback | None = None,
        stop: asyncio.Event | None = None,
    ) -> WorkerSummary:
        """Take and migrate segments until the run is finished, or only live leases of other
        workers (and segments this worker already failed on) are left."""
        await self._migration.mark_changes_from()
        await self._migration.look_whether_target_empty()
        tally = RunTally()

        async def work(own: OwnLease) -> SegmentOutcome:
            return await self._work_segment(own, batch_size, tally, on_progress, stop)

        leased = await self._pass.work(work, restart, stop, self._segments_in_flight)
        return self._pass.summary(
            leased, tally.summary(False, resume_point(leased.at_end), stopped_early=leased.stopped_early(stop))
        )

    async def _work_segment(
        self,
        own: OwnLease,
        batch_size: int,
        tally: RunTally,
        on_progress: ProgressCallback | None,
        stop: asyncio.Event | None,
    ) -> SegmentOutcome:
        """Migrate the segment from its checkpoint."""
        segment = own.lease.segment
        checkpoints = PageCheckpoints(self._source.key_kind)
        held = HeldLease(self._leases, own, self._pass.lease_seconds, self._pass.clock)

        def fence() -> None:
            if not held.still_valid():
                raise LeaseLost(f"the lease on segment {segment.index} ran out")

        turns = _PageTurns(self._page_turns)
        last_page: list[list[SourceUser]] = []  # the segment's last page, once read
        marked_done: list[bool] = []  # whether the last page's checkpoint marked the segment done
        pages = {"read": 0, "finished": 0}

        async def read_page(start: UserId) -> tuple[list[SourceUser], UserId | None]:
            await turns.take()  # given back once the page is migrated (or the segment ends)
            page = list(await self._source.read_page(start, batch_size, segment.highest))
            pages["read"] += 1
            following = next_start_after(page, batch_size, self._source.key_kind)
            within = following is not None and following <= segment.highest  # type: ignore[operator]  # one kind
            if not within:
                last_page.append(page)
            return page, following if within else None

        async def close_segment(settle: Settle) -> None:
            """The last page's settle (none of its writes failed), with the segment's done mark in
            the same write where the state keeps both in one item. The settle is made whatever
            becomes of the mark: a lease lost meanwhile leaves it to be made alone."""
            settled = False

            async def settle_and_mark(lease: SegmentLease) -> SegmentLease | None:
                nonlocal settled
                change = LeaseChange(lease, lease.checkpointed(segment.highest, done=True))
                await settle(change)
                settled = True
                if change.made is None:  # not folded: the done mark on its own
                    return await self._leases.checkpoint(lease, segment.highest, done=True)
                return change.wanted if change.made else None

            # Only once every earlier page is checkpointed, none short of a user: the done mark is
            # then what this page's checkpoint would be.
            if pages["finished"] == pages["read"] - 1 and checkpoints.first_unwritten is None:
                marked_done.append(await held.change(settle_and_mark))
            if not settled:
                await settle(None)

        async def migrate_page(page: list[SourceUser]) -> BatchOutcome:
            closing = close_segment if last_page and page is last_page[0] else None
            try:
                return await self._migration.migrate_users(page, False, fence=fence, closing=closing)
            except LeaseLost:
                return FENCED  # nothing written; the pages in hand still come to `finish`
            except DependencyUnavailable:
                if not held.still_valid():
                    # Stalled past its lease (its hold may have expired too): the page is the
                    # next holder's now, who inherits whatever this one left to settle.
                    return FENCED
                raise
            finally:
                turns.give_back()  # before `finish`, which waits for the next page to start

        async def finish(page: list[SourceUser], outcome: BatchOutcome) -> None:
            pages["finished"] += 1
            if not page:
                return
            if not held.lost.is_set():
                position = checkpoints.after(page, outcome)
                if last_page and page is last_page[0] and checkpoints.first_unwritten is None:
                    # The segment's last page, every user of it handled: its checkpoint is the done
                    # mark (made already when its settle carried it).
                    if not marked_done:
                        done = await held.change(
                            lambda lease: self._leases.checkpoint(lease, segment.highest, done=True)
                        )
                        marked_done.append(done)
                else:
                    await held.change(lambda lease: self._leases.checkpoint(lease, position))  # also renews
            progress = tally.add(outcome)
            if held.lost.is_set() and marked_done[:1] != [True]:
                # Done and settled (counted), but not checkpointed (or not known to be): the next
                # holder may read the page again, and finds its users stored. They are this worker's.
                # (Marked done, the segment is finished: nobody reads it again.)
                return
            if on_progress is not None:
                on_progress(progress)

        async with held.kept(stop):
            pump: PagePump[UserId, list[SourceUser], Any] = PagePump(
                read_page, migrate_page, finish, self._prefetch, self._in_flight
            )
            try:
                ended = await pump.run(own.lease.checkpoint, held.segment_stop)
            finally:
                turns.give_all_back()  # of pages read and never migrated (a stop, a failure)
        if marked_done:
            # Marked done under this lease (the table checked it), even when the answer came too
            # late to go on writing: nobody else took the segment before.
            return "done" if marked_done[0] else "lost"
        if held.lost.is_set():
            return "lost"
        if ended.stopped_early:
            await self._leases.release(own.lease)
            return "stopped"
        if checkpoints.first_unwritten is not None:
            await self._leases.release(own.lease)  # the checkpoint stays before the failed write
            return "failed"
        # Marked done under this lease (the table checked it), even when the answer came too
        # late to go on writing: nobody else took the segment before.
        done = await held.change(lambda lease: self._leases.checkpoint(lease, segment.highest, done=True))
        return "done" if done else "lost"


class _PageTurns:
    """One segment's share of its worker's page turns (none to share: a worker of one segment)."""

    def __init__(self, turns: asyncio.Semaphore | None) -> None:
        self._turns = turns
        self._held = 0

    async def take(self) -> None:
        if self._turns is not None:
            await self._turns.acquire()
            self._held += 1

    def give_back(self) -> None:
        if self._turns is not None and self._held:
            self._held -= 1
            self._turns.release()

    def give_all_back(self) -> None:
        while self._held:
            self.give_back()


def boundaries_from(
    source: UserSource, fewest_users: int = FEWEST_USERS_PER_SEGMENT
) -> Callable[[], Awaitable[list[UserId]]]:
    """What a plan store asks for the first plan: the source split into `segments_for` its size,
    none of fewer than `fewest_users` users."""

    async def propose() -> list[UserId]:
        return await source.segment_boundaries(segments_for(await source.count_users(), fewest_users))

    return propose
