"""The migration's bookkeeping in its own DynamoDB table: one `progress` item (see dynamodb_holds)."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any

from adapters.dynamodb_errors import target_errors
from adapters.dynamodb_holds import PROGRESS_KEY, ProgressLedger
from adapters.dynamodb_tables import ensure_table_active
from domain.model import ChangeCursor, MigrationProgress
from ports.migration_state import MigrationState, UsersHold


class DynamoDbMigrationState(MigrationState):
    """Counters, checkpoint and holds in one item: statistics cost one read, not a scan."""

    def __init__(self, client: Any, table: str = "user_migration_state", lease_seconds: float = 60.0) -> None:
        self._client = client
        self._table = table
        self._ledger = ProgressLedger(client, table, lease_seconds=lease_seconds)

    def hold_users(self, lowest: int, highest: int) -> AbstractAsyncContextManager[UsersHold]:
        return self._ledger.hold(lowest, highest)

    async def check_ready(self) -> None:
        await ensure_table_active(self._client, self._table)

    async def record_checkpoint(self, resume_from_user_id: int) -> None:
        # Touches no attribute the holds use, so it needs no version check.
        async with target_errors("recording the checkpoint", table=self._table):
            await self._client.update_item(
                TableName=self._table,
                Key=PROGRESS_KEY,
                UpdateExpression="SET resume_from_user_id = :id",
                ExpressionAttributeValues={":id": {"N": str(resume_from_user_id)}},
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

    async def read_progress(self) -> MigrationProgress:
        item, _ = await self._ledger.read()
        last = item.get("last_migrated_user_id")
        resume = item.get("resume_from_user_id")
        position, taken_at = item.get("change_cursor"), item.get("change_cursor_taken_at")
        cursor = (
            ChangeCursor(position["S"], datetime.fromisoformat(taken_at["S"]))
            if position is not None and taken_at is not None
            else None
        )
        return MigrationProgress(
            migrated_users=int(item.get("migrated_users", {"N": "0"})["N"]),
            last_migrated_user_id=int(last["N"]) if last is not None else None,
            resume_from_user_id=int(resume["N"]) if resume is not None else None,
            change_cursor=cursor,
            changes_applied=int(item.get("changes_applied", {"N": "0"})["N"]),
        )
