"""Verify results in memory (unit tests and the test harness)."""

from __future__ import annotations

import attrs

from domain.differences import VerifyCounts
from domain.segments import SegmentLease
from ports.segment_leases import SegmentLeases
from ports.verify_results import VerifyResults


class InMemoryVerifyResults(VerifyResults):
    """The results of verify passes, in a dict."""

    def __init__(self, leases: SegmentLeases) -> None:
        self._leases = leases  # the verify passes' leases, which a result is recorded under
        self._results: dict[int, tuple[int, VerifyCounts]] = {}

    async def record(self, lease: SegmentLease, counts: VerifyCounts) -> bool:
        if (await self._leases.leases())[lease.segment.index] != lease:
            return False  # lost: taken, renewed or finished by someone since
        self._results[lease.segment.index] = (lease.run, attrs.evolve(counts))
        return True

    async def read(self, verify_pass: int) -> dict[int, VerifyCounts]:
        return {
            index: attrs.evolve(counts)
            for index, (recorded, counts) in self._results.items()
            if recorded == verify_pass
        }
