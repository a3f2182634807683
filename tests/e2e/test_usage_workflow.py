"""The usage workflow of the API document, over HTTP, on the real stack."""

from __future__ import annotations

from tests.e2e.conftest import LiveService
from tests.factories import from_item, valid_user
from tests.real_adapters import execute, insert_users
from tests.real_adapters import quote_table_name as quoted

REPORT_FIELDS = {
    "migrated_count",
    "skipped_count",
    "failed_count",
    "failed_user_ids",
    "errors",
    "next_start_user_id",
    "dry_run",
    "processing_time_ms",
}


def seed(live: LiveService) -> None:
    users = [valid_user(i) for i in range(1, 26)]
    users[6] = valid_user(7, email="not-an-email")
    users[11] = valid_user(12, username="x")
    insert_users(live.settings.database_url, live.settings.source_table, users)


async def test_stats_dry_run_batches_retry_stats(live: LiveService):
    seed(live)

    # 1. Check statistics (the app's kept count, once it has counted the rows just seeded).
    stats = await live.fresh_stats()
    assert stats == {
        "total_postgres_users": 25,
        "total_dynamo_users": 0,
        "pending_migration": 25,
        "last_migrated_user_id": None,
        "total_postgres_users_as_of": stats["total_postgres_users_as_of"],
        "total_postgres_users_exact": True,
        "failed_users": 0,
    }

    # 2. Dry run: validates and reports, writes nothing.
    status, dry = await live.get("/m2/migration/users", batch_size=10, dry_run="true")
    assert status == 200
    assert set(dry) == REPORT_FIELDS
    assert dry["dry_run"] is True
    assert (dry["migrated_count"], dry["skipped_count"], dry["failed_count"]) == (9, 0, 1)
    assert dry["failed_user_ids"] == [7]
    assert dry["errors"] == ["User 7: Invalid email format"]
    assert dry["next_start_user_id"] == 11
    assert await live.target.count_users() == 0
    assert (await live.get("/m2/migration/stats"))[1]["total_dynamo_users"] == 0

    # 3. Batches, following next_start_user_id.
    reports = []
    params = {"batch_size": 10}
    while True:
        status, report = await live.get("/m2/migration/users", **params)
        assert status == 200
        reports.append(report)
        if report["next_start_user_id"] is None:
            break
        params = {"batch_size": 10, "start_user_id": report["next_start_user_id"]}
    assert [r["next_start_user_id"] for r in reports] == [11, 21, None]
    assert sum(r["migrated_count"] for r in reports) == 23
    assert [i for r in reports for i in r["failed_user_ids"]] == [7, 12]
    assert reports[1]["errors"] == ["User 12: Invalid username format"]
    assert all(r["dry_run"] is False and r["processing_time_ms"] >= 0 for r in reports)

    # 4. Fix the failed row, then retry that user by user_id.
    execute(
        live.settings.database_url,
        f"UPDATE {quoted(live.settings.source_table)} SET email = %s WHERE id = 7",
        ("user7@example.com",),
    )
    status, retry = await live.get("/m2/migration/users", user_id=7)
    assert status == 200
    assert (retry["migrated_count"], retry["failed_count"], retry["next_start_user_id"]) == (1, 0, None)
    item = await live.target.read_item(7)
    assert item is not None
    assert from_item(item) == valid_user(7)

    # 5. Statistics again.
    status, stats = await live.get("/m2/migration/stats")
    assert {name: stats[name] for name in list(stats)[:4]} == {
        "total_postgres_users": 25,
        "total_dynamo_users": 24,
        "pending_migration": 1,
        "last_migrated_user_id": 25,
    }
    assert await live.target.count_users() == 24

    # 6. A second run over everything skips what is there and writes nothing new.
    status, again = await live.get("/m2/migration/users", batch_size=1000)
    assert (again["migrated_count"], again["skipped_count"], again["failed_user_ids"]) == (0, 24, [12])
    assert (await live.state.read_progress()).migrated_users == 24


async def test_single_user_that_is_not_in_postgres_is_404(live: LiveService):
    status, body = await live.get("/m2/migration/users", user_id=424242)
    assert status == 404
    assert body == {"error": "user_not_found", "message": "User 424242 does not exist in the source database"}


async def test_dry_run_of_a_single_user_writes_nothing(live: LiveService):
    seed(live)
    status, report = await live.get("/m2/migration/users", user_id=3, dry_run="1")
    assert (status, report["migrated_count"], report["dry_run"]) == (200, 1, True)
    assert await live.target.read_item(3) is None
    assert (await live.state.read_progress()).migrated_users == 0


async def test_overlapping_concurrent_requests_write_each_user_once(live: LiveService):
    import asyncio

    seed(live)
    starts = [1, 5, 1, 10, 3, 15, 1]
    results = await asyncio.gather(
        *(live.get("/m2/migration/users", batch_size=10, start_user_id=start) for start in starts)
    )
    assert all(status == 200 for status, _ in results)
    total_written = sum(report["migrated_count"] for _, report in results)
    stored = await live.target.count_users()
    assert stored == total_written == 22  # ids 1..24 less the two invalid ones (7 and 12)
    assert (await live.state.read_progress()).migrated_users == stored
