"""Verify results in memory (unit tests and the test harness)."""

from __future__ import annotations

from user_migration.adapters.memory.segment_results import InMemorySegmentResults
from user_migration.domain.parallel.segments import SegmentLease
from user_migration.domain.verify.differences import VerifyCounts
from user_migration.ports.segment_leases import SegmentLeases
from user_migration.ports.verify_results import VerifyResults


class InMemoryVerifyResults(VerifyResults):
    """The results of verify passes, in a dict."""

    def __init__(self, leases: SegmentLeases) -> None:
        self._store: InMemorySegmentResults[VerifyCounts] = InMemorySegmentResults(leases)

    async def record(self, lease: SegmentLease, counts: VerifyCounts) -> bool:
        return await self._store.record(lease, counts)

    async def read(self, verify_pass: int) -> dict[int, VerifyCounts]:
        return await self._store.read(verify_pass)
