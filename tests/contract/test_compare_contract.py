"""The comparison part of the UserTarget contract (`compare_with_stored`, for `verify`): each
prepared user against its stored item, read consistently, the migration's bookkeeping left out,
numbers compared by value as DynamoDB gives them back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.factories import prepared_user, to_item, valid_user
from user_migration.domain.convert.mapping import MIGRATION_DIGEST, MIGRATION_VERSION
from user_migration.domain.model import WriteRule
from user_migration.domain.verify.differences import MATCHING, Problem, StoredComparison

NOW = datetime(2026, 11, 25, tzinfo=UTC)
LATER = datetime(2027, 2, 3, tzinfo=UTC)
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def row(user_id: int, updated: datetime = T0, migrated_at: datetime = NOW, **changes: object):
    return prepared_user(user_id, migrated_at, updated_at=updated, **changes)


def foreign_item(user_id: int, **changes: object) -> dict:
    """The item an application would write for the row: same content, none of the migration's marks."""
    item = to_item(valid_user(user_id, updated_at=T0, **changes), NOW)
    del item[MIGRATION_DIGEST], item[MIGRATION_VERSION]
    return item


async def test_matching_missing_and_different(make_target):
    target = await make_target()
    await target.write_users_if([row(1), row(2)], WriteRule.ABSENT)
    changed = row(2, email="changed@example.com", display_name=None)
    compared = await target.compare_with_stored([row(1, migrated_at=LATER), changed, row(3)])
    # Written at another moment, and `12.50` given back as `12.5`: still the same content.
    assert compared == {
        1: MATCHING,
        2: StoredComparison(Problem.DIFFERENT, ("display_name", "email")),
        3: StoredComparison(Problem.MISSING),
    }


async def test_an_item_newer_than_the_row(make_target):
    target = await make_target()
    await target.write_users_if([row(1, T0 + timedelta(days=1))], WriteRule.ABSENT)
    assert await target.compare_with_stored([row(1)]) == {1: StoredComparison(Problem.NEWER_IN_DYNAMODB)}
    # As new as the row, or older: compared by content.
    assert await target.compare_with_stored([row(1, T0 + timedelta(days=1))]) == {1: MATCHING}
    compared = await target.compare_with_stored([row(1, T0 + timedelta(days=2))])
    assert compared == {1: StoredComparison(Problem.DIFFERENT, ("updated_at",))}


async def test_an_item_someone_else_wrote(make_target, put_foreign_item):
    target = await make_target()
    await put_foreign_item(target, foreign_item(1))
    await put_foreign_item(target, foreign_item(2, email="app@example.com"))
    compared = await target.compare_with_stored([row(1), row(2)])
    # No version: never newer; its content decides (and a repair will leave it).
    assert compared == {1: MATCHING, 2: StoredComparison(Problem.DIFFERENT, ("email",))}


async def test_values_are_compared_by_type_and_value(make_target, put_foreign_item):
    target = await make_target()
    item = foreign_item(1)
    item["profile"]["M"]["nested"] = {"M": {"x": {"BOOL": True}}}  # true is not the number 1
    await put_foreign_item(target, item)
    other = foreign_item(2)
    other["profile"]["M"]["score"] = {"N": "12.5000"}  # the same number
    other["extra_attribute"] = {"S": "added by the application"}
    await put_foreign_item(target, other)
    compared = await target.compare_with_stored([row(1), row(2)])
    assert compared == {
        1: StoredComparison(Problem.DIFFERENT, ("profile",)),
        2: StoredComparison(Problem.DIFFERENT, ("extra_attribute",)),
    }


async def test_many_users_in_one_call(make_target):
    target = await make_target()
    await target.write_users_if([row(i) for i in range(1, 241)], WriteRule.ABSENT)
    compared = await target.compare_with_stored([row(i) for i in range(1, 251)])
    assert sorted(compared) == list(range(1, 251))
    assert {compared[i] for i in range(1, 241)} == {MATCHING}
    assert {compared[i] for i in range(241, 251)} == {StoredComparison(Problem.MISSING)}
    assert await target.compare_with_stored([]) == {}


async def test_under_its_own_key_attribute(make_target):
    target = await make_target(key_attribute="account_id")
    user = row(1)
    await target.write_users_if([user], WriteRule.ABSENT)
    assert await target.compare_with_stored([user, row(2)]) == {1: MATCHING, 2: StoredComparison(Problem.MISSING)}
