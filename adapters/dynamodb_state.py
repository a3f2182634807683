"""The migration's bookkeeping in its own DynamoDB table: one item, updated atomically."""

from __future__ import annotations

from collections.abc import Collection
from contextlib import AbstractAsyncContextManager
from typing import Any

from botocore.exceptions import ClientError

from adapters.dynamodb_errors import error_code, target_errors
from adapters.dynamodb_holds import BucketLeases
from adapters.dynamodb_tables import STATE_KEY_ATTRIBUTE, ensure_table_active
from domain.model import MigrationProgress
from ports.migration_state import MigrationState

_PROGRESS_KEY = {STATE_KEY_ATTRIBUTE: {"S": "progress"}}


class DynamoDbMigrationState(MigrationState):
    """Counters kept with UpdateItem ADD, so statistics cost one read instead of a scan."""

    def __init__(self, client: Any, table: str = "user_migration_state") -> None:
        self._client = client
        self._table = table
        self._leases = BucketLeases(client, table)

    def hold_users(self, user_ids: Collection[int]) -> AbstractAsyncContextManager[None]:
        return self._leases.hold(user_ids)

    async def record_written(self, count: int, highest_user_id: int) -> None:
        async with target_errors("recording progress"):
            await self._client.update_item(
                TableName=self._table,
                Key=_PROGRESS_KEY,
                UpdateExpression="ADD migrated_users :count",
                ExpressionAttributeValues={":count": {"N": str(count)}},
            )
            try:
                await self._client.update_item(
                    TableName=self._table,
                    Key=_PROGRESS_KEY,
                    UpdateExpression="SET last_migrated_user_id = :id",
                    ConditionExpression=("attribute_not_exists(last_migrated_user_id) OR last_migrated_user_id < :id"),
                    ExpressionAttributeValues={":id": {"N": str(highest_user_id)}},
                )
            except ClientError as error:
                # A higher id is recorded already: the highest id only ever rises.
                if error_code(error) != "ConditionalCheckFailedException":
                    raise

    async def record_checkpoint(self, resume_from_user_id: int) -> None:
        async with target_errors("recording the checkpoint"):
            await self._client.update_item(
                TableName=self._table,
                Key=_PROGRESS_KEY,
                UpdateExpression="SET resume_from_user_id = :id",
                ExpressionAttributeValues={":id": {"N": str(resume_from_user_id)}},
            )

    async def check_ready(self) -> None:
        await ensure_table_active(self._client, self._table)

    async def read_progress(self) -> MigrationProgress:
        async with target_errors("reading progress"):
            response = await self._client.get_item(TableName=self._table, Key=_PROGRESS_KEY, ConsistentRead=True)
        item = response.get("Item", {})
        last = item.get("last_migrated_user_id")
        resume = item.get("resume_from_user_id")
        return MigrationProgress(
            migrated_users=int(item.get("migrated_users", {"N": "0"})["N"]),
            last_migrated_user_id=int(last["N"]) if last is not None else None,
            resume_from_user_id=int(resume["N"]) if resume is not None else None,
        )
