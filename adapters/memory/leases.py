"""Segment leases in memory: the lease table's rules (see `ports.segment_leases`) for workers of
one process, e.g. in unit tests and the test harness."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import attrs

from user_migration.domain.keys import KeyKind, UserId
from user_migration.domain.parallel.segments import SegmentLease, SegmentPlan
from user_migration.ports.segment_leases import LeaseActivity, SegmentLeases


class InMemorySegmentLeases(SegmentLeases):
    """Leases kept in a dict; the plan from `propose` (boundaries), made at first use."""

    def __init__(
        self, propose: Callable[[], Awaitable[Sequence[UserId]]] | None = None, kind: KeyKind = KeyKind.INTEGER
    ) -> None:
        self._propose = propose
        self._kind = kind
        self._plan: SegmentPlan | None = None
        self._run = 1
        self._stored: dict[int, SegmentLease] = {}
        self._activity = LeaseActivity()

    async def boundaries(self) -> list[UserId]:
        """The boundaries of this plan (making it first): leases of another kind on the same segments."""
        return (await self.plan()).samples()

    async def plan(self) -> SegmentPlan:
        if self._plan is None:
            samples = await self._propose() if self._propose is not None else []
            self._plan = SegmentPlan.from_samples(samples, self._kind)
        return self._plan

    async def run_number(self) -> int:
        return self._run

    async def restart(self, seen_run: int) -> int:
        if self._run == seen_run:
            self._run += 1
        return self._run

    def _current(self, index: int, plan: SegmentPlan) -> SegmentLease:
        stored = self._stored.get(index)
        if stored is None or stored.run != self._run:
            return SegmentLease(plan[index], self._run, None, stored.counter if stored is not None else 0)
        return stored

    async def leases(self) -> list[SegmentLease]:
        plan = await self.plan()
        return [self._current(segment.index, plan) for segment in plan]

    def _change(self, seen: SegmentLease, wanted: SegmentLease, owned: bool) -> SegmentLease | None:
        current = self._current(seen.segment.index, self._plan or SegmentPlan((0,)))
        if current.counter != seen.counter or current.run != seen.run:
            return None
        if owned and current.owner != seen.owner:
            return None
        self._stored[seen.segment.index] = wanted
        return wanted

    async def take(self, lease: SegmentLease, worker: str) -> SegmentLease | None:
        taken = self._change(lease, attrs.evolve(lease, owner=worker, counter=lease.counter + 1), owned=False)
        if taken is not None:
            stolen = lease.owner not in (None, worker)
            self._activity = LeaseActivity(self._activity.takes + 1, self._activity.steals + stolen)
        return taken

    async def activity(self) -> LeaseActivity:
        return self._activity

    async def renew(self, lease: SegmentLease) -> SegmentLease | None:
        return self._change(lease, attrs.evolve(lease, counter=lease.counter + 1), owned=True)

    async def checkpoint(self, lease: SegmentLease, next_user_id: UserId, done: bool = False) -> SegmentLease | None:
        return self._change(lease, lease.checkpointed(next_user_id, done), owned=True)

    async def release(self, lease: SegmentLease) -> None:
        self._change(lease, attrs.evolve(lease, counter=lease.counter + 1, owner=None), owned=True)
