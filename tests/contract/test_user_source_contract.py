"""The UserSource contract, for every adapter in tests/contract/conftest.py."""

from __future__ import annotations

from tests.factories import valid_user
from user_migration.domain.model import SourceUser, User, as_source_user

IDS = [3, 5, 8, 13, 21, 34, 55]
DOCUMENTED = ["username", "email", "display_name", "created_at", "updated_at", "status", "profile"]


def stored(*users: User) -> list[SourceUser]:
    """Users of the documented layout as every source hands them over: values by attribute name."""
    return [as_source_user(user) for user in users]


async def test_pages_are_keyset_pages_in_id_order(make_source):
    source = await make_source([valid_user(i) for i in reversed(IDS)])
    assert [u.id for u in await source.read_page(0, 3)] == [3, 5, 8]
    assert [u.id for u in await source.read_page(8, 3)] == [8, 13, 21]
    assert [u.id for u in await source.read_page(9, 100)] == [13, 21, 34, 55]
    assert [u.id for u in await source.read_page(55, 1)] == [55]
    assert list(await source.read_page(56, 10)) == []


async def test_users_come_back_as_they_were_stored(make_source):
    users = [valid_user(i) for i in IDS]
    source = await make_source(users)
    page = list(await source.read_page(0, 100))
    assert page == stored(*users)
    assert all(type(user) is SourceUser for user in page)
    assert all(list(user.values) == DOCUMENTED for user in page)


async def test_missing_values_arrive_as_none_for_the_domain_to_judge(make_source):
    bare = User(
        id=4,
        username=None,
        email=None,
        display_name=None,
        status="active",
        created_at=None,
        updated_at=None,
        profile=None,
    )
    source = await make_source([bare, valid_user(5)])
    assert list(await source.read_page(0, 10)) == stored(bare, valid_user(5))


async def test_single_user_by_id(make_source):
    source = await make_source([valid_user(i) for i in IDS])
    assert await source.read_user(13) == stored(valid_user(13))[0]
    assert await source.read_user(14) is None


async def test_count(make_source):
    assert await (await make_source([])).count_users() == 0
    assert await (await make_source([valid_user(i) for i in IDS])).count_users() == len(IDS)


async def test_the_estimate_is_close_to_the_count_and_of_an_empty_source_0(make_source):
    assert await (await make_source([])).estimate_user_count() == 0
    source = await make_source([valid_user(i) for i in range(1, 301)])
    assert abs(await source.estimate_user_count() - 300) <= 30


async def test_users_by_ids_in_id_order_missing_ones_left_out(make_source):
    source = await make_source([valid_user(i) for i in IDS])
    assert [u.id for u in await source.read_users([21, 3, 4, 21, 55])] == [3, 21, 55]
    assert list(await source.read_users([])) == []


async def test_count_from_an_id(make_source):
    source = await make_source([valid_user(i) for i in IDS])
    assert await source.count_users(13) == 4
    assert await source.count_users(14) == 3
    assert await source.count_users(56) == 0


async def test_changed_pages_keep_within_their_highest_id(make_source):
    source = await make_source([valid_user(i) for i in IDS])
    # No cursor: every row of the range, as a segment of a full sync pass reads them.
    assert [u.id for u in await source.read_changed_page(None, 5, 100, highest=21)] == [5, 8, 13, 21]
    assert [u.id for u in await source.read_changed_page(None, 0, 2, highest=21)] == [3, 5]
    cursor = await source.change_cursor()
    assert list(await source.read_changed_page(cursor, 0, 100, highest=21)) == []
