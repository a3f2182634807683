"""Rewriting items the migration wrote earlier, after a mapping was fixed, without ever replacing
an item that someone else wrote or changed.

An item is the migration's own when it carries `migration_digest`, and unchanged when that digest
still fits its content (`adapters.dynamodb_codec`). The replacing PutItem is conditional on every
attribute still being what was read (DynamoDB checks it atomically with the write), so a change
that lands between the read and the write keeps the item as it is, too. Each put is spent from
the write budget (`adapters.dynamodb_spending`); the read before it is not a write.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from botocore.exceptions import ClientError

from adapters.dynamodb_codec import REPLACE, encode_user, is_own_write, key_of, rewrite_choice
from adapters.dynamodb_errors import error_code, target_errors, was_resent
from adapters.dynamodb_spending import CONSUMED_CAPACITY, spending
from domain.errors import DependencyUnavailable
from domain.mapping import MIGRATED_AT, MIGRATION_DIGEST
from domain.model import Item, PreparedUser, RewriteOutcome
from domain.write_budget import TokenBucketBudget, write_units_of
from ports.write_budget import WriteBudget

CHANGED_WHILE_REWRITING = "changed in DynamoDB while it was being rewritten: left as it is"
# DynamoDB's limit on an expression's length; past it the condition names the digest and migrated_at only.
MAX_EXPRESSION_CHARS = 4096


def unchanged_condition(current: Item) -> dict[str, Any]:
    """A ConditionExpression (with its names and values) that holds only while the item is `current`."""
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    parts: list[str] = []
    for index, (name, value) in enumerate(sorted(current.items())):
        names[f"#a{index}"] = name
        if "NULL" in value:  # a NULL compares with nothing: its presence is what can be checked
            parts.append(f"attribute_exists(#a{index})")
            continue
        values[f":v{index}"] = value
        parts.append(f"#a{index} = :v{index}")
    expression = " AND ".join(parts)
    if len(expression) > MAX_EXPRESSION_CHARS:
        names = {"#d": MIGRATION_DIGEST, "#m": MIGRATED_AT}
        values = {":d": current[MIGRATION_DIGEST], ":m": current.get(MIGRATED_AT, {"S": ""})}
        expression = "#d = :d AND #m = :m"
    return {"ConditionExpression": expression, "ExpressionAttributeNames": names, "ExpressionAttributeValues": values}


class ItemRewriter:
    """Rewrites users' items one conditional PutItem each, bounded by the target's write bound and budget."""

    def __init__(
        self,
        client: Any,
        table: str,
        key_attribute: str,
        writes_in_flight: asyncio.Semaphore,
        budget: WriteBudget | None = None,
    ) -> None:
        self._client = client
        self._table = table
        self._key_attribute = key_attribute
        self._writes_in_flight = writes_in_flight
        self._budget = budget if budget is not None else TokenBucketBudget()

    async def rewrite(self, users: Sequence[PreparedUser]) -> RewriteOutcome:
        """Rewrite each user's item where the migration may; see the module's docstring."""
        outcomes = await asyncio.gather(*(self._rewrite_one(user) for user in users))
        done: dict[str, list[int]] = {"rewritten": [], "unchanged": []}
        reasons: dict[str, dict[int, str]] = {"kept": {}, "failed": {}}
        for user, (what, why) in zip(users, outcomes, strict=True):
            if what in done:
                done[what].append(user.user_id)
            else:
                reasons[what][user.user_id] = why
        return RewriteOutcome(tuple(done["rewritten"]), tuple(done["unchanged"]), reasons["kept"], reasons["failed"])

    async def _holds_exactly(self, key: Item, item: Item) -> bool:
        async with target_errors("reading a rewritten item", table=self._table):
            response = await self._client.get_item(TableName=self._table, Key=key, ConsistentRead=True)
        return is_own_write(response.get("Item"), item)

    async def _rewrite_one(self, user: PreparedUser) -> tuple[str, str]:
        key = key_of(user.user_id, self._key_attribute)
        try:
            async with self._writes_in_flight:
                async with target_errors("reading an item to rewrite", table=self._table):
                    response = await self._client.get_item(TableName=self._table, Key=key, ConsistentRead=True)
                current: Item | None = response.get("Item")
                item = encode_user(user, self._key_attribute)
                what, why = rewrite_choice(current, item, user.version)
                if what != REPLACE:
                    return what, why
                assert current is not None
                # DynamoDB charges the larger of the old and the new item.
                units = max(write_units_of(item), write_units_of(current))
                try:
                    async with (
                        target_errors("rewriting an item", table=self._table),
                        spending(self._budget, units) as spent,
                    ):
                        spent.answer = await self._client.put_item(
                            TableName=self._table, Item=item, **unchanged_condition(current), **CONSUMED_CAPACITY
                        )
                except DependencyUnavailable as error:
                    cause = error.__cause__
                    if isinstance(cause, ClientError) and error_code(cause) == "ConditionalCheckFailedException":
                        # A re-sent rewrite fails on the item its first copy wrote: rewritten.
                        if was_resent(cause) and await self._holds_exactly(key, item):
                            return "rewritten", ""
                        return "kept", CHANGED_WHILE_REWRITING
                    raise
        except DependencyUnavailable as error:
            return "failed", str(error)
        return "rewritten", ""
