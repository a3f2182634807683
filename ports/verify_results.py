"""What each segment of a verify pass found: its counts (`ports.segment_results`)."""

from __future__ import annotations

import abc

from user_migration.domain.verify.differences import VerifyCounts
from user_migration.ports.segment_results import SegmentResults


class VerifyResults(SegmentResults[VerifyCounts], abc.ABC):
    """The counts each segment's verify found, per pass."""
