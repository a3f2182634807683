"""Whether a write of items that were absent must ask DynamoDB what it consumed.

DynamoDB charges a put of an item that did not exist the item's own write units (one per started KB,
`item_size.write_units_of`), plus a write to each secondary index that projects it. The offline
mode writes users found absent, so on a table without secondary indexes its charge is known before
the request goes, and the request does not ask for `ReturnConsumedCapacity`: the budget is debited
that charge, as `spending.units_consumed` does for an answer without a figure. On DynamoDB Local
the question is not free: answering `ReturnConsumedCapacity="TOTAL"` on `BatchWriteItem`s of 25
cost its server a quarter to a half more CPU per item, and the same bare client 17 to 42% of its
items a second (docs/benchmark.md, "What the server spends").

A table with a secondary index, or one that could not be described, is asked (the index's writes
are only known to DynamoDB). The description is read again every `every_seconds`, so an index
created while a run goes on is counted from then on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from user_migration.adapters.dynamodb.spending import CONSUMED_CAPACITY

log = logging.getLogger(__name__)
LOOK_AGAIN_SECONDS = 300.0


def has_secondary_indexes(table: Mapping[str, Any]) -> bool:
    """Whether a DescribeTable answer's `Table` has a global or local secondary index."""
    return bool(table.get("GlobalSecondaryIndexes") or table.get("LocalSecondaryIndexes"))


def _arguments_for(table: Mapping[str, Any]) -> Mapping[str, str]:
    return CONSUMED_CAPACITY if has_secondary_indexes(table) else {}


class KnownCharge:
    """The `ReturnConsumedCapacity` argument of a write of absent items to one table."""

    def __init__(
        self,
        client: Any,
        table: str,
        every_seconds: float = LOOK_AGAIN_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._table = table
        self._every = every_seconds
        self._clock = clock
        self._asking: Mapping[str, str] = CONSUMED_CAPACITY
        self._next_look: float | None = None
        self._looking = asyncio.Lock()

    def seen(self, table: Mapping[str, Any]) -> None:
        """A DescribeTable answer's `Table` that someone else read: it counts as this period's look."""
        self._asking = _arguments_for(table)
        self._next_look = self._clock() + self._every

    async def arguments(self) -> Mapping[str, str]:
        """Nothing where the table has no secondary index; otherwise `ReturnConsumedCapacity="TOTAL"`."""
        if self._next_look is not None and self._clock() < self._next_look:
            return self._asking
        async with self._looking:
            if self._next_look is None or self._clock() >= self._next_look:
                self._asking = await self._look()
                self._next_look = self._clock() + self._every
        return self._asking

    async def _look(self) -> Mapping[str, str]:
        try:
            description = await self._client.describe_table(TableName=self._table)
        except (ClientError, BotoCoreError, OSError, TimeoutError) as error:
            # The write itself will meet the same trouble, or not: either way it asks DynamoDB.
            log.debug("describing %s failed (%s): writes ask DynamoDB what they consumed", self._table, error)
            return CONSUMED_CAPACITY
        return _arguments_for(description.get("Table", {}))
