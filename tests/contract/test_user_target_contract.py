"""The UserTarget contract, for every adapter in tests/contract/conftest.py."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import attrs

from tests.factories import from_item, prepared_user, to_item, valid_user
from user_migration.adapters.dynamodb.codec import (
    CHANGED_SINCE_WRITTEN,
    NO_LONGER_STORED,
    NOT_WRITTEN_BY_MIGRATION,
    decode_item,
    unchanged_since_written,
)
from user_migration.domain.model import PreparedUser, RewriteOutcome, StoredUser, WriteOutcome

NOW = datetime(2026, 11, 25, tzinfo=UTC)
LATER = datetime(2027, 2, 3, 4, 5, 6, tzinfo=UTC)


def item_of(user_id: int, **changes: Any) -> PreparedUser:
    return prepared_user(user_id, NOW, **changes)


async def test_an_empty_target(make_target):
    target = await make_target()
    assert await target.existing_user_ids([1, 2, 3]) == set()
    assert await target.existing_user_ids([]) == set()
    assert await target.read_item(1) is None
    assert await target.count_users() == 0


async def test_a_target_holds_no_items_until_anyone_writes_one(make_target, put_foreign_item):
    target, foreign = await make_target(), await make_target()
    assert await target.holds_no_items()
    await target.write_users([item_of(1)])
    assert not await target.holds_no_items()
    await put_foreign_item(foreign, to_item(valid_user(7), NOW))
    assert not await foreign.holds_no_items()


async def test_written_users_exist_and_read_back_equal(make_target):
    target = await make_target()
    outcome = await target.write_users([item_of(1), item_of(2)])
    assert sorted(outcome.written) == [1, 2]
    assert dict(outcome.failed) == {}
    assert await target.existing_user_ids([1, 2, 3, 2]) == {1, 2}
    stored = await target.read_item(2)
    assert stored is not None
    assert from_item(stored) == valid_user(2)
    assert stored["migrated_at"] == {"S": "2026-11-25T00:00:00.000000Z"}
    # What the target gives back still carries the migration's digest, and it still fits.
    assert unchanged_since_written(stored)


async def test_many_users_in_one_call(make_target):
    target = await make_target()
    items = [item_of(i) for i in range(1, 262)]
    outcome = await target.write_users(items)
    assert sorted(outcome.written) == list(range(1, 262))
    assert await target.existing_user_ids(range(1, 300)) == set(range(1, 262))
    assert await target.count_users() == 261


async def test_writing_nothing(make_target):
    target = await make_target()
    assert await target.write_users([]) == WriteOutcome()
    assert await target.rewrite_users([]) == RewriteOutcome()


# --- rewrite_users ------------------------------------------------------------------------------


async def test_an_item_the_migration_wrote_is_rewritten_with_the_new_content(make_target):
    target = await make_target()
    await target.write_users([item_of(1)])

    outcome = await target.rewrite_users([prepared_user(1, LATER, display_name="Fixed Name")])

    assert outcome == RewriteOutcome(rewritten=(1,))
    stored = await target.read_item(1)
    assert stored is not None
    assert from_item(stored) == valid_user(1, display_name="Fixed Name")
    assert stored["migrated_at"] == {"S": "2027-02-03T04:05:06.000000Z"}
    assert unchanged_since_written(stored)  # so that a later rewrite may replace it again
    assert await target.count_users() == 1


async def test_an_identical_item_is_left_unchanged(make_target):
    target = await make_target()
    await target.write_users([item_of(1)])

    # Only migrated_at differs, which is not content: nothing is written.
    outcome = await target.rewrite_users([prepared_user(1, LATER)])

    assert outcome == RewriteOutcome(unchanged=(1,))
    stored = await target.read_item(1)
    assert stored is not None
    assert stored["migrated_at"] == {"S": "2026-11-25T00:00:00.000000Z"}


async def test_an_item_someone_else_wrote_is_kept(make_target, put_foreign_item):
    target = await make_target()
    foreign = to_item(valid_user(1), NOW)
    del foreign["migration_digest"]
    await put_foreign_item(target, foreign)

    outcome = await target.rewrite_users([prepared_user(1, LATER, display_name="Fixed Name")])

    assert outcome == RewriteOutcome(kept={1: NOT_WRITTEN_BY_MIGRATION})
    stored = await target.read_item(1)
    assert stored is not None
    assert decode_item(stored) == decode_item(foreign)


async def test_an_item_someone_else_wrote_with_the_same_content_is_unchanged(make_target, put_foreign_item):
    """`unchanged` means equal content, whoever wrote the item; nothing is written."""
    target = await make_target()
    foreign = to_item(valid_user(1), NOW)
    del foreign["migration_digest"]
    await put_foreign_item(target, foreign)

    outcome = await target.rewrite_users([prepared_user(1, LATER)])

    assert outcome == RewriteOutcome(unchanged=(1,))
    stored = await target.read_item(1)
    assert stored is not None
    assert "migration_digest" not in stored


async def test_an_item_changed_since_the_migration_wrote_it_is_kept(make_target, put_foreign_item):
    target = await make_target()
    await target.write_users([item_of(1)])
    stored = await target.read_item(1)
    assert stored is not None
    changed = {**stored, "email": {"S": "new.address@example.com"}}  # the application updated it
    await put_foreign_item(target, changed)

    outcome = await target.rewrite_users([prepared_user(1, LATER, display_name="Fixed Name")])

    assert outcome == RewriteOutcome(kept={1: CHANGED_SINCE_WRITTEN})
    after = await target.read_item(1)
    assert after is not None
    assert from_item(after) == valid_user(1, email="new.address@example.com")


async def test_a_missing_item_is_kept_missing(make_target):
    target = await make_target()

    outcome = await target.rewrite_users([item_of(4)])

    assert outcome == RewriteOutcome(kept={4: NO_LONGER_STORED})
    assert await target.read_item(4) is None
    assert await target.count_users() == 0


async def test_one_rewrite_sorts_every_kind_of_item(make_target, put_foreign_item):
    target = await make_target()
    await target.write_users([item_of(1), item_of(2), item_of(3)])
    foreign = to_item(valid_user(4), NOW)
    del foreign["migration_digest"]
    await put_foreign_item(target, foreign)
    stored = await target.read_item(3)
    assert stored is not None
    await put_foreign_item(target, {**stored, "status": {"S": "suspended"}})

    outcome = await target.rewrite_users(
        [prepared_user(user_id, LATER, display_name="Fixed") if user_id != 2 else item_of(2) for user_id in range(1, 6)]
    )

    assert outcome.rewritten == (1,)
    assert outcome.unchanged == (2,)
    assert dict(outcome.kept) == {3: CHANGED_SINCE_WRITTEN, 4: NOT_WRITTEN_BY_MIGRATION, 5: NO_LONGER_STORED}
    assert dict(outcome.failed) == {}
    assert await target.count_users() == 4


# --- another key attribute ------------------------------------------------------------------------


async def test_another_key_attribute_works_end_to_end(make_target):
    target = await make_target(key_attribute="uid")

    outcome = await target.write_users([item_of(1), item_of(2)])

    assert sorted(outcome.written) == [1, 2]
    assert await target.existing_user_ids([1, 2, 3]) == {1, 2}
    stored = await target.read_item(2)
    assert stored is not None
    assert stored["uid"] == {"N": "2"}
    assert "user_id" not in stored
    values = decode_item(stored)
    assert values["username"] == "user_2"
    assert unchanged_since_written(stored)
    assert await target.count_users() == 2

    rewritten = await target.rewrite_users([prepared_user(2, LATER, display_name="Fixed"), item_of(1), item_of(3)])

    assert rewritten == RewriteOutcome(rewritten=(2,), unchanged=(1,), kept={3: NO_LONGER_STORED})
    after = await target.read_item(2)
    assert after is not None
    assert decode_item(after)["display_name"] == "Fixed"
    assert after["uid"] == {"N": "2"}


async def test_what_is_stored_is_told_in_the_migration_s_words(make_target, put_foreign_item):
    target = await make_target()
    await target.write_users([attrs.evolve(item_of(1), version=7), attrs.evolve(item_of(2), version=None)])
    foreign = to_item(valid_user(3), NOW)
    del foreign["migration_digest"], foreign["migration_version"]  # an application's own item
    await put_foreign_item(target, foreign)

    stored = await target.read_stored([1, 2, 3, 4])

    assert stored == {
        1: StoredUser(version=7, by_migration=True),
        2: StoredUser(version=None, by_migration=True),
        3: StoredUser(version=None, by_migration=False),
    }
