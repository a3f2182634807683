"""Verify results on the segments' items of the state table (`verify_result`: the pass and its
counts as JSON), beside the segments' leases and counters, changing none of theirs."""

from __future__ import annotations

from typing import Any

import attrs

from user_migration.adapters.dynamodb.lease_writes import VERIFY_LEASES
from user_migration.adapters.dynamodb.plan import PlanStore
from user_migration.adapters.dynamodb.segment_results import SegmentResultStore
from user_migration.domain.parallel.segments import SegmentLease
from user_migration.domain.verify.differences import VerifyCounts
from user_migration.ports.verify_results import VerifyResults

RESULT_ATTRIBUTE = "verify_result"


class DynamoDbVerifyResults(VerifyResults):
    """The results of verify passes, one attribute on each segment's item."""

    def __init__(self, client: Any, table: str, plans: PlanStore) -> None:
        self._store = SegmentResultStore(client, table, plans, VERIFY_LEASES, RESULT_ATTRIBUTE)

    async def record(self, lease: SegmentLease, result: VerifyCounts) -> bool:
        return await self._store.record(lease, {"counts": attrs.asdict(result)})

    async def read(self, number: int) -> dict[int, VerifyCounts]:
        stored = await self._store.read(number)
        return {index: VerifyCounts(**result["counts"]) for index, result in stored.items()}
