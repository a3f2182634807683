"""The UserTarget contract, for every adapter in tests/contract/conftest.py."""

from __future__ import annotations

from datetime import UTC, datetime

from domain.conversion import from_item, to_item
from domain.model import UserItem, WriteOutcome
from tests.factories import valid_user

NOW = datetime(2026, 11, 25, tzinfo=UTC)


def item_of(user_id: int, **changes) -> UserItem:
    return UserItem(user_id, to_item(valid_user(user_id, **changes), NOW))


async def test_an_empty_target(make_target):
    target = await make_target()
    assert await target.existing_user_ids([1, 2, 3]) == set()
    assert await target.existing_user_ids([]) == set()
    assert await target.read_item(1) is None
    assert await target.count_users() == 0


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
