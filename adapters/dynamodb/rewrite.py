"""Rewriting items the migration wrote earlier, after a mapping was fixed, without ever replacing
an item that someone else wrote or changed.

An item is the migration's own when it carries `migration_digest`, and unchanged when that digest
still fits its content (`adapters.dynamodb.codec`). The replacing PutItem is conditional on every
attribute still being what was read (DynamoDB checks it atomically with the write), so a change
that lands between the read and the write keeps the item as it is, too. Each put is spent from
the write budget (`adapters.dynamodb.spending`); the read before it is not a write.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from user_migration.adapters.dynamodb.codec import REPLACE, encode_user, is_own_write, key_of, rewrite_choice
from user_migration.adapters.dynamodb.errors import error_code, target_errors, was_resent
from user_migration.adapters.dynamodb.item_size import Item, write_units_of
from user_migration.adapters.dynamodb.spending import CONSUMED_CAPACITY, spending
from user_migration.adapters.dynamodb.table_writes import TableWrites
from user_migration.domain.convert.mapping import MIGRATED_AT, MIGRATION_DIGEST
from user_migration.domain.errors import DependencyUnavailable
from user_migration.domain.keys import UserId
from user_migration.domain.model import PreparedUser, RewriteOutcome

if TYPE_CHECKING:
    pass

CHANGED_WHILE_REWRITING = "changed in DynamoDB while it was being rewritten: left as it is"
# DynamoDB's limits on one expression: its length, and its operators and functions (each
# comparison, AND and function counts one). Past either, the condition says less (see below).
MAX_EXPRESSION_CHARS = 4096
MAX_EXPRESSION_OPERATORS = 300
# DynamoDB's deepest document path: a value nested deeper is compared whole.
MAX_PATH_DEPTH = 32


class _Condition:
    """Checks ANDed into one ConditionExpression, each holding only while a value is what was read.

    DynamoDB documents `=` for every type, maps and lists included, but not every implementation
    does it: dynalite finds two equal maps, or lists of anything, unequal (it compares them as
    JavaScript objects, by identity). With `nested`, a map or a list is checked as its type, its
    size and each value inside it by its document path, which every implementation evaluates
    alike, and which is as exact (a key or an element added or removed changes the size). A NULL
    is checked by its type, which is all there is to it."""

    def __init__(self, nested: bool) -> None:
        self._nested = nested
        self._names: dict[str, str] = {}  # attribute name or map key -> its placeholder
        self._values: dict[str, Any] = {}  # placeholder -> attribute value
        self._placeholders: dict[str, str] = {}  # a value's repr -> its placeholder
        self._checks: list[str] = []
        self._operators = 0

    def same(self, path: str, value: Mapping[str, Any], depth: int = 1) -> None:
        """Check that the value at `path` (`depth` names long) is still `value`."""
        kind, inner = next(iter(value.items()))
        if kind == "NULL":
            self._check(f"attribute_type({path}, {self._value({'S': 'NULL'})})")
        elif kind in ("M", "L") and self._nested and depth < MAX_PATH_DEPTH:
            self._check(f"attribute_type({path}, {self._value({'S': kind})})")
            self._check(f"size({path}) = {self._value({'N': str(len(inner))})}", operators=2)
            if kind == "M":
                for key, child in sorted(inner.items()):
                    self.same(f"{path}.{self.name(key)}", child, depth + 1)
            else:
                for index, child in enumerate(inner):
                    self.same(f"{path}[{index}]", child, depth + 1)
        else:
            self._check(f"{path} = {self._value(value)}")

    def name(self, name: str) -> str:
        """The placeholder of an attribute name or a map key."""
        if name not in self._names:
            self._names[name] = f"#a{len(self._names)}"
        return self._names[name]

    def _value(self, value: Mapping[str, Any]) -> str:
        seen = repr(value)  # the same value (a type, a size) is sent once
        if seen not in self._placeholders:
            placeholder = f":v{len(self._placeholders)}"
            self._placeholders[seen] = placeholder
            self._values[placeholder] = value
        return self._placeholders[seen]

    def _check(self, check: str, operators: int = 1) -> None:
        self._checks.append(check)
        self._operators += operators

    def arguments(self) -> dict[str, Any] | None:
        """The ConditionExpression with its names and values; None past DynamoDB's limits."""
        expression = " AND ".join(self._checks)
        operators = self._operators + len(self._checks) - 1
        if len(expression) > MAX_EXPRESSION_CHARS or operators > MAX_EXPRESSION_OPERATORS:
            return None
        names = {placeholder: name for name, placeholder in self._names.items()}
        return {
            "ConditionExpression": expression,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": self._values,
        }


def unchanged_condition(current: Item) -> dict[str, Any]:
    """A ConditionExpression (with its names and values) that holds only while the item is `current`.

    Every value is checked down to the values inside maps and lists where that fits DynamoDB's
    limits on an expression; otherwise maps and lists are compared whole (`=`, exact where
    DynamoDB compares them as documented; where it does not, the item is kept, never replaced);
    past that too, only `migration_digest` and `migrated_at` are checked."""
    for nested in (True, False):
        condition = _Condition(nested)
        for name, value in sorted(current.items()):
            condition.same(condition.name(name), value)
        arguments = condition.arguments()
        if arguments is not None:
            return arguments
    return {
        "ConditionExpression": "#d = :d AND #m = :m",
        "ExpressionAttributeNames": {"#d": MIGRATION_DIGEST, "#m": MIGRATED_AT},
        "ExpressionAttributeValues": {":d": current[MIGRATION_DIGEST], ":m": current.get(MIGRATED_AT, {"S": ""})},
    }


class ItemRewriter:
    """Rewrites users' items one conditional PutItem each, bounded by the target's write bound and budget."""

    def __init__(self, writes: TableWrites) -> None:
        self._writes = writes

    async def rewrite(self, users: Sequence[PreparedUser]) -> RewriteOutcome:
        """Rewrite each user's item where the migration may; see the module's docstring. Where the
        endpoint runs PartiQL batches, they carry the rewrites (`adapters.dynamodb.batched`), and
        only what cannot go as a statement is read and put here, one user at a time."""
        batched, leftover = RewriteOutcome(), users
        if self._writes.batched is not None and await self._writes.batched.usable(users):
            batched, leftover = await self._writes.batched.rewrite(users)
        done: dict[str, list[UserId]] = {"rewritten": [], "unchanged": []}
        reasons: dict[str, dict[UserId, str]] = {"kept": {}, "failed": {}}
        outcomes = await asyncio.gather(*(self._rewrite_one(user) for user in leftover))
        for user, (what, why) in zip(leftover, outcomes, strict=True):
            if what in done:
                done[what].append(user.user_id)
            else:
                reasons[what][user.user_id] = why
        return batched.joined(
            RewriteOutcome(tuple(done["rewritten"]), tuple(done["unchanged"]), reasons["kept"], reasons["failed"])
        )

    async def _holds_exactly(self, key: Item, item: Item) -> bool:
        async with target_errors("reading a rewritten item", table=self._writes.table):
            response = await self._writes.client.get_item(TableName=self._writes.table, Key=key, ConsistentRead=True)
        return is_own_write(response.get("Item"), item)

    async def _rewrite_one(self, user: PreparedUser) -> tuple[str, str]:
        key = key_of(user.user_id, self._writes.key_attribute)
        try:
            async with self._writes.writes_in_flight:
                async with target_errors("reading an item to rewrite", table=self._writes.table):
                    response = await self._writes.client.get_item(
                        TableName=self._writes.table, Key=key, ConsistentRead=True
                    )
                current: Item | None = response.get("Item")
                item = encode_user(user, self._writes.key_attribute)
                what, why = rewrite_choice(current, item, user.version)
                if what != REPLACE:
                    return what, why
                assert current is not None
                # DynamoDB charges the larger of the old and the new item.
                units = max(write_units_of(item), write_units_of(current))
                try:
                    async with (
                        target_errors("rewriting an item", table=self._writes.table),
                        spending(self._writes.budget, units) as spent,
                    ):
                        spent.answer = await self._writes.client.put_item(
                            TableName=self._writes.table, Item=item, **unchanged_condition(current), **CONSUMED_CAPACITY
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
