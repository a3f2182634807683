"""`GET /m2/migration/stats` over HTTP on the real stack: the source's count as of a stated moment
(or estimated when asked), the users that failed, the 400 of a bad `postgres_count`, /metrics."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.e2e.conftest import AUTH, STATS, LiveService
from tests.factories import valid_user
from tests.real_adapters import insert_users
from user_migration.domain.convert.timestamps import parse_timestamp

FIELDS = [
    "total_postgres_users",
    "total_dynamo_users",
    "pending_migration",
    "last_migrated_user_id",
    "total_postgres_users_as_of",
    "total_postgres_users_exact",
    "failed_users",
]


def seed(live: LiveService) -> None:
    users = [valid_user(i) for i in range(1, 9)] + [valid_user(9, email="not an email"), valid_user(10, email=None)]
    insert_users(live.settings.database_url, live.settings.source_table, users)


async def test_the_count_is_exact_as_of_the_moment_it_states(live: LiveService):
    seed(live)
    before = datetime.now(UTC)
    stats = await live.fresh_stats()
    assert list(stats) == FIELDS
    assert (stats["total_postgres_users"], stats["total_postgres_users_exact"]) == (10, True)
    as_of = parse_timestamp(stats["total_postgres_users_as_of"])
    assert before <= as_of <= datetime.now(UTC)
    assert stats["total_postgres_users_as_of"].endswith("Z")

    status, report = await live.get("/m2/migration/users", batch_size=100)
    assert (status, report["migrated_count"], report["failed_user_ids"]) == (200, 8, [9, 10])
    status, after = await live.get(STATS, postgres_count="exact")
    assert status == 200
    assert (after["total_dynamo_users"], after["pending_migration"], after["last_migrated_user_id"]) == (8, 2, 8)


async def test_the_estimate_when_asked_for_speed(live: LiveService):
    seed(live)
    status, stats = await live.get(STATS, postgres_count="estimate")
    assert status == 200
    assert list(stats) == FIELDS
    # A table this small and never analysed is counted; the answer still says it was not the kept count.
    assert (stats["total_postgres_users"], stats["total_postgres_users_exact"]) == (10, False)
    assert abs((parse_timestamp(stats["total_postgres_users_as_of"]) - datetime.now(UTC)).total_seconds()) < 5


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("postgres_count=banana", "postgres_count"),
        ("postgres_count=", "postgres_count"),
        ("postgres_count=exact&postgres_count=estimate", "postgres_count"),
        ("postgres_count=exact&postgres_count=exact", "postgres_count"),
    ],
)
async def test_a_bad_query_is_400_naming_the_parameter(live: LiveService, query, parameter):
    response = await live.client.get(f"{STATS}?{query}", headers=AUTH)
    assert response.status == 400
    body = await response.json()
    assert body["error"] == "invalid_parameter"
    assert parameter in body["message"]


async def test_failed_users_counts_the_users_whose_latest_attempt_failed(live: LiveService):
    seed(live)
    await live.get("/m2/migration/users", batch_size=100)
    status, stats = await live.get(STATS)
    assert status == 200
    assert stats["failed_users"] == 2


async def test_metrics_show_the_statistics_from_the_kept_count(live: LiveService):
    seed(live)
    stats = await live.fresh_stats()
    text = await (await live.client.get("/metrics", headers=AUTH)).text()
    assert "user_migration_total_postgres_users 10.0" in text
    assert "user_migration_total_postgres_users_exact 1.0" in text
    assert "user_migration_total_dynamo_users 0.0" in text
    assert "user_migration_pending_migration 10.0" in text
    assert "user_migration_failed_users 0.0" in text
    as_of = parse_timestamp(stats["total_postgres_users_as_of"]).timestamp()
    line = next(line for line in text.splitlines() if line.startswith("user_migration_total_postgres_users_as_of"))
    assert float(line.split()[1]) >= as_of


async def test_metrics_show_the_runs_segments_from_the_lease_table(live: LiveService):
    seed(live)  # 10 users: one segment, pending until a worker takes it
    text = await (await live.client.get("/metrics", headers=AUTH)).text()
    assert 'user_migration_segments{state="pending"} 1.0' in text
    assert 'user_migration_segments{state="done"} 0.0' in text
    assert "user_migration_run 1.0" in text
    assert "user_migration_lease_takes_total 0.0" in text
