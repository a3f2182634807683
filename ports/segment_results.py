"""What each segment of a shared pass found or did, kept beside the segments under their leases:
the result of a pass that several workers shared is the sum of its segments' results, readable by
any of them. Verify passes keep their counts this way, and `sync --workers` passes what they applied."""

from __future__ import annotations

import abc
from typing import Generic, TypeVar

from user_migration.domain.parallel.segments import SegmentLease

Result = TypeVar("Result")


class SegmentResults(abc.ABC, Generic[Result]):
    """A result per segment and pass."""

    @abc.abstractmethod
    async def record(self, lease: SegmentLease, result: Result) -> bool:
        """Keep the result of the segment of `lease` in its pass (replacing an earlier pass's), only
        while `lease` is still as its owner last saw it; False when it is not (the lease was lost:
        nothing recorded)."""

    @abc.abstractmethod
    async def read(self, number: int) -> dict[int, Result]:
        """The results recorded in pass `number`, by segment index (segments without one left out)."""
