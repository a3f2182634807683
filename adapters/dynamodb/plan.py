"""The segment plan in the state table: one `segments` item with the segments' lowest ids and
the number of the current run. Made once, by whoever needs it first (a conditional put: all
processes agree on the first one written), and never changed, since the counters kept per
segment must go on meaning the same ids."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import attrs
from botocore.exceptions import ClientError

from user_migration.adapters.dynamodb.errors import error_code, target_errors
from user_migration.adapters.dynamodb.segment_items import SegmentItems
from user_migration.adapters.dynamodb.tables import STATE_KEY_ATTRIBUTE
from user_migration.domain.errors import SetupError, TargetUnavailable
from user_migration.domain.keys import KeyKind, UserId
from user_migration.domain.parallel.segments import SegmentPlan

PLAN_KEY = {STATE_KEY_ATTRIBUTE: {"S": "segments"}}
Propose = Callable[[], Awaitable[Sequence[UserId]]]
# A plan's item stays well below DynamoDB's 400 KB for an item, whatever the length of text ids.
MOST_PLAN_BYTES = 300_000


def segment_key(index: int) -> dict[str, Any]:
    """The key of a segment's item: its holds, counters and lease."""
    return {STATE_KEY_ATTRIBUTE: {"S": f"segment#{index:05d}"}}


def _fitting(samples: list[UserId]) -> list[UserId]:
    """The samples, every other one dropped until their plan fits in one item (only long text ids need it)."""
    while len(samples) > 1 and sum(len(str(sample).encode("utf-8", "surrogatepass")) + 8 for sample in samples) > (
        MOST_PLAN_BYTES
    ):
        samples = samples[1::2]
    return samples


def _starts(plan: SegmentPlan) -> dict[str, Any]:
    if plan.kind is KeyKind.INTEGER:
        return {"starts": {"S": ",".join(str(start) for start in plan.starts)}}
    return {"start_ids": {"L": [{"S": str(start)} for start in plan.starts]}}


def run_of(plan_item: dict[str, Any] | None, attribute: str = "run") -> int:
    """The current run of the runs counted in `attribute` of the plan's item (1 until the first restart)."""
    return int(plan_item[attribute]["N"]) if plan_item is not None and attribute in plan_item else 1


@attrs.define(eq=False, slots=False)
class PlanStore:
    """Reads (and, the first time, makes) the plan; the plan is cached, the run number is not."""

    _client: Any
    _table: str
    # Boundaries from the source's distribution; without it, one segment (e.g. a state used
    # on its own, in a test).
    _propose: Propose | None = None
    _kind: KeyKind = KeyKind.INTEGER
    _plan: SegmentPlan | None = attrs.field(init=False, default=None)
    # The segments' items as this process's lease takes got them back, for their ledgers.
    segment_items: SegmentItems = attrs.field(init=False, factory=SegmentItems)
    _making: asyncio.Lock = attrs.field(init=False, factory=asyncio.Lock)

    async def _read(self) -> dict[str, Any] | None:
        async with target_errors("reading the segment plan", table=self._table):
            response = await self._client.get_item(TableName=self._table, Key=PLAN_KEY, ConsistentRead=True)
        item: dict[str, Any] | None = response.get("Item")
        return item

    async def plan(self) -> SegmentPlan:
        """The plan, made from the proposed boundaries if the table has none yet."""
        return (await self._loaded())[0]

    async def _loaded(self) -> tuple[SegmentPlan, dict[str, Any] | None]:
        """The plan, and its item when this very call read (or put) it; None when it was known."""
        if self._plan is not None:
            return self._plan, None
        async with self._making:
            if self._plan is not None:
                return self._plan, None
            item = await self._read()
            if item is None:
                samples = list(await self._propose()) if self._propose is not None else []
                # The item this process put, when its put applied: no read back.
                item = await self._adopt(SegmentPlan.from_samples(_fitting(samples), self._kind))
            if item is None:
                raise RuntimeError("the segment plan was written but cannot be read back")
            self._plan = self._plan_of(item)
            return self._plan, item

    def _plan_of(self, item: dict[str, Any]) -> SegmentPlan:
        """The plan an item holds: integer starts as one text (as always), uuid or text starts as a list."""
        if "starts" in item:
            plan = SegmentPlan(tuple(int(start) for start in item["starts"]["S"].split(",")))
        else:
            plan = SegmentPlan(tuple(str(start["S"]) for start in item["start_ids"]["L"]))
        if plan.kind is not self._kind:
            raise SetupError(
                [
                    f"the state table {self._table!r} holds a segment plan of {plan.kind.value} ids, but the "
                    f"mapping's key is {self._kind.value}: use another DYNAMODB_STATE_TABLE for this source"
                ],
                "the state table belongs to another source",
            )
        return plan

    async def _adopt(self, plan: SegmentPlan) -> dict[str, Any] | None:
        """The plan's item after proposing `plan`: this one's if its put applied, else as read."""
        try:
            put = await self._put(plan)
        except TargetUnavailable:
            # The answer may be what was lost: a plan that is there now (this one, or another
            # process's) is the plan; only if there is none did the put fail.
            item = await self._read()
            if item is None:
                raise
            return item
        return put if put is not None else await self._read()

    async def _put(self, plan: SegmentPlan) -> dict[str, Any] | None:
        """The item put, or None when another process's plan was there first."""
        item = {**PLAN_KEY, **_starts(plan), "run": {"N": "1"}}
        async with target_errors("recording the segment plan", table=self._table):
            try:
                await self._client.put_item(
                    TableName=self._table,
                    Item=item,
                    ConditionExpression="attribute_not_exists(#key)",
                    ExpressionAttributeNames={"#key": STATE_KEY_ATTRIBUTE},
                )
            except ClientError as error:
                if error_code(error) != "ConditionalCheckFailedException":  # made meanwhile by another
                    raise
                return None
        return item

    async def run_number(self, attribute: str = "run") -> int:
        """The current run (1 until the first restart) of the runs counted in `attribute` (the
        migration's; verify's passes count theirs apart)."""
        # When this call read (or put) the plan just now, its item tells the run: no second read.
        _, item = await self._loaded()
        return run_of(item if item is not None else await self._read(), attribute)

    async def restart(self, seen_run: int, attribute: str = "run") -> int:
        """Move to run `seen_run + 1` unless another process moved it first; the current run."""
        await self.plan()
        async with target_errors("starting a new run", table=self._table):
            try:
                await self._client.update_item(
                    TableName=self._table,
                    Key=PLAN_KEY,
                    UpdateExpression="SET #run = :next",
                    # A run number never written is 1 (a plan made before verify's passes had one).
                    ConditionExpression="#run = :seen"
                    if seen_run > 1
                    else "attribute_not_exists(#run) OR #run = :seen",
                    ExpressionAttributeNames={"#run": attribute},
                    ExpressionAttributeValues={":seen": {"N": str(seen_run)}, ":next": {"N": str(seen_run + 1)}},
                )
            except ClientError as error:
                if error_code(error) != "ConditionalCheckFailedException":
                    raise
        return await self.run_number(attribute)
