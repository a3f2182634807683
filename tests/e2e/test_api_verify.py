"""`GET /m2/migration/verify` over HTTP on the real stack: one page at a time, each kind of
difference found and nothing else, the gaps probed for extra items, parameters checked, the
last page's differences on /metrics."""

from __future__ import annotations

import time
from datetime import timedelta

import attrs
import jwt
import pytest

from tests.e2e.conftest import AUTH, LiveService
from tests.factories import UPDATED, prepared_user, to_item, valid_user
from tests.real_adapters import execute, insert_users
from tests.real_adapters import quote_table_name as quoted
from user_migration.adapters.dynamodb.codec import key_of
from user_migration.domain.convert.mapping import MIGRATION_DIGEST, MIGRATION_VERSION
from user_migration.domain.model import WriteRule
from user_migration.entrypoints.http.app import init_app
from user_migration.entrypoints.http.auth import JwtRules

VERIFY = "/m2/migration/verify"
LATER = UPDATED + timedelta(days=2)
COUNT_FIELDS = ("checked", "matching", "missing", "different", "extra", "newer_in_dynamodb", "invalid_in_source")


async def every_kind_of_difference(live: LiveService, client) -> None:
    """Users 1..30 migrated over the API, then: 4 missing, 6 different, 9 extra (row deleted),
    12 newer in DynamoDB, 15 invalid in the source, 35 extra and someone else's (no row)."""
    database, table = live.settings.database_url, quoted(live.settings.source_table)
    insert_users(database, live.settings.source_table, [valid_user(i) for i in range(1, 31)])
    status, report = await live.get("/m2/migration/users", batch_size=100)
    assert (status, report["migrated_count"]) == (200, 30)
    users_table = live.settings.dynamodb_table
    await client.delete_item(TableName=users_table, Key=key_of(4, "user_id"))
    execute(database, f"UPDATE {table} SET display_name = 'Renamed' WHERE id = 6")
    execute(database, f"DELETE FROM {table} WHERE id = 9")
    await live.target.write_users_if([prepared_user(12, updated_at=LATER)], WriteRule.OLDER)
    execute(database, f"UPDATE {table} SET email = 'not-an-email' WHERE id = 15")
    foreign = to_item(valid_user(35), UPDATED)
    del foreign[MIGRATION_DIGEST], foreign[MIGRATION_VERSION]
    await client.put_item(TableName=users_table, Item=foreign)


async def test_pages_find_each_kind_of_difference_and_nothing_else(live: LiveService, dynamodb):
    await every_kind_of_difference(live, dynamodb)
    pages = []
    params = {"batch_size": 10}
    while True:
        status, page = await live.get(VERIFY, **params)
        assert status == 200, page
        pages.append(page)
        if page["next_start_user_id"] is None:
            break
        params = {"batch_size": 10, "start_user_id": page["next_start_user_id"]}
    assert [page["next_start_user_id"] for page in pages] == [12, 22, None]
    assert all(page["extra_checked"] for page in pages)
    assert [page["extra_checked_above"] for page in pages] == [None, None, True]
    differences = [difference for page in pages for difference in page["differences"]]
    assert differences == [
        {"user_id": 4, "problem": "missing", "fields": []},
        {"user_id": 6, "problem": "different", "fields": ["display_name"]},
        {"user_id": 9, "problem": "extra", "fields": []},
        {"user_id": 12, "problem": "newer_in_dynamodb", "fields": []},
        {"user_id": 15, "problem": "invalid_in_source", "fields": [], "reasons": ["Invalid email format"]},
        # The application's item above the highest source id (and the highest the migration wrote, 30):
        # the last page scans the table (30 items, at most 10 x batch_size) for the ids above its rows.
        {"user_id": 35, "problem": "extra", "fields": []},
    ]
    totals = {name: sum(page[name] for page in pages) for name in COUNT_FIELDS}
    assert totals == {
        "checked": 29,
        "matching": 25,
        "missing": 1,
        "different": 1,
        "extra": 2,
        "newer_in_dynamodb": 1,
        "invalid_in_source": 1,
    }

    # /metrics shows the last verify in this process: the last page (ids 22..30, and 35 extra).
    response = await live.client.get("/metrics", headers=AUTH)
    text = await response.text()
    assert 'user_migration_verify_differences{problem="missing"} 0.0' in text
    assert "user_migration_verify_checked 9.0" in text
    status, _ = await live.get(VERIFY, batch_size=10)
    text = await (await live.client.get("/metrics", headers=AUTH)).text()
    assert 'user_migration_verify_differences{problem="missing"} 1.0' in text
    assert 'user_migration_verify_differences{problem="extra"} 1.0' in text
    assert 'user_migration_verify_differences{problem="different"} 1.0' in text
    assert 'route="/m2/migration/verify",status="200"' in text


async def test_a_page_whose_gap_is_too_wide_says_so(live: LiveService):
    insert_users(live.settings.database_url, live.settings.source_table, [valid_user(1), valid_user(50_000)])
    await live.get("/m2/migration/users", batch_size=100)
    status, page = await live.get(VERIFY, batch_size=5)
    assert status == 200
    assert (page["checked"], page["matching"], page["extra_checked"], page["next_start_user_id"]) == (2, 2, False, None)


async def test_a_last_page_over_a_table_too_large_to_scan_says_it_did_not_search_above(live: LiveService, dynamodb):
    insert_users(live.settings.database_url, live.settings.source_table, [valid_user(i) for i in range(1, 13)])
    status, report = await live.get("/m2/migration/users", batch_size=100)
    assert (status, report["migrated_count"]) == (200, 12)
    foreign = to_item(valid_user(5_000), UPDATED)
    del foreign[MIGRATION_DIGEST], foreign[MIGRATION_VERSION]
    await dynamodb.put_item(TableName=live.settings.dynamodb_table, Item=foreign)
    execute(live.settings.database_url, f"DELETE FROM {quoted(live.settings.source_table)} WHERE id = 12")

    status, page = await live.get(VERIFY, batch_size=1, start_user_id=11)
    assert (status, page["next_start_user_id"], page["extra_checked_above"]) == (200, 12, None)
    status, last = await live.get(VERIFY, batch_size=1, start_user_id=12)

    # 13 items, more than 10 x 1: not scanned; the ids up to the highest the migration wrote are probed.
    assert status == 200
    assert last["differences"] == [{"user_id": 12, "problem": "extra", "fields": []}]
    assert (last["next_start_user_id"], last["extra_checked"], last["extra_checked_above"]) == (None, False, False)
    # A page size whose 10 x covers the table finds the application's item above every row too.
    status, wide = await live.get(VERIFY, batch_size=2, start_user_id=11)
    assert [difference["user_id"] for difference in wide["differences"]] == [12, 5_000]
    assert (wide["next_start_user_id"], wide["extra_checked"], wide["extra_checked_above"]) == (None, True, True)


async def test_no_metrics_before_the_first_verify(live: LiveService):
    text = await (await live.client.get("/metrics", headers=AUTH)).text()
    assert "user_migration_verify_differences" not in text


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ({"batch_size": "0"}, "batch_size"),
        ({"batch_size": "1001"}, "batch_size"),
        ({"start_user_id": "-1"}, "start_user_id"),
        ({"start_user_id": "abc"}, "start_user_id"),
        ({"repair": "true"}, "repair"),
    ],
)
async def test_bad_parameters_are_a_400_naming_them(live: LiveService, query, parameter):
    status, body = await live.get(VERIFY, **query)
    assert status == 400
    assert body["error"] == "invalid_parameter"
    assert parameter in body["message"]


async def test_a_read_scope_is_enough(aiohttp_client, live: LiveService):
    secret = "an-hs256-secret-for-the-verify-tests-0123456789"
    client = await aiohttp_client(await init_app(attrs.evolve(live.settings, jwt_rules=JwtRules("HS256", secret))))
    reader = jwt.encode({"exp": int(time.time()) + 600, "scope": "migration:read"}, secret, algorithm="HS256")
    response = await client.get(VERIFY, headers={"Authorization": f"Bearer {reader}"})
    assert response.status == 200
    assert (await response.json())["next_start_user_id"] is None
    assert (await client.get(VERIFY)).status == 401
