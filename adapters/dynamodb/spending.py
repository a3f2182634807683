"""Spending one DynamoDB write request from the write budget.

Before it goes, the request waits for its estimate (one unit per started KB of each item, as
DynamoDB charges); after, the budget is debited what DynamoDB says it consumed
(`ReturnConsumedCapacity="TOTAL"`, so global secondary indexes' writes are in it too). DynamoDB never
charges less than its own rule for the items it wrote, so an answer below the estimate comes from an
emulator (moto answers 1.0 for any PutItem and for any whole BatchWriteItem, whatever the items'
size or number): the estimate is debited then, and when the answer carries no figure at all.

A refused request costs what DynamoDB charges for it: a failed condition as much as the write
(DynamoDB reads the item to check it); throttling and validation errors nothing. A request whose
answer was lost may have landed: its estimate. Throttling and unprocessed items are told to the budget.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import attrs
from botocore.exceptions import ClientError

from user_migration.adapters.dynamodb.errors import error_code, is_throttling
from user_migration.ports.write_budget import WriteBudget

CONSUMED_CAPACITY = {"ReturnConsumedCapacity": "TOTAL"}
# Refused before anything was written or read: nothing to pay.
_NOT_CHARGED = frozenset({"ValidationException", "ResourceNotFoundException"})


def reported_units(answer: Mapping[str, Any]) -> float | None:
    """The units an answer (or an error's response) says were consumed; None when it does not say."""
    consumed = answer.get("ConsumedCapacity")
    if consumed is None:
        return None
    entries = consumed if isinstance(consumed, list) else [consumed]
    return sum(float(entry.get("CapacityUnits", 0) or 0) for entry in entries)


def units_consumed(answer: Mapping[str, Any], estimated: float) -> float:
    """What to debit for a request answered with `answer`; see the module's docstring."""
    reported = reported_units(answer)
    return estimated if reported is None else max(reported, estimated)


@attrs.define
class Spending:
    """One request's spending: the caller sets `answer` to DynamoDB's response, and for a batch that
    DynamoDB processed only in part, `charged` to the estimate of the items it processed."""

    estimated: float
    charged: float
    answer: Mapping[str, Any] | None = None


@asynccontextmanager
async def spending(budget: WriteBudget, estimated: float) -> AsyncIterator[Spending]:
    """Wait for the budget, then settle the request made inside with what it cost."""
    await budget.acquire(estimated)
    spent = Spending(estimated, estimated)
    try:
        yield spent
    except ClientError as error:
        if is_throttling(error):
            budget.spend(0.0, estimated)
            budget.throttled()
        elif error_code(error) in _NOT_CHARGED:
            budget.spend(0.0, estimated)
        else:
            budget.spend(units_consumed(error.response, estimated), estimated)
        raise
    except BaseException:
        budget.spend(estimated, estimated)
        raise
    answer = spent.answer or {}
    budget.spend(units_consumed(answer, spent.charged), estimated)
    if any(answer.get("UnprocessedItems", {}).values()):
        budget.throttled()
