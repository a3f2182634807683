"""Verify results on the segments' items of the state table (`verify_result`: the pass and its
counts as JSON), beside the segments' leases and counters, changing none of theirs."""

from __future__ import annotations

import json
from typing import Any

import attrs
from botocore.exceptions import ClientError

from adapters.dynamodb_errors import error_code, target_errors
from adapters.dynamodb_leases import VERIFY_LEASES
from adapters.dynamodb_plan import PlanStore, segment_key
from adapters.dynamodb_state import read_items
from adapters.dynamodb_tables import STATE_KEY_ATTRIBUTE
from domain.differences import VerifyCounts
from domain.segments import SegmentLease
from ports.verify_results import VerifyResults

RESULT_ATTRIBUTE = "verify_result"


class DynamoDbVerifyResults(VerifyResults):
    """The results of verify passes, one attribute on each segment's item."""

    def __init__(self, client: Any, table: str, plans: PlanStore) -> None:
        self._client = client
        self._table = table
        self._plans = plans

    async def record(self, lease: SegmentLease, counts: VerifyCounts) -> bool:
        text = json.dumps({"pass": lease.run, "counts": attrs.asdict(counts)})
        names = VERIFY_LEASES
        async with target_errors("recording a verify result", table=self._table):
            try:
                await self._client.update_item(
                    TableName=self._table,
                    Key=segment_key(lease.segment.index),
                    UpdateExpression="SET #result = :result",
                    # Written under the lease, in the same item: a worker that lost it records nothing.
                    ConditionExpression=f"{names.owner} = :owner AND {names.counter} = :counter AND {names.run} = :run",
                    ExpressionAttributeNames={"#result": RESULT_ATTRIBUTE},
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
        async with target_errors("reading a verify result", table=self._table):
            response = await self._client.get_item(
                TableName=self._table, Key=segment_key(lease.segment.index), ConsistentRead=True
            )
        return bool(response.get("Item", {}).get(RESULT_ATTRIBUTE, {}).get("S") == text)

    async def read(self, verify_pass: int) -> dict[int, VerifyCounts]:
        plan = await self._plans.plan()
        items = await read_items(self._client, self._table, [segment_key(s.index) for s in plan], RESULT_ATTRIBUTE)
        results: dict[int, VerifyCounts] = {}
        for item in items:
            if RESULT_ATTRIBUTE not in item:
                continue
            stored = json.loads(item[RESULT_ATTRIBUTE]["S"])
            if stored["pass"] == verify_pass:
                index = int(item[STATE_KEY_ATTRIBUTE]["S"].partition("#")[2])
                results[index] = VerifyCounts(**stored["counts"])
        return results
