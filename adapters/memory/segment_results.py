"""A result per segment and pass in memory, kept only under the segment's lease (unit tests
and the test harness; see `adapters.dynamodb.segment_results`)."""

from __future__ import annotations

import copy
from typing import Generic, TypeVar

from user_migration.domain.parallel.segments import SegmentLease
from user_migration.ports.segment_leases import SegmentLeases
from user_migration.ports.segment_results import SegmentResults

Result = TypeVar("Result")


class InMemorySegmentResults(SegmentResults[Result], Generic[Result]):
    """The latest result of each segment, with its pass."""

    def __init__(self, leases: SegmentLeases) -> None:
        self._leases = leases  # the leases of the kind of pass a result is recorded under
        self._results: dict[int, tuple[int, Result]] = {}

    async def record(self, lease: SegmentLease, result: Result) -> bool:
        if (await self._leases.leases())[lease.segment.index] != lease:
            return False  # lost: taken, renewed or finished by someone since
        self._results[lease.segment.index] = (lease.run, copy.copy(result))
        return True

    async def read(self, number: int) -> dict[int, Result]:
        return {index: copy.copy(result) for index, (recorded, result) in self._results.items() if recorded == number}
