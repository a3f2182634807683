"""The user target on DynamoDB: BatchGetItem existence checks and BatchWriteItem writes.

Existence checks ask for at most 100 keys a call (key projection only, consistent reads); writes
send at most 25 items a call, never the same key twice in one request. Chunks run concurrently,
reads and writes each under their own bound. Unprocessed keys and items are retried with
exponential backoff and full jitter a bounded number of times; what is still unprocessed is
reported per user, never dropped. Every write request (here, in `ConditionalWriter` and in
`ItemRewriter`) is spent from the process's write budget (`adapters.dynamodb.spending`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Collection, Coroutine, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import attrs
from botocore.exceptions import BotoCoreError, ClientError

from user_migration.adapters.dynamodb.batched import BatchedWrites
from user_migration.adapters.dynamodb.codec import decode_key, encode_user, key_of, key_value, stored_user
from user_migration.adapters.dynamodb.compare import compare_users
from user_migration.adapters.dynamodb.conditional import ConditionalWriter
from user_migration.adapters.dynamodb.counters import TargetCounters, pause_after_throttling
from user_migration.adapters.dynamodb.errors import describe, error_code, is_throttling, target_errors
from user_migration.adapters.dynamodb.item_size import Item, write_units_of
from user_migration.adapters.dynamodb.known_charge import KnownCharge
from user_migration.adapters.dynamodb.partiql import WritePath
from user_migration.adapters.dynamodb.rewrite import ItemRewriter
from user_migration.adapters.dynamodb.spending import spending
from user_migration.adapters.dynamodb.statements import PartiqlSupport, StatementBatches
from user_migration.adapters.dynamodb.table_writes import TableWrites
from user_migration.adapters.dynamodb.tables import ensure_table_active
from user_migration.adapters.retry import Backoff
from user_migration.domain.budget.bucket import TokenBucketBudget, write_units_for
from user_migration.domain.convert.mapping import DEFAULT_KEY_ATTRIBUTE
from user_migration.domain.errors import DependencyUnavailable, TargetTableMissing, TargetThrottled, TargetUnavailable
from user_migration.domain.keys import TEXT_END, UserId
from user_migration.domain.model import (
    ConditionalWriteOutcome,
    DeleteOutcome,
    PreparedUser,
    RewriteOutcome,
    StoredUser,
    WriteOutcome,
    WriteRule,
)
from user_migration.domain.parallel.segments import ScanPart
from user_migration.domain.verify.differences import StoredComparison
from user_migration.ports.user_target import UserTarget
from user_migration.ports.write_budget import WriteBudget

GET_CHUNK = 100
WRITE_CHUNK = 25
SCAN_PAGE_ITEMS = 1000  # items a request of a bounded scan reads at most (DynamoDB also stops at 1 MB)
T = TypeVar("T")


async def _run_all(coroutines: Iterable[Coroutine[Any, Any, T]]) -> list[T]:
    """Run side by side; on the first failure cancel the rest and raise that failure itself
    (not the ExceptionGroup a TaskGroup raises), so callers see the domain error."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(coroutine) for coroutine in coroutines]
    except BaseExceptionGroup as failures:
        first: BaseException = failures
        while isinstance(first, BaseExceptionGroup):
            first = first.exceptions[0]
        raise first from failures
    return [task.result() for task in tasks]


def _chunks(values: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [values[start : start + size] for start in range(0, len(values), size)]


@attrs.define
class _ChunkResult:
    written: list[UserId] = attrs.Factory(list)
    failed: dict[UserId, str] = attrs.Factory(dict)
    # Set when the chunk failed because DynamoDB could not be used at all (not a per-item problem).
    unavailable: DependencyUnavailable | None = None


class DynamoDbUserTarget(UserTarget):
    """Users in one DynamoDB table with partition key `key_attribute` (N, `user_id` by default)."""

    def __init__(
        self,
        client: Any,
        table: str = "users",
        backoff: Backoff | None = None,
        concurrency: int = 32,
        key_attribute: str = DEFAULT_KEY_ATTRIBUTE,
        budget: WriteBudget | None = None,
        key_type: str = "N",
        write_path: WritePath | str = WritePath.AUTO,
    ) -> None:
        """`key_type` is the DynamoDB type of the key attribute (N for an integer key, S otherwise),
        checked against the table by `check_ready`."""
        self._client = client
        self._table = table
        write_path = WritePath(write_path)
        self._key_attribute = key_attribute
        self._key_type = key_type
        self._backoff = backoff if backoff is not None else Backoff()
        # Reads and writes are bounded apart (DynamoDB meters them apart, too): the existence
        # checks of the next page then go out while this page's writes still queue, instead of
        # waiting behind all of them.
        self._reads_in_flight = asyncio.Semaphore(concurrency)
        self._writes_in_flight = asyncio.Semaphore(concurrency)
        # Chunks of `write_users` encoded and not yet answered: twice the writes in flight, so that
        # the next ones are ready, and chunks pausing between attempts do not hold the writes back.
        self._encoded_in_flight = asyncio.Semaphore(2 * concurrency)
        self.counters = TargetCounters()
        # Unlimited unless given: the process's budget (container.py), shared by all its writes.
        self._budget = budget if budget is not None else TokenBucketBudget()
        self._known_charge = KnownCharge(client, table)
        batched = None
        if write_path is not WritePath.PUTITEM:
            support = PartiqlSupport(client, table, key_attribute, write_path)
            statements = StatementBatches(
                client, support, self._writes_in_flight, self._backoff, self.counters, self._budget, self.read_items
            )
            batched = BatchedWrites(statements, table, key_attribute, self.read_items)
        writes = TableWrites(
            client, table, key_attribute, self._writes_in_flight, self._backoff, self.counters, self._budget, batched
        )
        self._rewriter = ItemRewriter(writes)
        self._conditional = ConditionalWriter(writes)

    async def existing_user_ids(self, user_ids: Collection[UserId]) -> set[UserId]:
        unique = sorted(set(user_ids))
        found = await _run_all(self._existing_in(chunk) for chunk in _chunks(unique, GET_CHUNK))
        return set().union(*found)

    async def _existing_in(self, user_ids: Sequence[UserId]) -> set[UserId]:
        return set(await self._items_in(user_ids, keys_only=True))

    async def read_stored(self, user_ids: Collection[UserId]) -> dict[UserId, StoredUser]:
        return {user_id: stored_user(item) for user_id, item in (await self.read_items(user_ids)).items()}

    async def read_items(self, user_ids: Collection[UserId]) -> dict[UserId, Item]:
        """The stored items of these users (consistent reads, one BatchGetItem per 100), by id; absent ones
        are left out."""
        unique = sorted(set(user_ids))
        found = await _run_all(self._items_in(chunk, keys_only=False) for chunk in _chunks(unique, GET_CHUNK))
        return {user_id: item for chunk in found for user_id, item in chunk.items()}

    async def compare_with_stored(self, users: Sequence[PreparedUser]) -> dict[UserId, StoredComparison]:
        # One consistent BatchGetItem per 100 keys; compared as the in-memory target compares.
        stored = await self.read_items([user.user_id for user in users])
        return compare_users(users, stored, self._key_attribute)

    async def _items_in(self, user_ids: Sequence[UserId], keys_only: bool) -> dict[UserId, Item]:
        keys = [key_of(user_id, self._key_attribute) for user_id in user_ids]
        found: dict[UserId, Item] = {}
        attempt = 0
        while keys:
            wanted: dict[str, Any] = {"Keys": keys, "ConsistentRead": True}
            if keys_only:
                wanted["ProjectionExpression"] = "#k"
                wanted["ExpressionAttributeNames"] = {"#k": self._key_attribute}
            request = {self._table: wanted}
            try:
                async with self._reads_in_flight, target_errors("the existence check", table=self._table):
                    response = await self._client.batch_get_item(RequestItems=request)
            except TargetThrottled:
                self.counters.throttles += 1
                attempt += 1
                if attempt >= self._backoff.attempts:
                    raise
                self.counters.retries += 1
                await self._backoff.pause(attempt)
                continue
            key = self._key_attribute
            found.update((decode_key(item[key]), item) for item in response.get("Responses", {}).get(self._table, []))
            keys = response.get("UnprocessedKeys", {}).get(self._table, {}).get("Keys", [])
            if keys:
                self.counters.unprocessed_keys += len(keys)
                attempt += 1
                if attempt >= self._backoff.attempts:
                    raise TargetThrottled(
                        f"DynamoDB left {len(keys)} keys unprocessed after {attempt} attempts of the existence check"
                    )
                self.counters.retries += 1
                await self._backoff.pause(attempt)
        return found

    async def write_users(self, users: Sequence[PreparedUser]) -> WriteOutcome:
        latest = {user.user_id: user for user in users}  # a user given twice: the last, once
        # The item sizes the domain measured, where it did (sizing an item again costs a walk of it).
        units = {user.user_id: write_units_for(user.size) for user in users if user.size}
        results = await _run_all(
            self._encode_and_write(chunk, units) for chunk in _chunks(list(latest.values()), WRITE_CHUNK)
        )
        written = [user_id for result in results for user_id in result.written]
        failed = {user_id: reason for result in results for user_id, reason in result.failed.items()}
        unavailable = [result.unavailable for result in results if result.unavailable is not None]
        if results and not written and len(unavailable) == len(results):
            # Nothing could be written at all: a dependency failure, not a per-user one.
            raise unavailable[0]
        return WriteOutcome(tuple(written), failed)

    async def holds_no_items(self) -> bool:
        # A scan that reads one item at most; one that stops on no item with more to read (space
        # left by deleted items) is not taken for an empty table.
        arguments = {"TableName": self._table, "Limit": 1, "ConsistentRead": True, "ProjectionExpression": "#k"}
        async with self._reads_in_flight, target_errors("looking whether the table is empty", table=self._table):
            response = await self._client.scan(**arguments, ExpressionAttributeNames={"#k": self._key_attribute})
        return not response.get("Items") and "LastEvaluatedKey" not in response

    async def rewrite_users(self, users: Sequence[PreparedUser]) -> RewriteOutcome:
        return await self._rewriter.rewrite(users)

    async def write_users_if(self, users: Sequence[PreparedUser], rule: WriteRule) -> ConditionalWriteOutcome:
        return await self._conditional.write(users, rule)

    async def delete_unchanged(self, user_ids: Collection[UserId]) -> DeleteOutcome:
        return await self._conditional.delete_unchanged(user_ids)

    def _scan_arguments(self, lowest: UserId, highest: UserId, page_size: int) -> dict[str, Any]:
        """A consistent, keys-only scan for the ids in lowest..highest, `page_size` items read a request."""
        arguments: dict[str, Any] = {
            "TableName": self._table,
            "ProjectionExpression": "#k",
            "FilterExpression": "#k BETWEEN :lowest AND :highest",
            "ExpressionAttributeNames": {"#k": self._key_attribute},
            "ExpressionAttributeValues": {":lowest": key_value(lowest), ":highest": key_value(highest)},
            "ConsistentRead": True,
            "Limit": page_size,
        }
        if isinstance(lowest, str) and isinstance(highest, str):
            # A text id space has no least value DynamoDB takes (an empty string) and no greatest: each
            # end of it is left unbounded (strings compare by their UTF-8 bytes, as `COLLATE "C"` does).
            conditions, values = [], {}
            if lowest:
                conditions.append("#k >= :lowest")
                values[":lowest"] = key_value(lowest)
            if highest < TEXT_END:
                conditions.append("#k <= :highest")
                values[":highest"] = key_value(highest)
            del arguments["FilterExpression"], arguments["ExpressionAttributeValues"]
            if conditions:
                arguments["FilterExpression"] = " AND ".join(conditions)
                arguments["ExpressionAttributeValues"] = values
        return arguments

    async def _scan_page(self, arguments: dict[str, Any]) -> tuple[list[UserId], int, Any]:
        """One scan request: the ids it found, how many items it read, and where the next starts (None at the end)."""
        async with self._reads_in_flight, target_errors("scanning the user ids", table=self._table):
            response = await self._client.scan(**arguments)
        user_ids = [decode_key(item[self._key_attribute]) for item in response.get("Items", [])]
        return user_ids, int(response.get("ScannedCount", 0)), response.get("LastEvaluatedKey")

    async def scan_user_ids(
        self, lowest: UserId, highest: UserId, page_size: int = 1000, part: ScanPart | None = None
    ) -> AsyncIterator[list[UserId]]:
        arguments = self._scan_arguments(lowest, highest, page_size)
        if part is not None:  # a parallel scan's segment
            arguments.update(Segment=part.index, TotalSegments=part.total)
        while True:
            user_ids, _, following = await self._scan_page(arguments)
            if user_ids:
                yield user_ids
            if following is None:
                return
            arguments["ExclusiveStartKey"] = following

    async def scan_user_ids_of_small_table(
        self, lowest: UserId, highest: UserId, most_items: int
    ) -> list[UserId] | None:
        arguments = self._scan_arguments(lowest, highest, SCAN_PAGE_ITEMS)
        found: list[UserId] = []
        read = 0
        while True:
            # Reading one item more than allowed tells a table of more items from one of exactly as many.
            arguments["Limit"] = min(SCAN_PAGE_ITEMS, most_items + 1 - read)
            user_ids, scanned, following = await self._scan_page(arguments)
            found.extend(user_ids)
            read += scanned
            if read > most_items:
                return None
            if following is None:
                return found
            arguments["ExclusiveStartKey"] = following

    async def _encode_and_write(self, users: Sequence[PreparedUser], units: Mapping[UserId, int]) -> _ChunkResult:
        """Encode a chunk's items only once its turn to be sent comes: an item takes about ten
        times the memory of its prepared user, and the pages in flight wait for their turns."""
        async with self._encoded_in_flight:
            chunk = [(user.user_id, encode_user(user, self._key_attribute)) for user in users]
            return await self._write_chunk(chunk, units)

    async def _write_chunk(self, chunk: Sequence[tuple[UserId, Item]], units: Mapping[UserId, int]) -> _ChunkResult:
        result = _ChunkResult()
        pending = dict(chunk)
        item_units = {user_id: units.get(user_id) or write_units_of(item) for user_id, item in chunk}
        # The users were found absent: without secondary indexes, their charge is their items' units.
        asking = await self._known_charge.arguments()
        attempt = 0
        while pending:
            request = {self._table: [{"PutRequest": {"Item": item}} for item in pending.values()]}
            try:
                estimated = sum(item_units[user_id] for user_id in pending)
                async with spending(self._budget, estimated) as spent, self._writes_in_flight:
                    response = await self._client.batch_write_item(RequestItems=request, **asking)
                    spent.answer = response
                    spent.charged = estimated - sum(item_units[user_id] for user_id in self._unprocessed(response))
            except ClientError as error:
                if is_throttling(error):
                    attempt += 1
                    reason = await pause_after_throttling(error, attempt, self._backoff, self.counters)
                    if reason is None:
                        continue
                    return self._give_up(result, pending, reason, TargetThrottled(reason))
                if error_code(error) == "ValidationException" and len(pending) > 1:
                    # One item DynamoDB refuses must not fail its neighbours: write each alone.
                    return await self._write_one_by_one(result, list(pending.items()), units)
                if error_code(error) == "ValidationException":
                    result.failed.update({user_id: f"rejected by DynamoDB ({describe(error)})" for user_id in pending})
                    return result
                if error_code(error) == "ResourceNotFoundException":
                    raise TargetTableMissing(self._table) from error
                reason = f"DynamoDB refused the write ({describe(error)})"
                return self._give_up(result, pending, reason, TargetUnavailable(reason))
            except (TimeoutError, BotoCoreError, OSError) as error:
                # The request may have landed before the connection failed (a lost response):
                # ask which items are there, so that they are counted as written.
                landed = await self._landed(list(pending))
                result.written.extend(user_id for user_id in pending if user_id in landed)
                pending = {user_id: item for user_id, item in pending.items() if user_id not in landed}
                if not pending:
                    return result
                reason = f"DynamoDB is unavailable ({describe(error)})"
                return self._give_up(result, pending, reason, TargetUnavailable(reason))
            unprocessed = self._unprocessed(response)
            result.written.extend(user_id for user_id in pending if user_id not in unprocessed)
            pending = {user_id: item for user_id, item in pending.items() if user_id in unprocessed}
            if pending:
                self.counters.unprocessed_items += len(pending)
                attempt += 1
                if attempt >= self._backoff.attempts:
                    reason = f"still unprocessed by DynamoDB after {attempt} attempts"
                    result.failed.update(dict.fromkeys(pending, reason))
                    return result
                self.counters.retries += 1
                await self._backoff.pause(attempt)
        return result

    def _unprocessed(self, response: Mapping[str, Any]) -> set[UserId]:
        return {
            decode_key(request["PutRequest"]["Item"][self._key_attribute])
            for request in response.get("UnprocessedItems", {}).get(self._table, [])
        }

    async def _landed(self, user_ids: list[UserId]) -> set[UserId]:
        try:
            return await self.existing_user_ids(user_ids)
        except DependencyUnavailable:
            return set()

    @staticmethod
    def _give_up(
        result: _ChunkResult, pending: dict[UserId, Item], reason: str, error: DependencyUnavailable
    ) -> _ChunkResult:
        result.failed.update(dict.fromkeys(pending, reason))
        if not result.written:
            result.unavailable = error
        return result

    async def _write_one_by_one(
        self, result: _ChunkResult, items: list[tuple[UserId, Item]], units: Mapping[UserId, int]
    ) -> _ChunkResult:
        singles = await asyncio.gather(*(self._write_chunk([item], units) for item in items))
        for single in singles:
            result.written.extend(single.written)
            result.failed.update(single.failed)
        if not result.written and all(single.unavailable is not None for single in singles):
            result.unavailable = singles[0].unavailable
        return result

    async def check_ready(self) -> None:
        table = await ensure_table_active(self._client, self._table, (self._key_attribute, self._key_type))
        self._known_charge.seen(table)  # no second DescribeTable before the first offline write

    async def read_item(self, user_id: UserId) -> Item | None:
        async with target_errors("reading an item", table=self._table):
            response = await self._client.get_item(
                TableName=self._table, Key=key_of(user_id, self._key_attribute), ConsistentRead=True
            )
        item: Item | None = response.get("Item")
        return item

    async def count_users(self) -> int:
        total = 0
        arguments: dict[str, Any] = {"TableName": self._table, "Select": "COUNT", "ConsistentRead": True}
        async with target_errors("counting items", table=self._table):
            while True:
                response = await self._client.scan(**arguments)
                total += int(response["Count"])
                if "LastEvaluatedKey" not in response:
                    return total
                arguments["ExclusiveStartKey"] = response["LastEvaluatedKey"]
