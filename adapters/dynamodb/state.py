"""The migration's bookkeeping in its own DynamoDB table.

- `segments`: the plan (the segments' lowest ids) and the run number (`dynamodb_plan`);
- `segment#NNNNN`, one per segment: its holds, its counters (users migrated, the highest id,
  the failing users) and its lease (`dynamodb_leases`). Writers of different segments never touch
  the same item, so no item is hot however many workers run;
- `progress`: what is one per migration (the resume checkpoint of a single walk, the change
  cursor of `sync`), and the counters that versions before the segments kept there.

Statistics read the `progress` item and every segment's counters (a bounded number of items,
fetched together), never a scan.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Collection
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from user_migration.adapters.dynamodb.codec import decode_key, key_value
from user_migration.adapters.dynamodb.errors import error_code, target_errors
from user_migration.adapters.dynamodb.holds import PROGRESS_KEY, ProgressLedger, failing_of
from user_migration.adapters.dynamodb.plan import PlanStore, segment_key
from user_migration.adapters.dynamodb.segment_holds import WithEarlierLeftovers, has_leftovers, hold_across
from user_migration.adapters.dynamodb.tables import STATE_KEY_ATTRIBUTE, ensure_table_active
from user_migration.domain.keys import UserId
from user_migration.domain.model import ChangeCursor, MigrationProgress
from user_migration.domain.parallel.segments import SegmentPlan
from user_migration.ports.migration_state import MigrationState, UsersHold

BATCH_GET_KEYS = 100  # DynamoDB's limit per BatchGetItem


async def read_items(
    client: Any, table: str, keys: list[dict[str, Any]], projection: str, names: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """The items with these keys (consistent reads, 100 keys a request, the requests at once),
    only the attributes in `projection` (which may name attributes as in `names`); keys without an
    item are left out."""

    async def chunk(part: list[dict[str, Any]]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        request: dict[str, Any] = {
            table: {
                "Keys": part,
                "ConsistentRead": True,
                "ProjectionExpression": f"#key, {projection}",
                "ExpressionAttributeNames": {**(names or {}), "#key": STATE_KEY_ATTRIBUTE},
            }
        }
        pause = 0.02
        while request:
            response = await client.batch_get_item(RequestItems=request)
            found.extend(response.get("Responses", {}).get(table, []))
            request = response.get("UnprocessedKeys") or {}
            if request:
                await asyncio.sleep(pause)
                pause = min(pause * 2, 1.0)
        return found

    parts = [keys[first : first + BATCH_GET_KEYS] for first in range(0, len(keys), BATCH_GET_KEYS)]
    async with target_errors("reading the segments", table=table):
        results = await asyncio.gather(*(chunk(part) for part in parts))
    return [item for result in results for item in result]


def _number(item: dict[str, Any], name: str) -> int | None:
    value = item.get(name)
    return int(value["N"]) if value is not None else None


def _user_id(item: dict[str, Any], name: str) -> UserId | None:
    value = item.get(name)
    return decode_key(value) if value is not None else None


def _change_cursor(item: dict[str, Any]) -> ChangeCursor | None:
    position, taken_at = item.get("change_cursor"), item.get("change_cursor_taken_at")
    if position is None or taken_at is None:
        return None
    return ChangeCursor(position["S"], datetime.fromisoformat(taken_at["S"]))


class DynamoDbMigrationState(MigrationState):
    """Counters and holds per segment, what is one per migration in `progress` (see the module)."""

    def __init__(
        self,
        client: Any,
        table: str = "user_migration_state",
        lease_seconds: float = 60.0,
        plans: PlanStore | None = None,
    ) -> None:
        self._client = client
        self._table = table
        self._lease_seconds = lease_seconds
        self._plans = plans if plans is not None else PlanStore(client, table)
        self._ledgers: dict[UserId, ProgressLedger] = {}
        self._progress = ProgressLedger(client, table, lease_seconds=lease_seconds)
        # Whether `progress` holds what a version before the segments left unsettled (read once).
        self._earlier_leftovers: bool | None = None

    def _ledgers_of(self, plan: SegmentPlan) -> dict[UserId, ProgressLedger]:
        if not self._ledgers:
            self._ledgers = {
                segment.index: ProgressLedger(
                    self._client,
                    self._table,
                    lease_seconds=self._lease_seconds,
                    key=segment_key(segment.index),
                    first_item=functools.partial(self._plans.segment_items.take, segment.index),
                )
                for segment in plan
            }
        return self._ledgers

    def hold_users(
        self, lowest: UserId, highest: UserId, intend_if_untouched: Collection[UserId] = ()
    ) -> AbstractAsyncContextManager[UsersHold]:
        return self._hold(lowest, highest, intend_if_untouched)

    @asynccontextmanager
    async def _hold(
        self, lowest: UserId, highest: UserId, intend_if_untouched: Collection[UserId]
    ) -> AsyncIterator[UsersHold]:
        plan = await self._plans.plan()
        if self._earlier_leftovers is None:
            self._earlier_leftovers = has_leftovers((await self._progress.read())[0])
        if not self._earlier_leftovers:
            ledgers = self._ledgers_of(plan)
            async with hold_across(plan, ledgers, lowest, highest, intend_if_untouched) as hold:
                yield hold
            return
        async with (
            self._progress.hold(lowest, highest) as earlier,
            hold_across(plan, self._ledgers_of(plan), lowest, highest) as hold,
        ):
            yield WithEarlierLeftovers(hold, earlier)
        self._earlier_leftovers = has_leftovers((await self._progress.read())[0])

    async def check_ready(self) -> None:
        await ensure_table_active(self._client, self._table)

    async def record_checkpoint(self, resume_from_user_id: UserId) -> None:
        # Touches no attribute the holds use, so it needs no version check.
        async with target_errors("recording the checkpoint", table=self._table):
            await self._client.update_item(
                TableName=self._table,
                Key=PROGRESS_KEY,
                UpdateExpression="SET resume_from_user_id = :id",
                ExpressionAttributeValues={":id": key_value(resume_from_user_id)},
            )

    async def record_change_cursor(self, cursor: ChangeCursor, applied: int = 0) -> None:
        # Like the checkpoint: no attribute of the holds, so no version check.
        async with target_errors("recording the change cursor", table=self._table):
            await self._client.update_item(
                TableName=self._table,
                Key=PROGRESS_KEY,
                UpdateExpression="SET change_cursor = :position, change_cursor_taken_at = :taken_at "
                "ADD changes_applied :applied",
                ExpressionAttributeValues={
                    ":position": {"S": cursor.position},
                    ":taken_at": {"S": cursor.taken_at.isoformat()},
                    ":applied": {"N": str(applied)},
                },
            )

    async def record_sync_pass(self, sync_pass: int, cursor: ChangeCursor, applied: int) -> bool:
        async with target_errors("recording the change cursor", table=self._table):
            try:
                await self._client.update_item(
                    TableName=self._table,
                    Key=PROGRESS_KEY,
                    UpdateExpression="SET change_cursor = :position, change_cursor_taken_at = :taken_at, "
                    "sync_pass_recorded = :pass ADD changes_applied :applied",
                    # The pass's count added once, whichever of its workers sees it finished first.
                    ConditionExpression="attribute_not_exists(sync_pass_recorded) OR sync_pass_recorded < :pass",
                    ExpressionAttributeValues={
                        ":position": {"S": cursor.position},
                        ":taken_at": {"S": cursor.taken_at.isoformat()},
                        ":applied": {"N": str(applied)},
                        ":pass": {"N": str(sync_pass)},
                    },
                )
            except ClientError as error:
                if error_code(error) != "ConditionalCheckFailedException":
                    raise
                return False
        return True

    async def read_change_cursor(self) -> ChangeCursor | None:
        item, _ = await self._progress.read()
        return _change_cursor(item)

    async def read_progress(self) -> MigrationProgress:
        plan = await self._plans.plan()
        item, _ = await self._progress.read()
        segments = await read_items(
            self._client,
            self._table,
            [segment_key(segment.index) for segment in plan],
            "migrated_users, last_migrated_user_id, failed_count",
        )
        migrated = (_number(item, "migrated_users") or 0) + sum(_number(s, "migrated_users") or 0 for s in segments)
        highest = [n for n in (_user_id(s, "last_migrated_user_id") for s in [item, *segments]) if n is not None]
        return MigrationProgress(
            migrated_users=migrated,
            last_migrated_user_id=max(highest) if highest else None,
            resume_from_user_id=_user_id(item, "resume_from_user_id"),
            change_cursor=_change_cursor(item),
            changes_applied=_number(item, "changes_applied") or 0,
            failed_users=sum(_number(s, "failed_count") or 0 for s in segments),
        )

    async def failing_users(self) -> dict[UserId, tuple[str, ...]]:
        plan = await self._plans.plan()
        keys = [segment_key(segment.index) for segment in plan]
        segments = await read_items(self._client, self._table, keys, "failed, failed_reasons")
        return dict(sorted(item for segment in segments for item in failing_of(segment).items()))
