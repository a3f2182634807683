"""How a stored item compares with the item a prepared user would be written as (for `verify`).

One comparison for the DynamoDB target and the in-memory one, so that the two cannot disagree.
Values are compared as DynamoDB holds them: by type first (a BOOL is never equal to an N), numbers
by value (DynamoDB gives back `12.5` for the `12.50` it was sent), maps by key, lists in order,
sets as sets. The migration's bookkeeping (`migrated_at`, `migration_digest`,
`migration_version`) is not content and is never compared.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation

from user_migration.adapters.dynamodb.codec import BOOKKEEPING, decode_value, encode_user, stored_version
from user_migration.adapters.dynamodb.item_size import AttributeValue, Item
from user_migration.domain.keys import UserId
from user_migration.domain.model import PreparedUser
from user_migration.domain.verify.differences import MATCHING, Problem, StoredComparison

MISSING = StoredComparison(Problem.MISSING)
NEWER = StoredComparison(Problem.NEWER_IN_DYNAMODB)


def _number(text: str) -> Decimal | str:
    try:
        return Decimal(text)
    except InvalidOperation:  # not a number DynamoDB would hold; compared as text
        return text


def same_value(left: AttributeValue, right: AttributeValue) -> bool:
    """Whether two attribute values hold the same value (see the module's docstring)."""
    if left.keys() != right.keys() or len(left) != 1:
        return left == right
    ((kind, first),) = left.items()
    second = right[kind]
    if kind == "N":
        return _number(first) == _number(second)
    if kind == "B":
        return bool(decode_value(left) == decode_value(right))
    if kind == "M":
        return first.keys() == second.keys() and all(same_value(first[key], second[key]) for key in first)
    if kind == "L":
        return len(first) == len(second) and all(map(same_value, first, second))
    if kind == "NS":
        return {_number(number) for number in first} == {_number(number) for number in second}
    if kind in ("SS", "BS"):
        return set(first) == set(second)
    return bool(first == second)


def differing_attributes(expected: Item, stored: Item) -> tuple[str, ...]:
    """The names of the attributes whose values differ, or that only one of the items has
    (sorted; the bookkeeping left out)."""
    names = (expected.keys() | stored.keys()) - BOOKKEEPING
    return tuple(
        sorted(
            name
            for name in names
            if name not in expected or name not in stored or not same_value(expected[name], stored[name])
        )
    )


def compare_item(expected: Item, stored: Item | None, version: int | None) -> StoredComparison:
    """How `stored` compares with `expected`, the item of a row of `version`: missing, newer (its
    `migration_version` is greater than the row's), different, or matching."""
    if stored is None:
        return MISSING
    stored_at = stored_version(stored)
    if stored_at is not None and version is not None and stored_at > version:
        return NEWER
    fields = differing_attributes(expected, stored)
    return StoredComparison(Problem.DIFFERENT, fields) if fields else MATCHING


def compare_users(
    users: Sequence[PreparedUser], stored: Mapping[UserId, Item], key_attribute: str
) -> dict[UserId, StoredComparison]:
    """Each user (the last one given per id) compared with its stored item, by id."""
    latest = {user.user_id: user for user in users}
    return {
        user_id: compare_item(encode_user(user, key_attribute), stored.get(user_id), user.version)
        for user_id, user in latest.items()
    }
