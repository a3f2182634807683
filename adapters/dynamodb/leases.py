"""Segment leases in the state table, on each segment's own item (`segment#NNNNN`), beside its
holds and counters but in attributes of their own (`lease_*`), changed only by conditional
updates on `lease_counter`, which every change raises by one (the KCL's lease table; see
`ports.segment_leases`). A change whose answer was lost and which botocore sent again fails its
condition the second time; it is then read back: the lease as this change would have left it
means the first one applied.
"""

from __future__ import annotations

from typing import Any

import attrs
from botocore.exceptions import ClientError

from user_migration.adapters.dynamodb.errors import error_code, target_errors
from user_migration.adapters.dynamodb.lease_writes import MIGRATION_LEASES, LeaseNames, lease_in, lease_write
from user_migration.adapters.dynamodb.plan import PLAN_KEY, PlanStore, run_of, segment_key
from user_migration.adapters.dynamodb.state import read_items
from user_migration.adapters.dynamodb.tables import STATE_KEY_ATTRIBUTE
from user_migration.domain.keys import UserId
from user_migration.domain.parallel.segments import SegmentLease, SegmentPlan
from user_migration.ports.segment_leases import LeaseActivity, SegmentLeases


class DynamoDbSegmentLeases(SegmentLeases):
    """The lease table of a run, in the migration's state table."""

    def __init__(self, client: Any, table: str, plans: PlanStore, names: LeaseNames = MIGRATION_LEASES) -> None:
        self._client = client
        self._table = table
        self._plans = plans
        self._names = names

    async def plan(self) -> SegmentPlan:
        return await self._plans.plan()

    async def run_number(self) -> int:
        return await self._plans.run_number(self._names.run_attribute)

    async def restart(self, seen_run: int) -> int:
        return await self._plans.restart(seen_run, self._names.run_attribute)

    async def leases(self) -> list[SegmentLease]:
        plan = await self.plan()
        # The run number is read with the leases, from the plan's item, in the same consistent reads.
        keys = [PLAN_KEY, *(segment_key(s.index) for s in plan)]
        projection = f"{self._names.fields}, #run"
        items = await read_items(self._client, self._table, keys, projection, {"#run": self._names.run_attribute})
        planned = [item for item in items if item[STATE_KEY_ATTRIBUTE] == PLAN_KEY[STATE_KEY_ATTRIBUTE]]
        run = run_of(planned[0] if planned else None, self._names.run_attribute)
        items = [item for item in items if item[STATE_KEY_ATTRIBUTE] != PLAN_KEY[STATE_KEY_ATTRIBUTE]]
        by_index = {int(item[STATE_KEY_ATTRIBUTE]["S"].partition("#")[2]): item for item in items}
        return [lease_in(segment, run, by_index.get(segment.index), self._names) for segment in plan]

    async def _read(self, lease: SegmentLease) -> SegmentLease:
        async with target_errors("reading a segment lease", table=self._table):
            response = await self._client.get_item(
                TableName=self._table, Key=segment_key(lease.segment.index), ConsistentRead=True
            )
        return lease_in(lease.segment, lease.run, response.get("Item"), self._names)

    async def _change(
        self, seen: SegmentLease, wanted: SegmentLease, owned: bool, stolen: bool | None = None
    ) -> SegmentLease | None:
        """Move the lease from `seen` to `wanted` (counter + 1) if it is still as seen; with
        `owned`, only while `seen.owner` owns it in `seen.run`. A take (`stolen` not None) is
        added to the segment's tallies in the same write."""
        names = self._names
        write = lease_write(seen, wanted, owned, stolen, names)
        update, condition, values = write.update(), write.condition, write.values
        # A migration's take gets the whole item back for the segment's ledger (verify's and sync's
        # passes hold fewer pages, and their items would only be kept).
        returned = {"ReturnValues": "ALL_NEW"} if stolen is not None and names is MIGRATION_LEASES else {}
        async with target_errors("changing a segment lease", table=self._table):
            try:
                response = await self._client.update_item(
                    TableName=self._table,
                    Key=segment_key(seen.segment.index),
                    UpdateExpression=update,
                    ConditionExpression=condition,
                    ExpressionAttributeValues=values,
                    **returned,
                )
            except ClientError as error:
                if error_code(error) != "ConditionalCheckFailedException":
                    raise
                # Changed by someone else, or by this very change sent twice (its answer lost).
                return wanted if await self._read(seen) == wanted else None
        if "Attributes" in response:
            # A take's answer is the whole item: the segment's ledger starts from it (no read).
            self._plans.segment_items.note(seen.segment.index, response["Attributes"])
        return wanted

    async def take(self, lease: SegmentLease, worker: str) -> SegmentLease | None:
        wanted = attrs.evolve(lease, owner=worker, counter=lease.counter + 1)
        return await self._change(lease, wanted, owned=False, stolen=lease.owner not in (None, worker))

    async def renew(self, lease: SegmentLease) -> SegmentLease | None:
        return await self._change(lease, attrs.evolve(lease, counter=lease.counter + 1), owned=True)

    async def checkpoint(self, lease: SegmentLease, next_user_id: UserId, done: bool = False) -> SegmentLease | None:
        return await self._change(lease, lease.checkpointed(next_user_id, done), owned=True)

    async def release(self, lease: SegmentLease) -> None:
        await self._change(lease, attrs.evolve(lease, counter=lease.counter + 1, owner=None), owned=True)

    async def activity(self) -> LeaseActivity:
        plan = await self.plan()
        names = self._names
        keys = [segment_key(s.index) for s in plan]
        items = await read_items(self._client, self._table, keys, f"{names.takes}, {names.steals}")
        return LeaseActivity(
            sum(int(item.get(names.takes, {"N": "0"})["N"]) for item in items),
            sum(int(item.get(names.steals, {"N": "0"})["N"]) for item in items),
        )
