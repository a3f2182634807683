"""Verify results in memory (unit tests and the test harness)."""

from __future__ import annotations

from user_migration.adapters.memory.segment_results import InMemorySegmentResults
from user_migration.domain.verify.differences import VerifyCounts
from user_migration.ports.verify_results import VerifyResults


class InMemoryVerifyResults(InMemorySegmentResults[VerifyCounts], VerifyResults):
    """The results of verify passes, in a dict."""
