"""`verify` on the in-memory adapters: each class of difference found and nothing else, every
difference checked again before it is reported, and what a repair fixes and what it leaves."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import attrs
import pytest

from tests.factories import UPDATED, prepared_user, to_item, valid_user
from user_migration.adapters.dynamodb.codec import CHANGED_SINCE_WRITTEN
from user_migration.adapters.memory.harness import InMemoryMigrationState, InMemoryUserSource, InMemoryUserTarget
from user_migration.domain.convert.mapping import MIGRATION_DIGEST, MIGRATION_VERSION
from user_migration.domain.errors import InvalidParameter
from user_migration.domain.migrate.migration import Migration
from user_migration.domain.migrate.request import MAX_USER_ID
from user_migration.domain.model import WriteRule
from user_migration.domain.verify.differences import Difference, Problem, VerifyCounts
from user_migration.domain.verify.request import VerifyPageRequest, VerifyRange, VerifyRequest, plan_verify_page
from user_migration.domain.verify.verification import Verification
from user_migration.domain.write.changes import ChangeWrites
from user_migration.domain.write.ledger import WriteLedger
from user_migration.entrypoints.harness import InMemoryHarness
from user_migration.entrypoints.http.app import init_app
from user_migration.entrypoints.library import UserMigration
from user_migration.entrypoints.settings import Settings

NOW = datetime(2026, 11, 25, tzinfo=UTC)
LATER = UPDATED + timedelta(days=3)


@attrs.define
class World:
    source: InMemoryUserSource
    target: InMemoryUserTarget
    state: InMemoryMigrationState
    migration: Migration
    verification: Verification

    async def verify(self, **options) -> tuple[list[Difference], VerifyCounts]:
        found: list[Difference] = []
        summary = await self.verification.verify(VerifyRequest(on_difference=found.append, **options))
        return found, summary.counts


def world(users, source_class=InMemoryUserSource, target_class=InMemoryUserTarget, **options) -> World:
    source = source_class(users)
    target = target_class()
    state = InMemoryMigrationState()
    migration = Migration(source, target, state)
    return World(
        source,
        target,
        state,
        migration,
        Verification(source, target, state, ChangeWrites(WriteLedger(target, state)), **options),
    )


def foreign_item(user_id: int, **changes) -> dict:
    """An item an application wrote: no digest, no version."""
    item = to_item(valid_user(user_id, **changes), NOW)
    del item[MIGRATION_DIGEST], item[MIGRATION_VERSION]
    return item


async def every_kind_of_difference() -> World:
    """1..20 migrated, then: 3 missing, 5 different (its row changed), 7 extra (its row deleted),
    9 newer in DynamoDB, 11 different and someone else's, 13 invalid in the source, 900 extra and
    someone else's."""
    w = world([valid_user(i) for i in range(1, 21)])
    await w.migration.migrate_users(await w.source.read_page(0, 100), dry_run=False)
    del w.target.items[3]
    w.source.put(valid_user(5, email="new5@example.com", updated_at=LATER))
    w.source.delete(7)
    await w.target.write_users_if([prepared_user(9, NOW, updated_at=LATER)], WriteRule.OLDER)
    w.target.items[11] = foreign_item(11, display_name="Changed by the app")
    w.source.put(valid_user(13, email="not-an-email"))
    w.target.items[900] = foreign_item(900)
    return w


EVERY_KIND = [
    Difference(3, Problem.MISSING),
    Difference(5, Problem.DIFFERENT, ("email", "updated_at")),
    Difference(9, Problem.NEWER_IN_DYNAMODB),
    Difference(11, Problem.DIFFERENT, ("display_name",)),
    Difference(13, Problem.INVALID_IN_SOURCE, reasons=("Invalid email format",)),
    Difference(7, Problem.EXTRA),
    Difference(900, Problem.EXTRA),
]


async def test_each_kind_of_difference_is_found_and_nothing_else():
    w = await every_kind_of_difference()
    found, counts = await w.verify(batch_size=4)
    assert found == EVERY_KIND
    assert counts == VerifyCounts(
        checked=19, matching=14, missing=1, different=2, extra=2, newer_in_dynamodb=1, invalid_in_source=1
    )


async def test_a_faithful_target_verifies_clean():
    w = world([valid_user(i) for i in range(1, 31)] + [valid_user(40, email=None)])
    await w.migration.migrate_users(await w.source.read_page(0, 100), dry_run=False)
    progress = []
    summary = await w.verification.verify(VerifyRequest(batch_size=7, on_progress=progress.append))
    assert summary.clean
    assert (summary.counts.checked, summary.counts.matching, summary.counts.invalid_in_source) == (31, 30, 1)
    assert [p.rows_checked for p in progress] == [7, 14, 21, 28, 31, 31]  # five pages of rows, one of ids
    assert progress[-1].items_scanned == 30
    assert w.verification.latest.counts == summary.counts


class ChangingSource(InMemoryUserSource):
    """A source whose rows change right after a page is read: the first look at the page sees
    the rows as read, the second look the changed ones."""

    def __init__(self, users) -> None:
        super().__init__(users)
        self.changes: dict = {}

    async def read_page(self, start_user_id, limit):
        page = await super().read_page(start_user_id, limit)
        for user_id, change in self.changes.items():
            if any(user.id == user_id for user in page):
                change(self)
        return page


class ArrivingTarget(InMemoryUserTarget):
    """A target into which items arrive right after the first comparison of their user (as a sync
    running meanwhile would write them)."""

    def __init__(self) -> None:
        super().__init__()
        self.arriving: dict = {}

    async def compare_with_stored(self, users):
        compared = await super().compare_with_stored(users)
        for user in users:
            if (item := self.arriving.pop(user.user_id, None)) is not None:
                self.items[user.user_id] = item
        return compared


async def test_a_row_changed_between_the_two_looks_is_no_difference():
    w = world([valid_user(i) for i in range(1, 11)], source_class=ChangingSource, target_class=ArrivingTarget)
    await w.migration.migrate_users(await w.source.read_page(0, 100), dry_run=False)
    newer = valid_user(4, email="new4@example.com", updated_at=LATER)

    def updated_and_carried_over(source):
        source.put(newer)
        w.target.items[4] = to_item(newer, NOW)

    # Row 4 changes (and reaches DynamoDB) after its page was read: at first its item is newer
    # than the row as read. Row 8's item is written only after the first comparison.
    w.source.changes = {4: updated_and_carried_over}
    w.target.arriving = {8: w.target.items.pop(8)}
    found, counts = await w.verify(batch_size=5)
    assert found == []
    assert (counts.checked, counts.matching) == (10, 10)
    assert w.target.arriving == {}  # the item did arrive between the two looks


async def test_a_row_changed_between_the_looks_is_reported_as_it_stands():
    w = world([valid_user(i) for i in range(1, 6)], source_class=ChangingSource)
    w.source.changes = {2: lambda source: source.put(valid_user(2, email="not-an-email"))}
    found, _ = await w.verify()
    # Every item is missing at first; at the second look row 2 has become invalid.
    assert [(d.user_id, d.problem) for d in found] == [
        (1, Problem.MISSING),
        (2, Problem.INVALID_IN_SOURCE),
        *((i, Problem.MISSING) for i in range(3, 6)),
    ]


async def test_a_row_deleted_before_the_second_look_is_left_to_the_scan_for_extras():
    w = world([valid_user(i) for i in range(1, 6)], source_class=ChangingSource)
    await w.migration.migrate_users(await w.source.read_page(0, 100), dry_run=False)
    w.target.items[3] = to_item(valid_user(3, email="old@example.com"), NOW)
    w.source.changes = {3: lambda source: source.delete(3)}
    found, counts = await w.verify()
    assert found == [Difference(3, Problem.EXTRA)]  # once, from the scan
    assert (counts.checked, counts.matching, counts.extra) == (5, 4, 1)


FOREIGN = "not written by the migration (no migration_digest): left as it is"


async def test_repair_fixes_missing_different_and_own_extra_and_leaves_the_rest():
    w = await every_kind_of_difference()
    migrated_before = (await w.state.read_progress()).migrated_users
    found, counts = await w.verify(batch_size=4, repair=True)
    assert found == [
        Difference(3, Problem.MISSING, repaired=True),
        Difference(5, Problem.DIFFERENT, ("email", "updated_at"), repaired=True),
        Difference(9, Problem.NEWER_IN_DYNAMODB),
        Difference(11, Problem.DIFFERENT, ("display_name",), repaired=False, why=FOREIGN),
        Difference(13, Problem.INVALID_IN_SOURCE, reasons=("Invalid email format",)),
        Difference(7, Problem.EXTRA, repaired=True),
        Difference(900, Problem.EXTRA, repaired=False, why=FOREIGN),
    ]
    assert (counts.repaired, counts.not_repaired) == (3, 2)
    # The counted paths: the missing item counted, the deleted one taken off.
    assert (await w.state.read_progress()).migrated_users == migrated_before + 1 - 1
    assert 7 not in w.target.items
    assert w.target.items[5]["email"] == {"S": "new5@example.com"}
    assert w.target.items[11] == foreign_item(11, display_name="Changed by the app")

    again, _ = await w.verify(batch_size=4)
    assert [(d.user_id, d.problem) for d in again] == [
        (9, Problem.NEWER_IN_DYNAMODB),
        (11, Problem.DIFFERENT),
        (13, Problem.INVALID_IN_SOURCE),
        (900, Problem.EXTRA),
    ]


async def test_repair_of_a_row_changed_without_a_new_version():
    """A row corrected without moving its version (`update_column`, an admin's SQL): the
    migration's own item, unchanged since, is replaced by what the row converts to now."""
    w = world([valid_user(i) for i in range(1, 4)])
    await w.migration.migrate_users(await w.source.read_page(0, 100), dry_run=False)
    w.source.put(valid_user(2, display_name="Corrected"))  # same updated_at: same version
    found, _ = await w.verify(repair=True)
    assert found == [Difference(2, Problem.DIFFERENT, ("display_name",), repaired=True)]
    assert w.target.items[2]["display_name"] == {"S": "Corrected"}
    assert (await w.verify())[0] == []


async def test_repair_keeps_an_item_changed_in_dynamodb_as_new_as_its_row():
    """The migration's item that someone changed in DynamoDB is theirs now: never replaced, and
    reported with the reason."""
    w = world([valid_user(i) for i in range(1, 4)])
    await w.migration.migrate_users(await w.source.read_page(0, 100), dry_run=False)
    w.target.items[2]["display_name"] = {"S": "edited"}
    found, _ = await w.verify(repair=True)
    assert found == [Difference(2, Problem.DIFFERENT, ("display_name",), repaired=False, why=CHANGED_SINCE_WRITTEN)]
    assert w.target.items[2]["display_name"] == {"S": "edited"}


async def test_a_range_verifies_only_its_rows_and_items():
    w = await every_kind_of_difference()
    found, counts = await w.verify(start_user_id=4, end_user_id=10, batch_size=3)
    assert [(d.user_id, d.problem) for d in found] == [
        (5, Problem.DIFFERENT),
        (9, Problem.NEWER_IN_DYNAMODB),
        (7, Problem.EXTRA),
    ]
    assert counts.checked == 6  # 4..10 without 7


async def test_stop_ends_the_run_after_the_pages_in_hand():
    w = world([valid_user(i) for i in range(1, 101)])
    stop = asyncio.Event()
    seen = []

    def progress(at):
        seen.append(at)
        stop.set()

    summary = await w.verification.verify(VerifyRequest(batch_size=10, on_progress=progress, stop=stop))
    assert summary.stopped_early
    assert summary.counts.checked < 100


async def test_one_page_for_http_with_its_gaps_probed():
    w = await every_kind_of_difference()
    first = await w.verification.verify_page(VerifyPageRequest(0, 10))
    assert [(d.user_id, d.problem) for d in first.differences] == [
        (3, Problem.MISSING),
        (5, Problem.DIFFERENT),
        (7, Problem.EXTRA),  # in the gap between the page's rows
        (9, Problem.NEWER_IN_DYNAMODB),
        (11, Problem.DIFFERENT),
    ]
    assert (first.next_start_user_id, first.extra_checked, first.extra_checked_above) == (12, True, None)
    assert first.counts.checked == 10
    last = await w.verification.verify_page(VerifyPageRequest(12, 10))
    # The last page searches every id above its rows (the target holds at most 10 x 10 items): 900,
    # the application's, beyond the highest id the migration wrote (20), is found too.
    assert [(d.user_id, d.problem) for d in last.differences] == [
        (13, Problem.INVALID_IN_SOURCE),
        (900, Problem.EXTRA),
    ]
    assert (last.next_start_user_id, last.extra_checked, last.extra_checked_above) == (None, True, True)
    assert w.verification.latest.counts == last.counts


async def test_a_last_page_over_a_large_target_says_it_did_not_search_above_its_rows():
    w = await every_kind_of_difference()  # 20 items, more than 10 x 1
    w.source.delete(20)
    page = await w.verification.verify_page(VerifyPageRequest(19, 1))
    assert page.next_start_user_id == 20
    last = await w.verification.verify_page(VerifyPageRequest(20, 1))
    # Not scanned: the ids up to the highest the migration wrote are probed (20 is found), 900 is not.
    assert [(d.user_id, d.problem) for d in last.differences] == [(20, Problem.EXTRA)]
    assert (last.next_start_user_id, last.extra_checked, last.extra_checked_above) == (None, False, False)


async def test_a_page_whose_gaps_are_too_wide_says_its_extras_were_not_checked():
    w = world([valid_user(1), valid_user(5_000)])
    await w.migration.migrate_users(await w.source.read_page(0, 100), dry_run=False)
    w.source.delete(1)
    page = await w.verification.verify_page(VerifyPageRequest(0, 2))
    assert (page.extra_checked, page.next_start_user_id, page.counts.checked) == (False, None, 1)
    assert page.differences == ()  # 1 is extra, but the gap 0..5000 holds more than 10 x 2 ids
    narrow = await w.verification.verify_page(VerifyPageRequest(0, 1000))
    assert narrow.extra_checked
    assert narrow.differences == (Difference(1, Problem.EXTRA),)


async def test_an_empty_source_page_probes_up_to_the_highest_migrated_id():
    w = world([valid_user(i) for i in range(1, 4)])
    await w.migration.migrate_users(await w.source.read_page(0, 100), dry_run=False)
    for user_id in (1, 2, 3):
        w.source.delete(user_id)
    page = await w.verification.verify_page(VerifyPageRequest(0, 100))
    assert [d.user_id for d in page.differences] == [1, 2, 3]
    assert {d.problem for d in page.differences} == {Problem.EXTRA}


@pytest.mark.parametrize(
    ("arguments", "parameter"),
    [
        ({"start_user_id": 5, "end_user_id": 4}, "end_user_id"),
        ({"end_user_id": MAX_USER_ID + 1}, "end_user_id"),
        ({"start_user_id": -1}, "start_user_id"),
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": 1001}, "batch_size"),
    ],
)
def test_a_range_is_checked(arguments, parameter):
    with pytest.raises(InvalidParameter) as raised:
        VerifyRange(**arguments)
    assert raised.value.parameter == parameter


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ([("batch_size", "0")], "batch_size"),
        ([("batch_size", "x")], "batch_size"),
        ([("start_user_id", "-3")], "start_user_id"),
        ([("start_user_id", str(MAX_USER_ID + 1))], "start_user_id"),
        ([("start_user_id", "1"), ("start_user_id", "2")], "start_user_id"),
        ([("repair", "true")], "repair"),
    ],
)
def test_a_page_query_is_checked(query, parameter):
    with pytest.raises(InvalidParameter) as raised:
        plan_verify_page(query)
    assert raised.value.parameter == parameter


def test_a_page_query():
    assert plan_verify_page([]) == VerifyPageRequest(0, 100)
    assert plan_verify_page([("start_user_id", "7"), ("batch_size", "3")]) == VerifyPageRequest(7, 3)


async def test_the_library_and_the_app_of_one_container_share_the_latest_verify(aiohttp_client):
    harness = InMemoryHarness.with_users([valid_user(i) for i in range(1, 6)])
    container = harness.container()
    client = await aiohttp_client(await init_app(Settings(api_tokens=(harness.token,)), container))
    auth = {"Authorization": f"Bearer {harness.token}"}
    assert "user_migration_verify_differences" not in await (await client.get("/metrics", headers=auth)).text()
    async with UserMigration(container) as migration:
        summary = await migration.verify(VerifyRequest(batch_size=2))
        assert (summary.counts.missing, summary.clean) == (5, False)
        page = await migration.verify_page(start_user_id=3, batch_size=2)
        assert [d.user_id for d in page.differences] == [3, 4]
        assert page.next_start_user_id == 5
        await migration.migrate_batch()
        assert (await migration.verify()).clean
    text = await (await client.get("/metrics", headers=auth)).text()
    assert 'user_migration_verify_differences{problem="missing"} 0.0' in text
    assert "user_migration_verify_checked 5.0" in text
    response = await client.get("/m2/migration/verify", params={"batch_size": "2"}, headers=auth)
    assert (await response.json())["next_start_user_id"] == 3
    assert "user_migration_verify_checked 2.0" in await (await client.get("/metrics", headers=auth)).text()
