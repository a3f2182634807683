"""A result per segment and pass, as JSON in one attribute of the segment's item, written under
the lease of that kind of pass (verify's, or `sync --workers`'), changing none of the lease's
attributes: what the workers of a shared pass leave for whoever sees it finished."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from user_migration.adapters.dynamodb.errors import error_code, target_errors
from user_migration.adapters.dynamodb.lease_writes import LeaseNames
from user_migration.adapters.dynamodb.plan import PlanStore, segment_key
from user_migration.adapters.dynamodb.state import read_items
from user_migration.adapters.dynamodb.tables import STATE_KEY_ATTRIBUTE
from user_migration.domain.parallel.segments import SegmentLease


class SegmentResultStore:
    """The results kept in `attribute`, under the leases named by `names`."""

    def __init__(self, client: Any, table: str, plans: PlanStore, names: LeaseNames, attribute: str) -> None:
        self._client = client
        self._table = table
        self._plans = plans
        self._names = names
        self._attribute = attribute

    async def record(self, lease: SegmentLease, result: dict[str, Any]) -> bool:
        """Keep `result` for the pass of `lease` while the lease is as its owner last saw it."""
        text = json.dumps({"pass": lease.run, **result}, sort_keys=True)
        names = self._names
        async with target_errors("recording a segment's result", table=self._table):
            try:
                await self._client.update_item(
                    TableName=self._table,
                    Key=segment_key(lease.segment.index),
                    UpdateExpression="SET #result = :result",
                    # Written under the lease, in the same item: a worker that lost it records nothing.
                    ConditionExpression=f"{names.owner} = :owner AND {names.counter} = :counter AND {names.run} = :run",
                    ExpressionAttributeNames={"#result": self._attribute},
                    ExpressionAttributeValues={
                        ":result": {"S": text},
                        ":owner": {"S": lease.owner or ""},
                        ":counter": {"N": str(lease.counter)},
                        ":run": {"N": str(lease.run)},
                    },
                )
            except ClientError as error:
                if error_code(error) != "ConditionalCheckFailedException":
                    raise
                # Lost, or this very write sent twice (its answer lost): the item tells which.
                return await self._recorded(lease, text)
        return True

    async def _recorded(self, lease: SegmentLease, text: str) -> bool:
        async with target_errors("reading a segment's result", table=self._table):
            response = await self._client.get_item(
                TableName=self._table, Key=segment_key(lease.segment.index), ConsistentRead=True
            )
        return bool(response.get("Item", {}).get(self._attribute, {}).get("S") == text)

    async def read(self, run: int) -> dict[int, dict[str, Any]]:
        """The results recorded in pass `run`, by segment index (without their `pass`)."""
        plan = await self._plans.plan()
        items = await read_items(self._client, self._table, [segment_key(s.index) for s in plan], self._attribute)
        results: dict[int, dict[str, Any]] = {}
        for item in items:
            if self._attribute not in item:
                continue
            stored = json.loads(item[self._attribute]["S"])
            if stored.pop("pass") == run:
                results[int(item[STATE_KEY_ATTRIBUTE]["S"].partition("#")[2])] = stored
        return results
