from __future__ import annotations

import re

import pytest

from user_migration.domain.migrate.run import OFFLINE_SEGMENTS_IN_FLIGHT
from user_migration.entrypoints.settings import ConfigurationError, Settings, load_settings

GOOD = {
    "DATABASE_URL": "postgresql://migrator:secret@db.internal:5432/app",
    "MIGRATION_API_TOKENS": "token-one, token-two ,",
    "AWS_REGION": "eu-west-1",
}


# No AWS config file: a developer's ~/.aws/config must not lend these tests a region.
NO_AWS_CONFIG = {
    "AWS_CONFIG_FILE": "/nonexistent/user-migration-tests/aws-config",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/user-migration-tests/aws-credentials",
}
NO_REGION = (
    "AWS_REGION is not set (nor AWS_DEFAULT_REGION, nor a region in the AWS config): "
    "set the region of the DynamoDB tables, e.g. AWS_REGION=eu-west-1"
)
NO_REGION_WITH_ENDPOINT = (
    "AWS_REGION is not set (nor AWS_DEFAULT_REGION, nor a region in the AWS config): "
    "botocore needs a region even with DYNAMODB_ENDPOINT_URL set; "
    "set the region the endpoint keeps the tables under, e.g. AWS_REGION=us-east-1"
)


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


def test_the_offline_mode_migrates_several_segments_side_by_side_unless_told_otherwise():
    assert load_settings(GOOD).segments_in_flight == 1
    offline = load_settings({**GOOD, "OFFLINE_WRITES": "true"})
    assert offline.segments_in_flight == OFFLINE_SEGMENTS_IN_FLIGHT > 1
    assert offline.container_config()["segments_in_flight"] == OFFLINE_SEGMENTS_IN_FLIGHT
    assert load_settings({**GOOD, "OFFLINE_WRITES": "true", "SEGMENTS_IN_FLIGHT": "2"}).segments_in_flight == 2
    assert load_settings({**GOOD, "SEGMENTS_IN_FLIGHT": "3"}).segments_in_flight == 3
    with pytest.raises(ConfigurationError) as raised:
        load_settings({**GOOD, "SEGMENTS_IN_FLIGHT": "0"})
    assert raised.value.problems == ["SEGMENTS_IN_FLIGHT must be an integer between 1 and 16 (got '0')"]


def test_a_new_plan_s_fewest_users_a_segment_is_a_setting():
    assert load_settings(GOOD).segment_min_users == 500
    small = load_settings({**GOOD, "SEGMENT_MIN_USERS": "50"})
    assert (small.segment_min_users, small.container_config()["segment_min_users"]) == (50, 50)
    for wrong in ("0", "1.5", "many", "1000001"):
        with pytest.raises(ConfigurationError) as raised:
            load_settings({**GOOD, "SEGMENT_MIN_USERS": wrong})
        assert raised.value.problems == [f"SEGMENT_MIN_USERS must be an integer between 1 and 1000000 (got {wrong!r})"]


def test_every_problem_is_listed_at_once():
    with pytest.raises(ConfigurationError) as raised:
        load_settings(
            {"PORT": "http", "DYNAMODB_ENDPOINT_URL": "localhost:8000", "SOURCE_TABLE": "a.", **NO_AWS_CONFIG}
        )
    problems = raised.value.problems
    assert problems == [
        "DATABASE_URL is required (a postgresql:// URL)",
        "MIGRATION_API_TOKENS is required (comma-separated bearer tokens), "
        "unless JWTs are configured (JWT_HS256_SECRET or JWT_RS256_PUBLIC_KEY[_FILE])",
        "DYNAMODB_ENDPOINT_URL must be an http:// or https:// URL (got 'localhost:8000')",
        NO_REGION_WITH_ENDPOINT,
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
    assert load_settings({"AWS_REGION": "eu-west-1"}, purpose="tables").dynamodb_table == "users"


def test_library_needs_the_database_but_no_tokens():
    environ = {"DATABASE_URL": GOOD["DATABASE_URL"], "AWS_REGION": "eu-west-1"}
    assert load_settings(environ, purpose="library").api_tokens == ()
    with pytest.raises(ConfigurationError, match="DATABASE_URL"):
        load_settings({}, purpose="library")


def test_secrets_stay_out_of_repr():
    text = repr(load_settings(GOOD))
    assert "secret" not in text
    assert "token-one" not in text


SECRET = "s" * 32


def test_jwt_settings():
    settings = load_settings(
        {
            "DATABASE_URL": GOOD["DATABASE_URL"],
            "AWS_REGION": "eu-west-1",
            "JWT_HS256_SECRET": SECRET,
            "JWT_ISSUER": "idp",
            "JWT_AUDIENCE": "mig",
        }
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


WITHOUT_REGION = {key: value for key, value in GOOD.items() if key != "AWS_REGION"}


@pytest.mark.parametrize("purpose", ["serve", "library", "tables"])
def test_every_purpose_needs_a_region(purpose):
    with pytest.raises(ConfigurationError) as raised:
        load_settings({**WITHOUT_REGION, **NO_AWS_CONFIG}, purpose=purpose)
    assert raised.value.problems == [NO_REGION]


@pytest.mark.parametrize("purpose", ["serve", "library", "tables"])
def test_a_local_endpoint_needs_a_region_too(purpose):
    environ = {**WITHOUT_REGION, **NO_AWS_CONFIG, "DYNAMODB_ENDPOINT_URL": "http://localhost:8000"}
    with pytest.raises(ConfigurationError) as raised:
        load_settings(environ, purpose=purpose)
    assert raised.value.problems == [NO_REGION_WITH_ENDPOINT]


def test_blank_regions_do_not_count():
    with pytest.raises(ConfigurationError, match=re.escape(NO_REGION)):
        load_settings({**GOOD, **NO_AWS_CONFIG, "AWS_REGION": " ", "AWS_DEFAULT_REGION": ""})


def test_aws_region_wins_over_aws_default_region():
    assert load_settings({**GOOD, "AWS_DEFAULT_REGION": "us-west-2"}).aws_region == "eu-west-1"
    assert load_settings({**WITHOUT_REGION, "AWS_DEFAULT_REGION": "us-west-2"}).aws_region == "us-west-2"


@pytest.fixture
def aws_config(tmp_path):
    path = tmp_path / "aws-config"
    path.write_text("[default]\nregion = ap-south-1\n\n[profile other]\nregion = sa-east-1\n\n[profile bare]\n")
    return str(path)


def test_the_region_of_the_aws_config_file(aws_config):
    environ = {**WITHOUT_REGION, **NO_AWS_CONFIG, "AWS_CONFIG_FILE": aws_config}
    assert load_settings(environ).aws_region == "ap-south-1"
    assert load_settings({**environ, "AWS_PROFILE": "other"}).aws_region == "sa-east-1"
    assert load_settings({**environ, "AWS_PROFILE": "other", "AWS_REGION": "eu-west-1"}).aws_region == "eu-west-1"


def test_a_profile_without_a_region(aws_config):
    environ = {**WITHOUT_REGION, **NO_AWS_CONFIG, "AWS_CONFIG_FILE": aws_config, "AWS_PROFILE": "bare"}
    with pytest.raises(ConfigurationError) as raised:
        load_settings(environ)
    assert raised.value.problems == [NO_REGION]


def test_an_unknown_profile_is_named(aws_config):
    environ = {**WITHOUT_REGION, **NO_AWS_CONFIG, "AWS_CONFIG_FILE": aws_config, "AWS_PROFILE": "nope"}
    with pytest.raises(ConfigurationError) as raised:
        load_settings(environ)
    assert raised.value.problems == ["the AWS config cannot be used: The config profile (nope) could not be found"]


def test_a_given_environ_does_not_read_the_process_environment_nor_home(monkeypatch, tmp_path, aws_config):
    """Neither os.environ's region, profile or config file, nor ~/.aws/config, lends a mapping a region."""
    home = tmp_path / "home"
    (home / ".aws").mkdir(parents=True)
    (home / ".aws" / "config").write_text("[default]\nregion = eu-north-1\n")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", aws_config)
    monkeypatch.setenv("AWS_PROFILE", "other")
    with pytest.raises(ConfigurationError) as raised:
        load_settings(WITHOUT_REGION)
    assert raised.value.problems == [NO_REGION]
    # Naming a profile (and no file) in the mapping reads ~/.aws/config, as botocore would, for that profile.
    with pytest.raises(ConfigurationError, match=re.escape("The config profile (other) could not be found")):
        load_settings({**WITHOUT_REGION, "AWS_PROFILE": "other"})
    assert load_settings({**WITHOUT_REGION, "AWS_PROFILE": "default"}).aws_region == "eu-north-1"


def test_the_process_environment_reads_the_aws_config(monkeypatch, aws_config):
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", aws_config)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", NO_AWS_CONFIG["AWS_SHARED_CREDENTIALS_FILE"])
    assert load_settings(purpose="tables").aws_region == "ap-south-1"
    monkeypatch.setenv("AWS_PROFILE", "other")
    assert load_settings(purpose="tables").aws_region == "sa-east-1"
    monkeypatch.setenv("AWS_CONFIG_FILE", NO_AWS_CONFIG["AWS_CONFIG_FILE"])
    monkeypatch.delenv("AWS_PROFILE")
    with pytest.raises(ConfigurationError) as raised:
        load_settings(purpose="tables")
    assert raised.value.problems == [NO_REGION]


def test_the_statistics_settings():
    assert (load_settings(GOOD).stats_refresh_seconds, load_settings(GOOD).stats_postgres_count) == (30.0, "exact")
    settings = load_settings({**GOOD, "STATS_REFRESH_SECONDS": "5", "STATS_POSTGRES_COUNT": "Estimate"})
    assert (settings.stats_refresh_seconds, settings.stats_postgres_count) == (5.0, "estimate")
    assert settings.container_config()["stats_postgres_count"] == "estimate"
    with pytest.raises(ConfigurationError) as raised:
        load_settings({**GOOD, "STATS_REFRESH_SECONDS": "0", "STATS_POSTGRES_COUNT": "banana"})
    assert raised.value.problems == [
        "STATS_REFRESH_SECONDS must be a number between 1 and 3600 (got '0')",
        "STATS_POSTGRES_COUNT must be one of exact, estimate (got 'banana')",
    ]


def test_a_mapping_files_own_problems_wait_for_the_source_check_where_the_source_is_read(tmp_path):
    broken = tmp_path / "broken.toml"
    broken.write_text('[source]\ntable = "auth_user"\n[attributes]\nname = "n"\n[rules.name]\npattern = "(unclosed"\n')
    problem = "[rules.name].pattern is not a valid regular expression: missing ), unterminated subpattern at position 0"

    for purpose in ("serve", "library"):
        settings = load_settings({**GOOD, **NO_AWS_CONFIG}, purpose=purpose, mapping_file=str(broken))
        assert settings.mapping is not None
        assert settings.mapping.problems == (problem,)  # the source refuses it, naming the table's problems too
        assert settings.mapping.table == "auth_user"
    # Where nothing reads the source, or something else is wrong too, they are named at once as before.
    for environ, purpose in (({**GOOD, **NO_AWS_CONFIG}, "tables"), ({**NO_AWS_CONFIG, "AWS_REGION": "x"}, "library")):
        with pytest.raises(ConfigurationError) as raised:
            load_settings(environ, purpose=purpose, mapping_file=str(broken))
        assert f"mapping file {broken}: {problem}" in raised.value.problems
