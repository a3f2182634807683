"""`sync --workers`' passes in the state table: each pass's cursors on the plan item
(`sync_pass`, `sync_since`, `sync_cursor`, `sync_cursor_taken_at`), written once by the pass's
first worker, and what each segment applied on the segment's item (`sync_result`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from user_migration.adapters.dynamodb.errors import error_code, target_errors
from user_migration.adapters.dynamodb.lease_writes import SYNC_LEASES
from user_migration.adapters.dynamodb.plan import PLAN_KEY, PlanStore
from user_migration.adapters.dynamodb.segment_results import SegmentResultStore
from user_migration.domain.model import ChangeCursor
from user_migration.domain.parallel.segments import SegmentLease
from user_migration.ports.sync_passes import SyncPass, SyncPasses

RESULT_ATTRIBUTE = "sync_result"


class DynamoDbSyncPasses(SyncPasses):
    """The passes of `sync --workers` over one pair of tables."""

    def __init__(self, client: Any, table: str, plans: PlanStore) -> None:
        self._client = client
        self._table = table
        self._store = SegmentResultStore(client, table, plans, SYNC_LEASES, RESULT_ATTRIBUTE)

    async def begin(self, proposed: SyncPass) -> SyncPass:
        values: dict[str, Any] = {
            ":pass": {"N": str(proposed.number)},
            ":cursor": {"S": proposed.cursor.position},
            ":taken_at": {"S": proposed.cursor.taken_at.isoformat()},
        }
        update = "SET sync_pass = :pass, sync_cursor = :cursor, sync_cursor_taken_at = :taken_at"
        if proposed.since is None:
            update += " REMOVE sync_since"
        else:
            update += ", sync_since = :since"
            values[":since"] = {"S": proposed.since}
        async with target_errors("beginning a sync pass", table=self._table):
            try:
                await self._client.update_item(
                    TableName=self._table,
                    Key=PLAN_KEY,
                    UpdateExpression=update,
                    # Only the pass's first worker writes it: every other one carries the same.
                    ConditionExpression="attribute_not_exists(sync_pass) OR sync_pass < :pass",
                    ExpressionAttributeValues=values,
                )
            except ClientError as error:
                if error_code(error) != "ConditionalCheckFailedException":
                    raise
                return await self._stored()
        return proposed

    async def _stored(self) -> SyncPass:
        async with target_errors("reading a sync pass", table=self._table):
            response = await self._client.get_item(TableName=self._table, Key=PLAN_KEY, ConsistentRead=True)
        item = response["Item"]  # the condition failed: the pass is there
        return SyncPass(
            int(item["sync_pass"]["N"]),
            item["sync_since"]["S"] if "sync_since" in item else None,
            ChangeCursor(item["sync_cursor"]["S"], datetime.fromisoformat(item["sync_cursor_taken_at"]["S"])),
        )

    async def record(self, lease: SegmentLease, result: int) -> bool:
        return await self._store.record(lease, {"applied": result})

    async def read(self, number: int) -> dict[int, int]:
        return {index: int(result["applied"]) for index, result in (await self._store.read(number)).items()}
