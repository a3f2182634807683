"""Health, readiness, metrics and request ids, over HTTP on the real stack."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from tests.e2e.conftest import AUTH, LiveService
from tests.factories import valid_user
from tests.real_adapters import create_dynamodb_tables, create_source_table, insert_users, unique_name
from user_migration.domain.model import ChangeCursor
from user_migration.entrypoints.demo.embedded import EmbeddedDynamoDb
from user_migration.entrypoints.http.app import init_app


async def test_healthz_needs_no_token_and_calls_nothing(aiohttp_client, live_settings):
    # A database that does not exist: liveness must not care.
    app = await init_app(live_settings(database_url="postgresql://nobody@127.0.0.1:9/none"))
    client = await aiohttp_client(app)
    response = await client.get("/healthz")
    assert response.status == 200
    assert await response.json() == {"status": "ok"}


async def test_readyz_checks_postgres_and_both_tables(live: LiveService):
    response = await live.client.get("/readyz")
    assert response.status == 200
    assert await response.json() == {
        "status": "ready",
        "checks": {"postgres": "ok", "dynamodb_users_table": "ok", "dynamodb_state_table": "ok"},
    }


async def test_readyz_names_a_missing_table_and_a_missing_source(aiohttp_client, live_settings, live: LiveService):
    settings = live_settings(
        source_table="no_such_table",
        dynamodb_table=unique_name("missing"),
        dynamodb_state_table=live.settings.dynamodb_state_table,
    )
    client = await aiohttp_client(await init_app(settings))
    response = await client.get("/readyz")
    assert response.status == 503
    body = await response.json()
    assert body["status"] == "not_ready"
    assert "source table 'no_such_table' does not exist" in body["checks"]["postgres"]
    assert "does not exist" in body["checks"]["dynamodb_users_table"]
    assert body["checks"]["dynamodb_state_table"] == "ok"


async def test_readyz_turns_503_when_dynamodb_stops(aiohttp_client, live_settings, postgres_dsn):
    from user_migration.adapters.dynamodb.client import dynamodb_client

    server = EmbeddedDynamoDb().start()
    try:
        async with dynamodb_client(server.endpoint_url, "us-east-1") as client:
            users_table, state_table = await create_dynamodb_tables(client)
        source_table = unique_name("users")
        create_source_table(postgres_dsn, source_table)
        settings = live_settings(
            source_table=source_table,
            dynamodb_endpoint_url=server.endpoint_url,
            dynamodb_table=users_table,
            dynamodb_state_table=state_table,
        )
        http = await aiohttp_client(await init_app(settings))
        assert (await http.get("/readyz")).status == 200
        server.stop()
        response = await http.get("/readyz")
        assert response.status == 503
        body = await response.json()
        assert body["checks"]["postgres"] == "ok"
        # Refused at once, or (botocore retrying with backoff) not within the probe's 5 s.
        assert body["checks"]["dynamodb_users_table"].startswith(("DynamoDB is unavailable", "no answer within"))
        assert (await http.get("/healthz")).status == 200
    finally:
        server.stop()


async def test_metrics_move_after_a_migration(live: LiveService):
    insert_users(
        live.settings.database_url,
        live.settings.source_table,
        [valid_user(i) for i in range(1, 6)] + [valid_user(6, email=None), valid_user(7, username="x", status="?")],
    )
    assert (await live.client.get("/metrics")).status == 401  # protected unless METRICS_PUBLIC=true
    status, _ = await live.get("/m2/migration/users", batch_size=100)
    assert status == 200
    response = await live.client.get("/metrics", headers=AUTH)
    assert response.status == 200
    text = await response.text()
    assert 'user_migration_users_total{dry_run="false",outcome="migrated"} 5.0' in text
    assert 'user_migration_users_failed_total{dry_run="false",reason="missing_email"} 1.0' in text
    assert 'user_migration_users_failed_total{dry_run="false",reason="invalid_username"} 1.0' in text
    assert 'user_migration_users_failed_total{dry_run="false",reason="invalid_status"} 1.0' in text
    assert 'user_migration_batches_total{dry_run="false",mode="batch"} 1.0' in text
    assert re.search(r'user_migration_batch_duration_seconds_count\{mode="batch"\} 1\.0', text)
    assert 'route="/m2/migration/users",status="200"' in text
    assert "user_migration_dynamodb_retries_total 0.0" in text


async def test_metrics_show_the_sync_lag_and_the_changes_it_applied(live: LiveService):
    """A sync runs in a process of its own: the service reads its progress from the state table."""
    before = await (await live.client.get("/metrics", headers=AUTH)).text()
    assert "user_migration_sync_lag_seconds" not in before  # no change cursor yet: nothing to show
    taken_at = datetime.now(UTC) - timedelta(seconds=90)
    await live.state.record_change_cursor(ChangeCursor("pg-xmin:1000", taken_at), applied=12)
    await live.state.record_change_cursor(ChangeCursor("pg-xmin:1200", taken_at), applied=3)
    text = await (await live.client.get("/metrics", headers=AUTH)).text()
    lag = re.search(r"^user_migration_sync_lag_seconds (\S+)$", text, re.MULTILINE)
    assert lag is not None
    assert 90 <= float(lag.group(1)) < 150
    assert "user_migration_sync_changes_applied_total 15.0" in text


async def test_metrics_can_be_public(aiohttp_client, live_settings):
    client = await aiohttp_client(await init_app(live_settings(metrics_public=True)))
    assert (await client.get("/metrics")).status == 200
    assert (await client.get("/m2/migration/stats")).status == 401


async def test_request_id_round_trip(live: LiveService):
    response = await live.client.get("/m2/migration/stats", headers={**AUTH, "X-Request-ID": "abc-123"})
    assert response.headers["X-Request-ID"] == "abc-123"
    generated = await live.client.get("/m2/migration/stats", headers=AUTH)
    assert re.fullmatch(r"[0-9a-f]{32}", generated.headers["X-Request-ID"])
    junk = await live.client.get("/m2/migration/stats", headers={**AUTH, "X-Request-ID": "a b\tc" * 50})
    assert re.fullmatch(r"[0-9a-f]{32}", junk.headers["X-Request-ID"])
    refused = await live.client.get("/m2/migration/stats", headers={"X-Request-ID": "xyz"})
    assert (refused.status, refused.headers["X-Request-ID"]) == (401, "xyz")


async def test_the_openapi_document_needs_no_token(live: LiveService):
    response = await live.client.get("/m2/migration/openapi.json")
    assert response.status == 200
    document = await response.json()
    assert set(document["paths"]) >= {"/m2/migration/users", "/m2/migration/stats", "/healthz", "/readyz", "/metrics"}
    assert (await live.client.post("/m2/migration/openapi.json")).status == 405
