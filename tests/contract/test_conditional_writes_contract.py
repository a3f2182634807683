"""The live-safe part of the UserTarget contract: writes the target itself checks, so that an item
written by someone else, or from a newer row, is never replaced; deletes of its own unchanged
items only; reads of items and ids for `verify` and `sync`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import attrs

from tests.factories import prepared_user, to_item, valid_user
from user_migration.adapters.dynamodb.codec import stored_version
from user_migration.domain.migrate.request import MAX_USER_ID
from user_migration.domain.model import WriteRule
from user_migration.domain.parallel.segments import ScanPart

NOW = datetime(2026, 11, 25, tzinfo=UTC)
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def row(user_id: int, updated: datetime = T0, **changes: object):
    return prepared_user(user_id, NOW, updated_at=updated, **changes)


async def test_absent_writes_only_where_no_item_exists(make_target):
    target = await make_target()
    await target.write_users_if([row(1)], WriteRule.ABSENT)
    outcome = await target.write_users_if([row(1, T0 + timedelta(days=1)), row(2)], WriteRule.ABSENT)
    assert outcome.written == (2,)
    assert outcome.created == {2}
    assert outcome.refused == {1}
    assert stored_version(await target.read_item(1)) == stored_version(to_item(valid_user(1, updated_at=T0), NOW))


async def test_older_replaces_only_an_older_item_of_the_migration(make_target):
    target = await make_target()
    await target.write_users_if([row(1), row(2, T0 + timedelta(days=2))], WriteRule.ABSENT)
    newer, older, same = row(1, T0 + timedelta(days=1)), row(2, T0 + timedelta(days=1)), row(3)
    await target.write_users_if([same], WriteRule.ABSENT)
    outcome = await target.write_users_if([newer, older, same, row(4)], WriteRule.OLDER)
    assert sorted(outcome.written) == [1, 4]
    assert outcome.created == {4}
    assert outcome.refused == {2, 3}
    assert stored_version(await target.read_item(1)) == newer.version
    assert stored_version(await target.read_item(2)) == older.version + 86_400_000_000


async def test_an_item_without_a_version_is_never_replaced(make_target):
    target = await make_target()
    await target.write_users([attrs.evolve(row(1), version=None)])  # an item with no migration_version
    for rule in WriteRule:
        outcome = await target.write_users_if([row(1, T0 + timedelta(days=9))], rule)
        assert outcome.refused == {1}, rule


async def test_a_row_without_a_version_is_written_only_where_absent(make_target):
    target = await make_target()
    await target.write_users_if([row(1)], WriteRule.ABSENT)
    unversioned = attrs.evolve(row(1, email="x@example.com"), version=None)
    outcome = await target.write_users_if([unversioned, attrs.evolve(row(2), version=None)], WriteRule.OLDER)
    assert outcome.written == (2,)
    assert outcome.refused == {1}


async def test_delete_unchanged_deletes_its_own_unchanged_items(make_target):
    target = await make_target()
    await target.write_users_if([row(1), row(2)], WriteRule.ABSENT)
    outcome = await target.delete_unchanged([1, 4])
    assert outcome.deleted == (1,)  # 4 has no item: neither deleted nor kept
    assert (dict(outcome.kept), dict(outcome.failed)) == ({}, {})
    assert await target.read_item(1) is None
    assert await target.existing_user_ids([2]) == {2}


async def test_read_items_and_scan_user_ids(make_target):
    target = await make_target()
    await target.write_users_if([row(i) for i in range(1, 251)], WriteRule.ABSENT)
    items = await target.read_items([5, 7, 999])
    assert sorted(items) == [5, 7]
    assert items[5]["user_id"] == {"N": "5"}
    seen = [user_id async for page in target.scan_user_ids(10, 200, page_size=40) for user_id in page]
    assert sorted(seen) == list(range(10, 201))
    # The parts of a parallel scan split the ids between them: each in exactly one part.
    parts = [
        [user_id async for page in target.scan_user_ids(10, 200, 40, ScanPart(index, 3)) for user_id in page]
        for index in range(3)
    ]
    assert sorted(user_id for part in parts for user_id in part) == list(range(10, 201))


async def test_a_scan_reaches_ids_behind_pages_that_hold_none_of_the_range(make_target):
    # DynamoDB applies a scan's Limit before its filter: most pages here hold no id in the range,
    # and still say where the next one starts (LastEvaluatedKey), which the scan must follow.
    target = await make_target()
    await target.write_users_if([row(i) for i in [*range(1, 61), 1000]], WriteRule.ABSENT)
    pages = [page async for page in target.scan_user_ids(1000, 1000, page_size=5)]
    assert pages == [[1000]]


async def test_a_scan_of_a_small_table_finds_every_id_and_refuses_a_larger_table(make_target):
    target = await make_target()
    assert await target.scan_user_ids_of_small_table(0, MAX_USER_ID, 1) == []
    await target.write_users_if([row(i) for i in range(1, 251)], WriteRule.ABSENT)
    await target.write_users([attrs.evolve(row(MAX_USER_ID), version=None)])  # 251 items in all
    above = await target.scan_user_ids_of_small_table(240, MAX_USER_ID, 251)
    assert sorted(above or []) == [*range(240, 251), MAX_USER_ID]
    assert sorted(await target.scan_user_ids_of_small_table(5, 7, 1000) or []) == [5, 6, 7]
    # More items than it may look at: no answer (the ids it did see tell nothing of the others).
    assert await target.scan_user_ids_of_small_table(240, MAX_USER_ID, 250) is None
    assert await target.scan_user_ids_of_small_table(240, MAX_USER_ID, 10) is None


# The implementations that run PartiQL write batches as DynamoDB documents them: their live-safe
# writes go as batches; moto (HTTP 500, or conditions not checked) and dynalite (no PartiQL) take
# the PutItem path, found by the probe.
BATCHING = {"dynamodb-local"}


async def test_each_implementation_takes_its_write_path(make_target, request):
    implementation = request.node.callspec.params["make_target"]
    target = await make_target()
    created = await target.write_users_if([row(1), row(2), row(3)], WriteRule.ABSENT)
    replaced = await target.write_users_if([row(1, T0 + timedelta(days=1)), row(3)], WriteRule.OLDER)
    rewritten = await target.rewrite_users([row(2, display_name="Renamed")])
    assert (sorted(created.written), sorted(replaced.written), replaced.refused) == ([1, 2, 3], [1], {3})
    assert rewritten.rewritten == (2,)
    assert (await target.read_item(2))["display_name"] == {"S": "Renamed"}
    if implementation == "memory":
        return
    counters = target.counters
    if implementation in BATCHING:
        assert (counters.statement_batches, counters.statements) == (3, 5)  # 3 inserts, 1 update, 1 rewrite
    else:
        assert counters.statement_batches == 0


async def test_the_probe_changes_no_item(make_target, request):
    """The probe is an UPDATE no item can pass; moto ignores its condition, so its key is no user's."""
    implementation = request.node.callspec.params["make_target"]
    target = await make_target()
    await target.write_users_if([row(1)], WriteRule.ABSENT)  # the probe went before this write
    before = await target.read_item(1)
    await target.write_users_if([row(2)], WriteRule.ABSENT)
    assert await target.read_item(1) == before
    if implementation != "memory":
        scanned = [ids async for ids in target.scan_user_ids(-(2**64), MAX_USER_ID)]
        assert sorted(user_id for ids in scanned for user_id in ids) == [1, 2]  # no probe item created
