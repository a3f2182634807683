"""The public test harness: the production wiring with the ports swapped for in-memory adapters."""

from __future__ import annotations

from decimal import Decimal

import pytest
from dependency_injector.errors import Error as InjectionError

from tests.factories import from_item, valid_user
from user_migration.adapters.memory.harness import InMemoryUserSource
from user_migration.container import Container
from user_migration.domain.convert.mapping import parse_mapping
from user_migration.domain.errors import UserNotFound
from user_migration.domain.migrate.request import RunRequest
from user_migration.domain.model import SourceUser
from user_migration.domain.sync.request import SyncRequest
from user_migration.entrypoints.harness import InMemoryHarness


async def test_library_on_in_memory_adapters():
    harness = InMemoryHarness.with_users([valid_user(i) for i in range(1, 8)] + [valid_user(8, email=None)])
    async with harness.library() as migration:
        first = await migration.migrate_batch(batch_size=5)
        second = await migration.migrate_batch(batch_size=5, start_user_id=first.next_start_user_id)
        assert (first.migrated_count, second.migrated_count, second.failed_user_ids) == (5, 2, [8])
        stats = await migration.stats()
        assert (stats.total_postgres_users, stats.total_dynamo_users, stats.pending_migration) == (8, 7, 1)
        with pytest.raises(UserNotFound):
            await migration.migrate_user(99)
    assert from_item(harness.target.items[3]) == valid_user(3)


async def test_a_sync_pass_as_workers_on_in_memory_adapters():
    harness = InMemoryHarness.with_users([valid_user(i) for i in range(1, 30)])
    async with harness.library() as migration:
        await migration.migrate_all(RunRequest(batch_size=10))
        harness.source.put(valid_user(40))
        harness.source.delete(5)
        worked = await migration.sync_as_worker(SyncRequest(batch_size=10))
        assert (worked.number, worked.leases.unfinished_segments, worked.whole_pass) == (1, 0, 2)
        assert (worked.summary.written, worked.summary.deleted) == (1, 1)
        assert (await harness.sync_leases.run_number(), await harness.sync_passes.read(1)) == (1, {0: 2})
    assert sorted(harness.target.items) == [*range(1, 5), *range(6, 30), 40]


async def test_library_must_be_entered_first():
    with pytest.raises(RuntimeError, match="async with"):
        await InMemoryHarness.with_users().library().stats()


async def test_http_app_on_in_memory_adapters(aiohttp_client):
    harness = InMemoryHarness.with_users([valid_user(1), valid_user(2)])
    harness.target.refuse[2] = "refused by the test"
    client = await aiohttp_client(await harness.app())
    response = await client.get("/m2/migration/users", headers={"Authorization": f"Bearer {harness.token}"})
    assert response.status == 200
    body = await response.json()
    assert body == {
        "migrated_count": 1,
        "skipped_count": 0,
        "failed_count": 1,
        "failed_user_ids": [2],
        "errors": ["User 2: Write failed: refused by the test"],
        "next_start_user_id": None,
        "dry_run": False,
        "processing_time_ms": body["processing_time_ms"],
    }
    assert list(harness.target.items) == [1]
    anonymous = await client.get("/m2/migration/stats")
    assert anonymous.status == 401


async def test_the_dashboard_and_its_data_on_in_memory_adapters(aiohttp_client):
    harness = InMemoryHarness.with_users([valid_user(1), valid_user(2, email=None), valid_user(3)])
    harness.target.refuse[3] = "refused by the test"
    client = await aiohttp_client(await harness.app())
    auth = {"Authorization": f"Bearer {harness.token}"}
    await client.get("/m2/migration/users", headers=auth)
    stats = await (await client.get("/m2/migration/stats", headers=auth)).json()
    overview = await (await client.get("/m2/migration/overview", headers=auth)).json()
    assert overview["stats"] == stats
    assert overview["failures"] == {
        "failing_users": 2,
        "by_reason": [
            {"code": "missing_email", "users": 1, "example_user_ids": [2]},
            {"code": "write_failed", "users": 1, "example_user_ids": [3]},
        ],
    }
    assert [(cell["state"], cell["failing_users"]) for cell in overview["segments"]["cells"]] == [("failing", 2)]
    assert (overview["verify"], overview["write_budget"]["budget_units_per_second"]) == (None, None)
    failures = await client.get("/m2/migration/failures", headers=auth)
    assert failures.content_type == "application/x-ndjson"
    assert await failures.text() == (
        '{"user_id": 2, "reason_codes": ["missing_email"]}\n{"user_id": 3, "reason_codes": ["write_failed"]}\n'
    )
    # The page holds no data: anyone may load it (and what it loads); the data needs the token.
    for path in (
        "/m2/migration/dashboard",
        "/m2/migration/dashboard/dashboard.js",
        "/m2/migration/dashboard/dashboard.css",
    ):
        page = await client.get(path)
        assert page.status == 200
        assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    assert (await client.get("/m2/migration/overview")).status == 401
    assert (await client.get("/m2/migration/failures")).status == 401


def test_the_container_refuses_an_adapter_that_is_not_the_port():
    container = Container()
    container.user_source.override(object())
    with pytest.raises(InjectionError, match="is not an instance of"):
        container.user_source()


def test_the_container_accepts_any_adapter_of_the_port():
    container = Container()
    source = InMemoryUserSource()
    container.user_source.override(source)
    assert container.user_source() is source


async def test_the_harness_takes_a_mapping_of_ones_own(aiohttp_client):
    mapping = parse_mapping(
        {
            "source": {"table": "accounts", "key": "account_id"},
            "target": {"key_attribute": "uid"},
            "attributes": {"handle": "login"},
            "rules": {"handle": {"required": True, "max_length": 8}, "tier": {"allowed": ["free", "pro"]}},
        },
        origin="test",
    )
    rows = [
        SourceUser(1, {"handle": "ann", "tier": "pro", "credits": Decimal("1.50")}),
        SourceUser(2, {"handle": "a-very-long-handle", "tier": "gold"}),  # breaks both rules
    ]
    harness = InMemoryHarness.with_users(rows, mapping=mapping)
    client = await aiohttp_client(await harness.app())
    response = await client.get("/m2/migration/users", headers={"Authorization": f"Bearer {harness.token}"})
    report = await response.json()
    assert (report["migrated_count"], report["failed_user_ids"]) == (1, [2])
    assert report["errors"] == ["User 2: Invalid handle: longer than 8 characters; Invalid tier 'gold'"]
    item = harness.target.items[1]
    assert item["uid"] == {"N": "1"}
    assert (item["handle"], item["tier"], item["credits"]) == ({"S": "ann"}, {"S": "pro"}, {"N": "1.50"})
    async with harness.library() as migration:
        assert migration.mapping.key_attribute == "uid"
