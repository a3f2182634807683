"""`sync --workers`' passes in memory (unit tests and the test harness)."""

from __future__ import annotations

from user_migration.adapters.memory.segment_results import InMemorySegmentResults
from user_migration.ports.segment_leases import SegmentLeases
from user_migration.ports.sync_passes import SyncPass, SyncPasses


class InMemorySyncPasses(InMemorySegmentResults[int], SyncPasses):
    """The latest pass begun, and the segments' results, in memory."""

    def __init__(self, leases: SegmentLeases) -> None:
        super().__init__(leases)
        self._current: SyncPass | None = None

    async def begin(self, proposed: SyncPass) -> SyncPass:
        if self._current is None or self._current.number < proposed.number:
            self._current = proposed
        return self._current
