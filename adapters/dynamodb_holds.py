"""Holds on users across processes: leases on id buckets, kept in the state table.

Each user id falls in a bucket of 2**20 consecutive ids; holding users means holding their
buckets (usually one or two per page). A bucket is taken with one conditional UpdateItem (free,
expired, or ours), released with another, and taken in ascending order so two holders never wait
on each other in a circle. A lease expires on its own after `lease_seconds`, so a process that
died never blocks the others for long.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager
from typing import Any

from botocore.exceptions import ClientError

from adapters.dynamodb_errors import error_code, target_errors
from adapters.dynamodb_tables import STATE_KEY_ATTRIBUTE
from domain.errors import TargetUnavailable

BUCKET_BITS = 20


def buckets_of(user_ids: Collection[int]) -> list[int]:
    """The buckets these users fall in, ascending."""
    return sorted({user_id >> BUCKET_BITS for user_id in user_ids})


class BucketLeases:
    """Leases on id buckets in one DynamoDB table."""

    def __init__(self, client: Any, table: str, lease_seconds: float = 60.0, wait_seconds: float = 90.0) -> None:
        self._client = client
        self._table = table
        self._lease_seconds = lease_seconds
        self._wait_seconds = wait_seconds

    def _key(self, bucket: int) -> dict[str, Any]:
        return {STATE_KEY_ATTRIBUTE: {"S": f"hold#{bucket}"}}

    async def _try_take(self, bucket: int, holder: str) -> bool:
        now = time.time()
        async with target_errors("taking a hold on users"):
            try:
                await self._client.update_item(
                    TableName=self._table,
                    Key=self._key(bucket),
                    UpdateExpression="SET holder = :holder, expires_at = :expires",
                    ConditionExpression="attribute_not_exists(holder) OR expires_at < :now",
                    ExpressionAttributeValues={
                        ":holder": {"S": holder},
                        ":expires": {"N": f"{now + self._lease_seconds:.3f}"},
                        ":now": {"N": f"{now:.3f}"},
                    },
                )
            except ClientError as error:
                if error_code(error) == "ConditionalCheckFailedException":
                    return False
                raise
        return True

    async def _take(self, bucket: int, holder: str) -> None:
        deadline = time.monotonic() + self._wait_seconds
        pause = 0.02
        while not await self._try_take(bucket, holder):
            if time.monotonic() > deadline:
                raise TargetUnavailable(
                    f"users of id bucket {bucket} stayed held by another process for {self._wait_seconds:.0f}s"
                )
            await asyncio.sleep(random.uniform(pause / 2, pause))
            pause = min(pause * 2, 1.0)

    async def _release(self, bucket: int, holder: str) -> None:
        try:
            await self._client.update_item(
                TableName=self._table,
                Key=self._key(bucket),
                UpdateExpression="REMOVE holder, expires_at",
                ConditionExpression="holder = :holder",
                ExpressionAttributeValues={":holder": {"S": holder}},
            )
        except ClientError as error:
            if error_code(error) != "ConditionalCheckFailedException":  # expired and taken: not ours
                raise

    @asynccontextmanager
    async def hold(self, user_ids: Collection[int]) -> AsyncIterator[None]:
        """Hold the buckets of these users until exit."""
        holder = uuid.uuid4().hex  # one per hold: two holds of one process exclude each other too
        taken: list[int] = []
        try:
            for bucket in buckets_of(user_ids):
                await self._take(bucket, holder)
                taken.append(bucket)
            yield
        finally:
            # Released even when the work failed; a release that cannot reach DynamoDB leaves
            # the lease to expire.
            for bucket in reversed(taken):
                with contextlib.suppress(Exception):
                    await asyncio.shield(self._release(bucket, holder))
