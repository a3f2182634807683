from __future__ import annotations

import re

import pytest

from entrypoints.settings import ConfigurationError, Settings, load_settings

GOOD = {
    "DATABASE_URL": "postgresql://migrator:secret@db.internal:5432/app",
    "MIGRATION_API_TOKENS": "token-one, token-two ,",
    "AWS_REGION": "eu-west-1",
}


def test_defaults_and_token_list():
    settings = load_settings(GOOD)
    assert settings == Settings(
        database_url=GOOD["DATABASE_URL"],
        aws_region="eu-west-1",
        api_tokens=("token-one", "token-two"),
    )
    assert (settings.host, settings.port, settings.source_table, settings.dynamodb_table) == (
        "0.0.0.0",
        3000,
        "users",
        "users",
    )
    assert settings.dynamodb_state_table == "user_migration_state"


def test_everything_can_be_set():
    settings = load_settings(
        {
            **GOOD,
            "SOURCE_TABLE": "app.users",
            "DYNAMODB_TABLE": "Users",
            "DYNAMODB_STATE_TABLE": "MigrationState",
            "DYNAMODB_ENDPOINT_URL": "http://localhost:8000",
            "AWS_REGION": "",
            "AWS_DEFAULT_REGION": "us-west-2",
            "HOST": "127.0.0.1",
            "PORT": "8080",
            "SOURCE_QUERY_TIMEOUT": "2.5",
            "DYNAMODB_CONCURRENCY": "16",
            "PAGES_IN_FLIGHT": "4",
        }
    )
    assert settings.source_table == "app.users"
    assert (settings.dynamodb_table, settings.dynamodb_state_table) == ("Users", "MigrationState")
    assert settings.dynamodb_endpoint_url == "http://localhost:8000"
    assert settings.aws_region == "us-west-2"
    assert (settings.host, settings.port) == ("127.0.0.1", 8080)
    assert (settings.source_query_timeout, settings.dynamodb_concurrency, settings.pages_in_flight) == (2.5, 16, 4)


def test_every_problem_is_listed_at_once():
    with pytest.raises(ConfigurationError) as raised:
        load_settings({"PORT": "http", "DYNAMODB_ENDPOINT_URL": "localhost:8000", "SOURCE_TABLE": "a."})
    problems = raised.value.problems
    assert problems == [
        "DATABASE_URL is required (a postgresql:// URL)",
        "MIGRATION_API_TOKENS is required (comma-separated bearer tokens), "
        "unless JWTs are configured (JWT_HS256_SECRET or JWT_RS256_PUBLIC_KEY[_FILE])",
        "DYNAMODB_ENDPOINT_URL must be an http:// or https:// URL (got 'localhost:8000')",
        "SOURCE_TABLE is not a valid table name (got 'a.')",
        "PORT must be an integer between 1 and 65535 (got 'http')",
    ]
    assert all(problem in str(raised.value) for problem in problems)


@pytest.mark.parametrize("url", ["mysql://x", "not a url", "http://db/app"])
def test_database_url_must_be_postgresql(url):
    with pytest.raises(ConfigurationError, match="DATABASE_URL must be a postgresql:// URL"):
        load_settings({**GOOD, "DATABASE_URL": url})


@pytest.mark.parametrize(
    ("name", "value"),
    [("PORT", "0"), ("PORT", "70000"), ("PORT", "-1"), ("SOURCE_QUERY_TIMEOUT", "x"), ("PAGES_IN_FLIGHT", "0")],
)
def test_numbers_out_of_range(name, value):
    with pytest.raises(ConfigurationError, match=name):
        load_settings({**GOOD, name: value})


def test_tables_need_no_database_or_tokens():
    assert load_settings({}, purpose="tables").dynamodb_table == "users"


def test_library_needs_the_database_but_no_tokens():
    assert load_settings({"DATABASE_URL": GOOD["DATABASE_URL"]}, purpose="library").api_tokens == ()
    with pytest.raises(ConfigurationError, match="DATABASE_URL"):
        load_settings({}, purpose="library")


def test_secrets_stay_out_of_repr():
    text = repr(load_settings(GOOD))
    assert "secret" not in text
    assert "token-one" not in text


SECRET = "s" * 32


def test_jwt_settings():
    settings = load_settings(
        {"DATABASE_URL": GOOD["DATABASE_URL"], "JWT_HS256_SECRET": SECRET, "JWT_ISSUER": "idp", "JWT_AUDIENCE": "mig"}
    )
    assert settings.api_tokens == ()
    assert settings.jwt_rules is not None
    assert (settings.jwt_rules.algorithm, settings.jwt_rules.issuer, settings.jwt_rules.audience) == (
        "HS256",
        "idp",
        "mig",
    )
    assert SECRET not in repr(settings)
    assert SECRET not in str(settings.redacted())


@pytest.mark.parametrize(
    ("environ", "problem"),
    [
        ({"JWT_HS256_SECRET": "short"}, "JWT_HS256_SECRET must be at least 32 bytes long"),
        ({"JWT_RS256_PUBLIC_KEY": "not a key"}, "the RS256 public key is not a PEM public key"),
        ({"JWT_RS256_PUBLIC_KEY_FILE": "/nonexistent.pem"}, "JWT_RS256_PUBLIC_KEY_FILE cannot be read"),
        ({"JWT_HS256_SECRET": SECRET, "JWT_RS256_PUBLIC_KEY": "x"}, "not both"),
        ({"MIGRATION_API_TOKENS": "sha256:abc"}, "a sha256: entry must be followed by 64 hex digits"),
    ],
)
def test_bad_auth_settings(environ, problem):
    with pytest.raises(ConfigurationError, match=re.escape(problem)):
        load_settings({"DATABASE_URL": GOOD["DATABASE_URL"], **environ})
