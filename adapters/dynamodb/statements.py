"""Sending PartiQL write statements in batches of up to 25, each statement's answer kept apart.

One request per user costs a Python client about a millisecond of CPU (botocore's validation,
signing, parsing), whatever it carries; 25 statements a request cut that about six times. Each
statement still succeeds or fails alone, so the caller decides every user's outcome as a
conditional PutItem's answer would.

Here: batches run side by side under the target's write bound, each spent from the write budget
(a statement refused by its condition costs its write, a throttled one nothing); statements
DynamoDB throttled are sent again with backoff; a statement whose condition failed on what an
earlier copy of the same request wrote (botocore re-sent it after losing the answer) is the
write itself, landed. A request that failed as a whole is looked up: the items it wrote are
written, the others go back to the caller to be sent as PutItems (or failed, when DynamoDB is
unreachable).

Whether the endpoint runs PartiQL batches at all is probed once per process and endpoint
(`PartiqlSupport`): moto answers them with HTTP 500 or without checking conditions, dynalite has
no PartiQL.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from typing import Any, ClassVar

import attrs
from botocore.exceptions import BotoCoreError, ClientError

from user_migration.adapters.dynamodb.codec import is_own_write
from user_migration.adapters.dynamodb.counters import TargetCounters, pause_after_throttling
from user_migration.adapters.dynamodb.errors import describe, error_code, is_throttling
from user_migration.adapters.dynamodb.item_size import Item
from user_migration.adapters.dynamodb.partiql import (
    MAX_STATEMENTS,
    RETRIED_CODES,
    THROTTLED_CODES,
    Answer,
    Statement,
    WritePath,
    answers_of,
    probe_statement,
)
from user_migration.adapters.dynamodb.spending import CONSUMED_CAPACITY, spending
from user_migration.adapters.retry import Backoff
from user_migration.domain.errors import DependencyUnavailable, TargetTableMissing, TargetThrottled, TargetUnavailable
from user_migration.domain.keys import UserId
from user_migration.ports.write_budget import WriteBudget

# The write path chosen for the process: the service's logs; the CLI prints it on stderr.
log = logging.getLogger("user_migration.writes")

# What became of one statement, beside DynamoDB's own answer.
LANDED = "Landed"  # the request failed or was re-sent, and the item stored is the one sent
FALLBACK = "Fallback"  # not decided here: send it as a PutItem
FAILED = "Failed"


@attrs.frozen
class Sent:
    """One statement's end: DynamoDB's answer (`answer.code` "" for success, or one of the codes
    above), and for a failure its reason and whether DynamoDB could not be used at all."""

    answer: Answer
    unavailable: DependencyUnavailable | None = None

    @property
    def succeeded(self) -> bool:
        return self.answer.code in ("", LANDED)


ReadItems = Callable[[Collection[UserId]], Awaitable[dict[UserId, Item]]]


class PartiqlSupport:
    """Whether an endpoint runs PartiQL write batches as DynamoDB documents them: asked once per
    process, endpoint and table, with a statement that cannot write, and logged."""

    _known: ClassVar[dict[tuple[str, str], bool]] = {}
    _asking: ClassVar[dict[tuple[str, str], asyncio.Lock]] = {}
    _answered: ClassVar[set[tuple[str, str]]] = set()

    def __init__(self, client: Any, table: str, key_attribute: str, path: WritePath) -> None:
        self._client = client
        self._table = table
        self._key_attribute = key_attribute
        self._path = path
        self._where = (str(getattr(getattr(client, "meta", None), "endpoint_url", "")), table)

    @property
    def table(self) -> str:
        return self._table

    async def usable(self, key_type: str) -> bool:
        """Whether to send batches (the first call asks the endpoint, with a key of `key_type`)."""
        if self._path is not WritePath.AUTO:
            return self._path is WritePath.PARTIQL
        if self._where in self._known:
            return self._known[self._where]
        lock = self._asking.setdefault(self._where, asyncio.Lock())
        async with lock:
            if self._where not in self._known:
                self._known[self._where] = await self._probe(key_type)
        return self._known[self._where]

    def answered(self) -> None:
        """A batch was answered statement by statement: the endpoint runs them."""
        self._answered.add(self._where)

    def unusable(self, why: str) -> None:
        """Stop batching here for the rest of the process: the endpoint failed a batch as a whole
        before it had ever answered one (after that, a failure is the moment's, not the endpoint's)."""
        if self._where in self._answered:
            return
        if self._path is WritePath.AUTO and self._known.get(self._where, True):
            self._known[self._where] = False
            log.warning("live-safe writes to %s go as PutItems from now: %s", self._where[0] or "DynamoDB", why)

    async def _probe(self, key_type: str) -> bool:
        where = self._where[0] or "DynamoDB"
        statement = probe_statement(self._table, self._key_attribute, key_type)
        try:
            response = await self._client.batch_execute_statement(Statements=[statement])
            code = answers_of(response, 1)[0].code
        except (ClientError, BotoCoreError, ValueError, OSError, TimeoutError) as error:
            log.info("live-safe writes to %s go as one PutItem each: no PartiQL batches (%s)", where, describe(error))
            return False
        if code != "ConditionalCheckFailed":
            log.info(
                "live-safe writes to %s go as one PutItem each: a PartiQL condition was not checked (%s)",
                where,
                code or "the statement succeeded",
            )
            return False
        log.info("live-safe writes to %s go as PartiQL batches of up to %d statements", where, MAX_STATEMENTS)
        return True


@attrs.define(eq=False, slots=False)
class StatementBatches:
    """Statements of one table sent in batches; see the module's docstring."""

    _client: Any
    support: PartiqlSupport
    _writes_in_flight: asyncio.Semaphore
    _backoff: Backoff
    _counters: TargetCounters
    _budget: WriteBudget
    _read_items: ReadItems

    async def send(
        self, statements: Sequence[Statement], sent: Mapping[UserId, Item], units: Mapping[UserId, float]
    ) -> dict[UserId, Sent]:
        """Send each statement (at most one per user) and say how each ended; `sent` is the item
        each leaves stored, `units` what each costs."""
        chunks = [statements[start : start + MAX_STATEMENTS] for start in range(0, len(statements), MAX_STATEMENTS)]
        results = await asyncio.gather(*(self._send_chunk(chunk, sent, units) for chunk in chunks))
        return {user_id: end for result in results for user_id, end in result.items()}

    async def _send_chunk(
        self, chunk: Sequence[Statement], sent: Mapping[UserId, Item], units: Mapping[UserId, float]
    ) -> dict[UserId, Sent]:
        ends: dict[UserId, Sent] = {}
        pending = list(chunk)
        attempt = 0
        while pending:
            estimated = sum(units[statement.user_id] for statement in pending)
            try:
                async with spending(self._budget, estimated) as spent, self._writes_in_flight:
                    self._counters.statement_batches += 1
                    self._counters.statements += len(pending)
                    response = await self._client.batch_execute_statement(
                        Statements=[statement.request() for statement in pending], **CONSUMED_CAPACITY
                    )
                    spent.answer = response
                    answers = answers_of(response, len(pending))
                    retried = [s for s, a in zip(pending, answers, strict=True) if a.code in RETRIED_CODES]
                    spent.charged = estimated - sum(units[statement.user_id] for statement in retried)
            except ClientError as error:
                if is_throttling(error):
                    attempt += 1
                    reason = await pause_after_throttling(error, attempt, self._backoff, self._counters)
                    if reason is None:
                        continue
                    ends.update(self._failed(pending, reason, TargetThrottled(reason)))
                    return ends
                if error_code(error) == "ResourceNotFoundException":
                    raise TargetTableMissing(self.support.table) from error
                # Refused as a whole (a server without PartiQL, a statement it cannot take): what
                # landed is written, the rest goes as PutItems, which decide each user alone.
                if error_code(error) != "ValidationException":
                    self.support.unusable(describe(error))
                ends.update(await self._after_lost(pending, sent, Answer(FALLBACK, describe(error)), None))
                return ends
            except ValueError as error:  # an answer of the wrong shape: as a refused batch
                self.support.unusable(str(error))
                ends.update(await self._after_lost(pending, sent, Answer(FALLBACK, str(error)), None))
                return ends
            except (TimeoutError, BotoCoreError, OSError) as error:
                reason = f"DynamoDB is unavailable ({describe(error)})"
                ends.update(await self._after_lost(pending, sent, Answer(FAILED, reason), TargetUnavailable(reason)))
                return ends
            self.support.answered()
            resent = int(response.get("ResponseMetadata", {}).get("RetryAttempts", 0) or 0) > 0
            ends.update(await self._settle(pending, answers, sent, resent))
            pending = [s for s, answer in zip(pending, answers, strict=True) if answer.code in RETRIED_CODES]
            if pending:
                if any(answer.code in THROTTLED_CODES for answer in answers):
                    self._counters.throttles += 1
                    self._budget.throttled()
                attempt += 1
                if attempt >= self._backoff.attempts:
                    last = {statement.user_id: ends[statement.user_id] for statement in pending}
                    for user_id, end in last.items():
                        reason = f"throttled by DynamoDB after {attempt} attempts ({end.answer.reason})"
                        ends[user_id] = Sent(Answer(FAILED, reason), TargetThrottled(reason))
                    return ends
                self._counters.retries += 1
                await self._backoff.pause(attempt)
        return ends

    async def _settle(
        self, statements: Sequence[Statement], answers: Sequence[Answer], sent: Mapping[UserId, Item], resent: bool
    ) -> dict[UserId, Sent]:
        ends: dict[UserId, Sent] = {}
        unsure: list[UserId] = []
        for statement, answer in zip(statements, answers, strict=True):
            user_id = statement.user_id
            if answer.code == "ConditionalCheckFailed" and is_own_write(answer.stored, sent[user_id]):
                # The item that failed the condition is the one sent, by this process, now: an
                # earlier copy of this request wrote it.
                ends[user_id] = Sent(Answer(LANDED))
            elif answer.code == "DuplicateItem" and resent:
                unsure.append(user_id)
                ends[user_id] = Sent(answer)
            elif answer.code in ("ValidationError", "AccessDenied"):
                # A statement DynamoDB will not take here (or not from this role: PartiQLInsert and
                # PartiQLUpdate are permissions of their own): its PutItem decides.
                ends[user_id] = Sent(Answer(FALLBACK, answer.reason))
            elif answer.code in ("", "ConditionalCheckFailed", "DuplicateItem", *RETRIED_CODES):
                ends[user_id] = Sent(answer)
            elif answer.code == "ResourceNotFound":
                raise TargetTableMissing(self.support.table)
            else:
                reason = f"DynamoDB refused the write ({answer.reason})"
                ends[user_id] = Sent(Answer(FAILED, reason), TargetUnavailable(reason))
        if unsure:
            landed = await self._landed(unsure, sent)
            ends.update({user_id: Sent(Answer(LANDED)) for user_id in landed})
        return ends

    async def _after_lost(
        self,
        statements: Sequence[Statement],
        sent: Mapping[UserId, Item],
        otherwise: Answer,
        error: DependencyUnavailable | None,
    ) -> dict[UserId, Sent]:
        landed = await self._landed([statement.user_id for statement in statements], sent)
        return {
            statement.user_id: Sent(Answer(LANDED)) if statement.user_id in landed else Sent(otherwise, error)
            for statement in statements
        }

    async def _landed(self, user_ids: Sequence[UserId], sent: Mapping[UserId, Item]) -> set[UserId]:
        """The users whose stored item is the very one this process sent."""
        try:
            stored = await self._read_items(user_ids)
        except DependencyUnavailable:
            return set()
        return {user_id for user_id in user_ids if is_own_write(stored.get(user_id), sent[user_id])}

    @staticmethod
    def _failed(statements: Sequence[Statement], reason: str, error: DependencyUnavailable) -> dict[UserId, Sent]:
        return {statement.user_id: Sent(Answer(FAILED, reason), error) for statement in statements}
