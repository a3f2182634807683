"""What each segment of a verify pass found, kept beside the segments: the verdict of a pass that
several workers shared is the sum of its segments' results, readable by any of them."""

from __future__ import annotations

import abc

from user_migration.domain.parallel.segments import SegmentLease
from user_migration.domain.verify.differences import VerifyCounts


class VerifyResults(abc.ABC):
    """The counts each segment's verify found, per pass."""

    @abc.abstractmethod
    async def record(self, lease: SegmentLease, counts: VerifyCounts) -> bool:
        """Keep what verifying the segment of `lease` found in its pass (replacing an earlier
        pass's), only while `lease` is still as its owner last saw it; False when it is not (the
        lease was lost: nothing recorded)."""

    @abc.abstractmethod
    async def read(self, verify_pass: int) -> dict[int, VerifyCounts]:
        """The recorded results of `verify_pass`, by segment index (segments without one left out)."""
