"""PartiQL statements for the batched live-safe writes, and what each statement's answer means.

One `BatchExecuteStatement` carries up to 25 write statements, each succeeding or failing on its own
(API reference: BatchExecuteStatement, BatchStatementRequest, BatchStatementError):
- insert-if-absent: `INSERT INTO "t" VALUE {'k': ?, 'a': ?, ...}` fails alone with `DuplicateItem`
  when an item with that key exists (each value a parameter: `VALUE ?` with a map is refused);
- replace under a condition: `UPDATE "t" SET "a" = ?, ... REMOVE "b", ... WHERE "k" = ? AND ...`
  fails alone with `ConditionalCheckFailed`, and with `ReturnValuesOnConditionCheckFailure: ALL_OLD`
  returns the stored item. An UPDATE never creates an item (an absent key fails its condition), and
  it keeps every attribute it does not SET: to store exactly what a PutItem of the new item would,
  every attribute of the stored item that the new item lacks is REMOVEd, and the WHERE pins the
  stored item that list was taken from.

Documented limits checked before sending: a statement's text is at most 8,192 characters; a batch
at most 25 statements, never two of one key (DynamoDB refuses the whole batch). An attribute name
that PartiQL cannot quote as written here (one holding a quote) makes its item go as a PutItem.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Mapping
from typing import Any

import attrs

from user_migration.adapters.dynamodb.item_size import Item
from user_migration.domain.convert.mapping import MIGRATION_VERSION
from user_migration.domain.keys import UserId

MAX_STATEMENTS = 25
MAX_STATEMENT_CHARS = 8192
# The smallest number DynamoDB stores: no `migration_version` is below it, so a probe's UPDATE
# guarded by `< MINIMUM` can never write.
MINIMUM_NUMBER = "-9.9999999999999999999999999999999999999E+125"
# A statement's errors that a later try may not meet (DynamoDB's own words for them).
RETRIED_CODES = frozenset(
    {"ProvisionedThroughputExceeded", "ThrottlingError", "RequestLimitExceeded", "TransactionConflict"}
)
THROTTLED_CODES = frozenset({"ProvisionedThroughputExceeded", "ThrottlingError", "RequestLimitExceeded"})


class WritePath(enum.Enum):
    """How live-safe writes go out (`DYNAMODB_WRITE_PATH`): batched where the endpoint supports
    PartiQL batches (probed), always batched, or one conditional PutItem per user."""

    AUTO = "auto"
    PARTIQL = "partiql"
    PUTITEM = "putitem"


@attrs.frozen
class Statement:
    """One statement of a batch, with the user it writes."""

    user_id: UserId
    text: str
    parameters: tuple[Item | Mapping[str, Any], ...]

    def request(self) -> dict[str, Any]:
        return {
            "Statement": self.text,
            "Parameters": list(self.parameters),
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }


def _quotable(name: str) -> bool:
    return "'" not in name and '"' not in name


@functools.lru_cache(maxsize=1024)
def _insert_text(table: str, names: tuple[str, ...]) -> str | None:
    # Users of one mapping share a few sets of attribute names: each set's text is made once.
    if not all(_quotable(name) for name in names):
        return None
    fields = ", ".join(f"'{name}': ?" for name in names)
    text = f'INSERT INTO "{table}" VALUE {{{fields}}}'
    return text if len(text) <= MAX_STATEMENT_CHARS else None


def insert_statement(user_id: UserId, table: str, item: Item) -> Statement | None:
    """The insert-if-absent of `item`; None when it cannot go as a statement."""
    text = _insert_text(table, tuple(item))
    if text is None:
        return None
    return Statement(user_id, text, tuple(item.values()))


def update_statement(
    user_id: UserId, table: str, key_attribute: str, item: Item, current: Item, guards: Mapping[str, Any]
) -> Statement | None:
    """An UPDATE that leaves exactly `item` where `current` is stored, applied only while each
    attribute named in `guards` holds its value there (None: while the attribute is missing);
    None when it cannot go as a statement."""
    names = [*item, *current, *guards]
    if not all(_quotable(name) for name in names):
        return None
    sets = [name for name in item if name != key_attribute]
    removes = [name for name in current if name not in item]
    parameters: list[Any] = [item[name] for name in sets]
    text = f'UPDATE "{table}" SET ' + ", ".join(f'"{name}" = ?' for name in sets)
    if removes:
        text += " REMOVE " + ", ".join(f'"{name}"' for name in removes)
    text += f' WHERE "{key_attribute}" = ?'
    parameters.append(item[key_attribute])
    for name, value in guards.items():
        if value is None:
            text += f' AND "{name}" IS MISSING'
        else:
            text += f' AND "{name}" = ?'
            parameters.append(value)
    if len(text) > MAX_STATEMENT_CHARS:
        return None
    return Statement(user_id, text, tuple(parameters))


# The probe's key, by the key's type: one no user has (below any bigint; a text no row holds), so
# that an endpoint that ignored the probe's condition would still change no user's item.
PROBE_KEYS = {"N": "-9223372036854775809", "S": "\u0000user-migration probe", "B": b"\x00user-migration probe"}


def probe_statement(table: str, key_attribute: str, key_type: str) -> dict[str, Any]:
    """A statement that no item can let write (no version is below the smallest number, and the
    key is no user's): an endpoint that evaluates PartiQL conditions answers `ConditionalCheckFailed`."""
    key = {key_type: PROBE_KEYS[key_type]}
    return {
        "Statement": f'UPDATE "{table}" SET "{MIGRATION_VERSION}" = ? WHERE "{key_attribute}" = ? '
        f'AND "{MIGRATION_VERSION}" < ?',
        "Parameters": [{"N": "0"}, key, {"N": MINIMUM_NUMBER}],
    }


@attrs.frozen
class Answer:
    """One statement's answer: `code` is "" for success, else DynamoDB's error code; `stored` the
    item that failed the condition, where DynamoDB returned it."""

    code: str = ""
    message: str = ""
    stored: Item | None = None

    @property
    def reason(self) -> str:
        return f"{self.code}: {self.message[:200]}" if self.message else self.code


def answers_of(response: Mapping[str, Any], count: int) -> list[Answer]:
    """The answers of a batch of `count` statements, in the order they were sent."""
    responses = list(response.get("Responses", []))
    if len(responses) != count:
        raise ValueError(f"{len(responses)} answers to {count} statements")
    found = []
    for entry in responses:
        error = entry.get("Error")
        if error is None:
            found.append(Answer())
        else:
            found.append(Answer(str(error.get("Code", "")), str(error.get("Message", "")), error.get("Item")))
    return found
