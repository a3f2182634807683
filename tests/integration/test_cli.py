"""The `user-migration` command: its exit codes and messages as a real process gives them, `serve` as a
process; `init-tables` in the test process."""

from __future__ import annotations

import subprocess

from tests.cli_runner import cli, command, process_environment, run_process
from user_migration.adapters.dynamodb.tables import ensure_tables


async def test_init_tables_creates_both_tables_and_is_idempotent(dynamodb_endpoint, dynamodb):
    env = {
        "DYNAMODB_ENDPOINT_URL": dynamodb_endpoint,
        "DYNAMODB_TABLE": "cli_users",
        "DYNAMODB_STATE_TABLE": "cli_state",
        "AWS_REGION": "us-east-1",
    }
    first = cli(env, "init-tables")
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == ["cli_users: created", "cli_state: created"]
    second = cli(env, "init-tables")
    assert second.returncode == 0, second.stderr
    assert second.stdout.splitlines() == ["cli_users: already exists", "cli_state: already exists"]
    description = await dynamodb.describe_table(TableName="cli_users")
    assert description["Table"]["KeySchema"] == [{"AttributeName": "user_id", "KeyType": "HASH"}]
    assert description["Table"]["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert await ensure_tables(dynamodb, "cli_users", "cli_state") == []


def test_init_tables_with_dynamodb_unreachable_exits_3():
    result = run_process({"DYNAMODB_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_REGION": "us-east-1"}, "init-tables")
    assert result.returncode == 3
    # botocore's EndpointConnectionError: the message names where it could not connect.
    assert "DynamoDB is unavailable at http://127.0.0.1:9 (" in result.stderr, result.stderr
    assert "EndpointConnectionError" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_with_bad_configuration_lists_every_problem_and_starts_nothing():
    result = run_process({"PORT": "http", "DATABASE_URL": "mysql://x"}, "serve")
    assert result.returncode == 2
    assert "DATABASE_URL must be a postgresql:// URL" in result.stderr
    assert "MIGRATION_API_TOKENS is required" in result.stderr
    assert "PORT must be an integer between 1 and 65535" in result.stderr
    assert "Traceback" not in result.stderr


def serve_environment(postgres_dsn: str, dynamodb_endpoint: str) -> dict[str, str]:
    """What `serve` needs, on fresh DynamoDB table names and a free port of its own."""
    from tests.real_adapters import unique_name
    from user_migration.entrypoints.demo.embedded import free_port

    return {
        "DATABASE_URL": postgres_dsn,
        "DYNAMODB_ENDPOINT_URL": dynamodb_endpoint,
        "DYNAMODB_TABLE": unique_name("users"),
        "DYNAMODB_STATE_TABLE": unique_name("state"),
        "AWS_REGION": "us-east-1",
        "MIGRATION_API_TOKENS": "serve-token",
        "HOST": "127.0.0.1",
        "PORT": str(free_port()),
    }


def test_usage_errors_exit_2():
    result = run_process({}, "frobnicate")
    assert result.returncode == 2
    assert "invalid choice" in result.stderr


def test_serve_answers_both_endpoints_and_stops_on_sigterm(postgres_dsn, dynamodb_endpoint):
    import json
    import signal
    import time
    import urllib.request

    from tests.factories import valid_user
    from tests.real_adapters import create_source_table, insert_users, unique_name

    table = unique_name("users")
    create_source_table(postgres_dsn, table)
    insert_users(postgres_dsn, table, [valid_user(i) for i in range(1, 6)])
    env = {**serve_environment(postgres_dsn, dynamodb_endpoint), "SOURCE_TABLE": table}
    port = int(env["PORT"])
    assert cli(env, "init-tables").returncode == 0
    server = subprocess.Popen(
        command("serve"),
        env=process_environment(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:

        def get(path: str) -> dict:
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}{path}", headers={"Authorization": "Bearer serve-token"}
            )
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.loads(response.read())

        deadline = time.monotonic() + 30
        while True:
            try:
                stats = get("/m2/migration/stats")
                break
            except OSError:
                assert server.poll() is None, server.stdout.read() if server.stdout else ""
                assert time.monotonic() < deadline, "serve did not answer within 30 s"
                time.sleep(0.2)
        assert stats["total_postgres_users"] == 5
        report = get("/m2/migration/users?batch_size=10")
        assert report["migrated_count"] == 5
        assert get("/m2/migration/stats")["total_dynamo_users"] == 5
    finally:
        server.send_signal(signal.SIGTERM)
        output, _ = server.communicate(timeout=30)
    assert server.returncode == 0, output
    assert "serve-token" not in output


def test_serve_refuses_to_start_on_a_mapping_that_does_not_fit(postgres_dsn, dynamodb_endpoint, tmp_path):
    from tests.real_adapters import unique_name

    mapping = tmp_path / "mapping.toml"
    mapping.write_text(f'[source]\ntable = "{unique_name("no_such_table")}"\n')
    env = serve_environment(postgres_dsn, dynamodb_endpoint)
    assert cli(env, "init-tables").returncode == 0
    result = run_process(env, "serve", "--mapping", str(mapping))
    assert result.returncode == 2, result.stderr
    assert "no_such_table" in result.stderr
    assert "does not exist" in result.stderr
    assert "Traceback" not in result.stderr
