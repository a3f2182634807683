"""Writes and deletes that DynamoDB itself checks, item by item, so that nothing newer is lost.

BatchWriteItem takes no conditions: a put of a batch replaces whatever is stored, also an item an
application wrote a moment after the migration looked. Every live-safe write is therefore one
PutItem with a ConditionExpression (`write_condition`): DynamoDB decides atomically, on the item as
it is when the write lands, whether the rule allows it. A delete is a DeleteItem conditional on
every attribute still being what was read (the item the migration wrote, unchanged).

Requests run side by side under the target's write bound, each spent from the write budget
(`adapters.dynamodb.spending`); throttling is retried with backoff. A request whose answer was lost
is looked up again: the item is the one sent (it landed) or not.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Sequence
from typing import Any

import attrs
from botocore.exceptions import BotoCoreError, ClientError

from user_migration.adapters.dynamodb.batched import BatchedOutcome
from user_migration.adapters.dynamodb.codec import encode_user, is_own_write, key_of, why_not_rewritten
from user_migration.adapters.dynamodb.counters import pause_after_throttling
from user_migration.adapters.dynamodb.errors import describe, error_code, is_throttling, target_errors, was_resent
from user_migration.adapters.dynamodb.item_size import Item, write_units_of
from user_migration.adapters.dynamodb.rewrite import unchanged_condition
from user_migration.adapters.dynamodb.spending import CONSUMED_CAPACITY, spending
from user_migration.adapters.dynamodb.table_writes import TableWrites
from user_migration.domain.budget.bucket import write_units_for
from user_migration.domain.convert.mapping import MIGRATION_VERSION
from user_migration.domain.errors import DependencyUnavailable, TargetTableMissing, TargetThrottled, TargetUnavailable
from user_migration.domain.keys import UserId
from user_migration.domain.model import ConditionalWriteOutcome, DeleteOutcome, PreparedUser, WriteRule

CONDITION_FAILED = "ConditionalCheckFailedException"
CHANGED_WHILE_DELETING = "changed in DynamoDB while it was being deleted: left as it is"


def write_condition(rule: WriteRule, version: int | None, key_attribute: str) -> dict[str, Any]:
    """The ConditionExpression (with its names and values) under which `rule` allows a put.

    An item without `migration_version`, or with one that is not a number, fails `#v < :v`
    (DynamoDB compares only values of one type), so an item someone else wrote is never replaced.
    A row without a version may only be written where no item exists.
    """
    names = {"#k": key_attribute}
    if rule is WriteRule.ABSENT or version is None:
        return {"ConditionExpression": "attribute_not_exists(#k)", "ExpressionAttributeNames": names}
    names["#v"] = MIGRATION_VERSION
    return {
        "ConditionExpression": "attribute_not_exists(#k) OR #v < :v",
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": {":v": {"N": str(version)}},
    }


@attrs.frozen
class _Put:
    what: str  # "written", "refused" or "failed"
    created: bool = False
    reason: str = ""
    unavailable: DependencyUnavailable | None = None


class ConditionalWriter:
    """Conditional puts and deletes of one table, bounded by the target's write bound and budget."""

    def __init__(self, writes: TableWrites) -> None:
        self._writes = writes

    async def write(self, users: Sequence[PreparedUser], rule: WriteRule) -> ConditionalWriteOutcome:
        """Put each user's item where `rule` allows it; see the module's docstring."""
        latest = tuple({user.user_id: user for user in users}.values())  # one request per key, the last one given
        batched = BatchedOutcome(ConditionalWriteOutcome(), latest, {})
        if self._writes.batched is not None and await self._writes.batched.usable(latest):
            batched = await self._writes.batched.write(latest, rule)  # what it leaves over goes as PutItems
        written: list[UserId] = []
        created: set[UserId] = set()
        refused: set[UserId] = set()
        failed: dict[UserId, str] = {}
        unavailable = dict(batched.unavailable)
        puts = await asyncio.gather(*(self._put(user, rule) for user in batched.leftover))
        for user, put in zip(batched.leftover, puts, strict=True):
            if put.what == "written":
                written.append(user.user_id)
                if put.created:
                    created.add(user.user_id)
            elif put.what == "refused":
                refused.add(user.user_id)
            else:
                failed[user.user_id] = put.reason
                if put.unavailable is not None:
                    unavailable[user.user_id] = put.unavailable
        outcome = batched.outcome.joined(
            ConditionalWriteOutcome(tuple(written), frozenset(created), frozenset(refused), failed)
        )
        if outcome.failed and len(unavailable) == len(outcome.failed) and not outcome.written and not outcome.refused:
            raise next(iter(unavailable.values()))  # nothing could be written at all: a dependency failure
        return outcome

    async def _put(self, user: PreparedUser, rule: WriteRule) -> _Put:
        item = encode_user(user, self._writes.key_attribute)
        condition = write_condition(rule, user.version, self._writes.key_attribute)
        # Whether an item was there before (an update, not a new user): asked of DynamoDB only
        # where the rule allows replacing one.
        returns = "NONE" if "ExpressionAttributeValues" not in condition else "ALL_OLD"
        units = write_units_for(user.size) if user.size else write_units_of(item)
        attempt = 0
        while True:
            try:
                async with spending(self._writes.budget, units) as spent, self._writes.writes_in_flight:
                    response = await self._writes.client.put_item(
                        TableName=self._writes.table, Item=item, ReturnValues=returns, **condition, **CONSUMED_CAPACITY
                    )
                    spent.answer = response
                return _Put("written", created=returns == "NONE" or "Attributes" not in response)
            except ClientError as error:
                code = error_code(error)
                if code == CONDITION_FAILED:
                    # A copy botocore sent again after losing the answer to the first fails on
                    # what the first one wrote: that is our write, landed.
                    if was_resent(error) and await self._landed(item):
                        return _Put("written", created=rule is WriteRule.ABSENT)
                    return _Put("refused")
                if is_throttling(error):
                    attempt += 1
                    reason = await pause_after_throttling(error, attempt, self._writes.backoff, self._writes.counters)
                    if reason is None:
                        continue
                    return _Put("failed", reason=reason, unavailable=TargetThrottled(reason))
                if code == "ResourceNotFoundException":
                    raise TargetTableMissing(self._writes.table) from error
                if code == "ValidationException":
                    return _Put("failed", reason=f"rejected by DynamoDB ({describe(error)})")
                reason = f"DynamoDB refused the write ({describe(error)})"
                return _Put("failed", reason=reason, unavailable=TargetUnavailable(reason))
            except (TimeoutError, BotoCoreError, OSError) as error:
                # The put may have landed before the answer was lost: the item is then ours, sent now.
                if await self._landed(item):
                    return _Put("written", created=rule is WriteRule.ABSENT)
                reason = f"DynamoDB is unavailable ({describe(error)})"
                return _Put("failed", reason=reason, unavailable=TargetUnavailable(reason))

    async def _landed(self, item: Item) -> bool:
        key = {self._writes.key_attribute: item[self._writes.key_attribute]}
        try:
            current = await self._read(key)
        except DependencyUnavailable:
            return False
        return is_own_write(current, item)

    async def _read(self, key: dict[str, Any]) -> Item | None:
        async with target_errors("reading an item", table=self._writes.table):
            response = await self._writes.client.get_item(TableName=self._writes.table, Key=key, ConsistentRead=True)
        item: Item | None = response.get("Item")
        return item

    async def delete_unchanged(self, user_ids: Collection[UserId]) -> DeleteOutcome:
        """Delete each user's item where it is the migration's own and unchanged since it was
        written (checked again by the delete itself); the others are kept, with the reason. An
        id with no item is neither deleted nor kept. When no delete could reach DynamoDB at all,
        that is raised (a dependency failure, not a list of failed users)."""
        unique = sorted(set(user_ids))
        results = await asyncio.gather(*(self._delete_one(user_id) for user_id in unique))
        unavailable = [error for _, _, error in results if error is not None]
        if results and len(unavailable) == len(results):
            raise unavailable[0]
        deleted = tuple(user_id for user_id, (what, _, _) in zip(unique, results, strict=True) if what == "deleted")
        kept = {user_id: why for user_id, (what, why, _) in zip(unique, results, strict=True) if what == "kept"}
        failed = {user_id: why for user_id, (what, why, _) in zip(unique, results, strict=True) if what == "failed"}
        return DeleteOutcome(deleted, kept, failed)

    async def _delete_one(self, user_id: UserId) -> tuple[str, str, DependencyUnavailable | None]:
        key = key_of(user_id, self._writes.key_attribute)
        try:
            async with self._writes.writes_in_flight:
                current = await self._read(key)
                if current is None:
                    return "gone", "", None
                if (why := why_not_rewritten(current)) is not None:
                    return "kept", why, None
                try:
                    async with (
                        target_errors("deleting an item", table=self._writes.table),
                        spending(self._writes.budget, write_units_of(current)) as spent,
                    ):
                        spent.answer = await self._writes.client.delete_item(
                            TableName=self._writes.table, Key=key, **unchanged_condition(current), **CONSUMED_CAPACITY
                        )
                except DependencyUnavailable as error:
                    cause = error.__cause__
                    if isinstance(cause, ClientError) and error_code(cause) == CONDITION_FAILED:
                        # A re-sent delete fails on the item its first copy deleted: deleted.
                        if was_resent(cause) and await self._read(key) is None:
                            return "deleted", "", None
                        return "kept", CHANGED_WHILE_DELETING, None
                    raise
        except DependencyUnavailable as error:  # a missing table (a SetupError) propagates
            return "failed", str(error), error
        return "deleted", "", None
