"""Text and uuid keys read by the PostgreSQL source: pages in the key's order (bytes, `COLLATE "C"`, for
text), split points sampled from the key's real distribution; and the paths that change items after
a backfill (`verify --repair`, `sync --workers`) on Keycloak's `user_entity` and Supabase's
`auth.users` (real PostgreSQL, moto server)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.cli_runner import cli, run_process
from tests.keyed_tables import ODD_TEXT_IDS, KeyedTable, keycloak_table, supabase_table, uuid7
from user_migration.adapters.dynamodb.client import dynamodb_client
from user_migration.adapters.postgres.source import PostgresUserSource
from user_migration.domain.convert.mapping import UserMapping
from user_migration.domain.keys import KeyKind
from user_migration.domain.parallel.segments import SegmentPlan


def ok(result: Any) -> dict[str, Any]:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout) if result.stdout.strip().startswith("{") else {}


async def test_text_pages_follow_byte_order_whatever_the_collation(pool, postgres_dsn, dynamodb_endpoint, tmp_path):
    table = keycloak_table(postgres_dsn, dynamodb_endpoint, tmp_path, len(ODD_TEXT_IDS))
    source = PostgresUserSource(pool, UserMapping(table=table.table, key="id", key_kind=KeyKind.TEXT, carry=True))
    seen: list[str] = []
    start: str = KeyKind.TEXT.first  # type: ignore[assignment]
    while page := await source.read_page(start, 3):
        seen.extend(str(user.id) for user in page)
        following = KeyKind.TEXT.after(page[-1].id)
        assert following is not None
        start = str(following)
    # Python orders str by code point, which is UTF-8's byte order: what COLLATE "C" gives.
    assert seen == sorted(ODD_TEXT_IDS)
    assert seen.index("Admin") < seen.index("Zoë") < seen.index("a b") < seen.index("admin") < seen.index("é")
    assert await source.count_users("a") == sum(1 for user_id in ODD_TEXT_IDS if user_id >= "a")
    assert await source.existing_user_ids(["Zoë", "nobody", "a\u0001"]) == {"Zoë", "a\u0001"}


async def test_uuid_split_points_follow_the_real_distribution(pool, postgres_dsn, dynamodb_endpoint, tmp_path):
    # Time-ordered (v7) uuids crowd in a sliver of the id space: an even split of the space would put
    # them all in one segment; sampled split points give each segment its share.
    table = supabase_table(postgres_dsn, dynamodb_endpoint, tmp_path, 0)
    table.insert_many([(uuid7(), f"u{index}@example.com") for index in range(600)])
    source = PostgresUserSource(pool, UserMapping(table=table.table, key="id", key_kind=KeyKind.UUID, carry=True))
    samples = await source.segment_boundaries(4)
    plan = SegmentPlan.from_samples(samples, KeyKind.UUID)
    assert len(plan) == 4
    sizes = [len(await source.read_page(segment.lowest, 1000, segment.highest)) for segment in plan]
    assert sum(sizes) == 600
    assert min(sizes) >= 140, sizes
    assert plan.samples() == samples  # another kind of lease on the same segments rebuilds the same plan


@pytest.fixture(params=["uuid", "text"])
def keyed(request: pytest.FixtureRequest, postgres_dsn: str, dynamodb_endpoint: str, tmp_path: Path) -> KeyedTable:
    make = supabase_table if request.param == "uuid" else keycloak_table
    table = make(postgres_dsn, dynamodb_endpoint, tmp_path, 30)
    ok(cli(table.env, "init-tables"))
    return table


async def test_verify_repair_puts_back_what_was_lost_or_changed(keyed: KeyedTable):
    ok(cli(keyed.env, "migrate", "--all", "--json"))
    lost, changed = keyed.ids[2], keyed.ids[7]
    async with dynamodb_client(keyed.env["DYNAMODB_ENDPOINT_URL"], "us-east-1") as client:
        await client.delete_item(TableName=keyed.env["DYNAMODB_TABLE"], Key={"id": {"S": lost}})
    keyed.update_email(changed, "changed-in-postgres@example.com")
    found = cli(keyed.env, "verify", "--json")
    assert found.returncode == 1, found.stderr
    counts = json.loads(found.stdout)
    assert (counts["missing"], counts["different"]) == (1, 1)
    repaired = ok(cli(keyed.env, "verify", "--repair", "--json"))
    assert repaired["repaired"] == 2
    clean = ok(cli(keyed.env, "verify", "--json"))
    assert (clean["checked"], clean["matching"]) == (30, 30)
    assert await keyed.emails() == keyed.source_emails()


async def test_sync_workers_share_the_changes(keyed: KeyedTable):
    ok(cli(keyed.env, "migrate", "--all", "--json"))
    for index in range(5):
        keyed.update_email(keyed.ids[index], f"w{index}@example.com")
    keyed.delete(keyed.ids[-1])
    keyed.insert(str(uuid.uuid4()), "worker-new@example.com")
    synced = ok(run_process(keyed.env, "sync", "--once", "--workers", "2", "--json"))
    assert synced["deleted"] == 1
    assert await keyed.emails() == keyed.source_emails()
