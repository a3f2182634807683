"""`sync --workers`' passes in memory (unit tests and the test harness)."""

from __future__ import annotations

from user_migration.adapters.memory.segment_results import InMemorySegmentResults
from user_migration.domain.parallel.segments import SegmentLease
from user_migration.ports.segment_leases import SegmentLeases
from user_migration.ports.sync_passes import SyncPass, SyncPasses


class InMemorySyncPasses(SyncPasses):
    """The latest pass begun, and the segments' results, in memory."""

    def __init__(self, leases: SegmentLeases) -> None:
        self._current: SyncPass | None = None
        self._results: InMemorySegmentResults[int] = InMemorySegmentResults(leases)

    async def begin(self, proposed: SyncPass) -> SyncPass:
        if self._current is None or self._current.number < proposed.number:
            self._current = proposed
        return self._current

    async def record(self, lease: SegmentLease, applied: int) -> bool:
        return await self._results.record(lease, applied)

    async def applied(self, number: int) -> dict[int, int]:
        return await self._results.read(number)
