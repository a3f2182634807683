"""The dependencies' timeouts and patience as settings, and how a dependency is named in a message:
where it is, never a credential."""

from __future__ import annotations

import pytest

from user_migration.adapters.dynamodb.watch import endpoint_text
from user_migration.adapters.postgres.source import dsn_endpoint
from user_migration.entrypoints.cli.main import main
from user_migration.entrypoints.settings import ConfigurationError, load_settings

GOOD = {
    "DATABASE_URL": "postgresql://migrator:secret@db.internal:5432/app",
    "MIGRATION_API_TOKENS": "token-one",
    "AWS_REGION": "eu-west-1",
}


def test_defaults_and_every_setting():
    defaults = load_settings(GOOD)
    assert (defaults.dynamodb_timeout_seconds, defaults.dynamodb_retries, defaults.dependency_patience_seconds) == (
        10.0,
        3,
        600.0,
    )
    changed = load_settings(
        {**GOOD, "DYNAMODB_TIMEOUT_SECONDS": "2.5", "DYNAMODB_RETRIES": "0", "DEPENDENCY_PATIENCE_SECONDS": "60"}
    )
    assert (changed.dynamodb_timeout_seconds, changed.dynamodb_retries, changed.dependency_patience_seconds) == (
        2.5,
        0,
        60.0,
    )
    assert changed.container_config()["dynamodb_timeout_seconds"] == 2.5


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("DYNAMODB_TIMEOUT_SECONDS", "0", "DYNAMODB_TIMEOUT_SECONDS must be a number between 1 and 300 (got '0')"),
        ("DYNAMODB_TIMEOUT_SECONDS", "soon", "DYNAMODB_TIMEOUT_SECONDS must be a number between 1 and 300"),
        ("DYNAMODB_RETRIES", "11", "DYNAMODB_RETRIES must be an integer between 0 and 10 (got '11')"),
        ("DEPENDENCY_PATIENCE_SECONDS", "0", "DEPENDENCY_PATIENCE_SECONDS must be a number between 1 and 86400"),
    ],
)
def test_a_setting_out_of_range_is_named(name, value, problem):
    with pytest.raises(ConfigurationError) as raised:
        load_settings({**GOOD, name: value})
    assert any(found.startswith(problem) for found in raised.value.problems), raised.value.problems


def test_a_command_with_a_timeout_out_of_range_exits_2_naming_it(monkeypatch, capsys):
    for name, value in {**GOOD, "DYNAMODB_TIMEOUT_SECONDS": "500"}.items():
        monkeypatch.setenv(name, value)
    assert main(["stats"]) == 2
    assert "DYNAMODB_TIMEOUT_SECONDS must be a number between 1 and 300 (got '500')" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
        ("https://user:secret@dynamodb.local:8443/some/path?token=x", "https://dynamodb.local:8443"),
        ("https://dynamodb.eu-west-1.amazonaws.com", "https://dynamodb.eu-west-1.amazonaws.com"),
    ],
)
def test_a_dynamodb_endpoint_is_named_by_scheme_host_and_port_alone(url, named):
    assert endpoint_text(url) == named


@pytest.mark.parametrize(
    ("dsn", "named"),
    [
        ("postgresql://migrator:secret@db.internal:6432/app?sslmode=require", "db.internal:6432/app"),
        ("host=db.internal port=5433 dbname=app user=migrator password=secret", "db.internal:5433/app"),
        ("postgresql://migrator:secret@db.internal/app", "db.internal:5432/app"),
    ],
)
def test_a_postgresql_endpoint_is_named_by_host_port_and_database_alone(dsn, named):
    assert dsn_endpoint(dsn) == named
    assert "secret" not in dsn_endpoint(dsn)
