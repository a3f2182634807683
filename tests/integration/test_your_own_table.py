"""A team's own table, as a new user would run it: Django's `auth_user` through a mapping file,
with the CLI (in the test process) against the real PostgreSQL and moto servers."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import psycopg2
import pytest

from tests.cli_runner import cli
from tests.django_mapping import django_mapping
from tests.real_adapters import create_dynamodb_tables, unique_name
from tests.real_adapters import quote_table_name as quoted
from user_migration.adapters.dynamodb.client import dynamodb_client

AUTH_USER = """
CREATE TABLE {table} (
    id serial PRIMARY KEY,
    password varchar(128) NOT NULL,
    last_login timestamptz,
    is_superuser boolean NOT NULL,
    username varchar(150) NOT NULL UNIQUE,
    first_name varchar(150) NOT NULL,
    last_name varchar(150) NOT NULL,
    email varchar(254) NOT NULL,
    is_staff boolean NOT NULL,
    is_active boolean NOT NULL,
    date_joined timestamptz NOT NULL,
    phone text,
    plan_tier text
)"""

JOINED = datetime(2023, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
# Legal in Django (its UnicodeUsernameValidator: letters, digits and @.+-_, up to 150), and each
# one the documented layout's rules would have rejected.
DJANGO_USERNAMES = ["ann@example.com", "bob+test", "zoë", "Ωmega", "a", "x" * 150, "dot.dash-under_score"]


def seed(dsn: str, table: str) -> None:
    with psycopg2.connect(dsn) as connection, connection.cursor() as cursor:
        cursor.execute(AUTH_USER.format(table=quoted(table)))
        for index, username in enumerate(DJANGO_USERNAMES, start=1):
            email = "" if index % 3 == 0 else f"user{index}@example.com"  # blank emails are legal in Django
            cursor.execute(
                f"INSERT INTO {quoted(table)} (password, last_login, is_superuser, username, first_name, last_name,"
                " email, is_staff, is_active, date_joined, phone, plan_tier)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    f"pbkdf2_sha256$600000$secret{index}",
                    JOINED if index % 2 else None,
                    index == 1,
                    username,
                    f"First{index}",
                    "Läst",
                    email,
                    index == 2,
                    index != 4,
                    JOINED,
                    "+44 20 7946 0958" if index == 5 else None,
                    "pro",
                ),
            )


@pytest.fixture
async def own_table(postgres_dsn, dynamodb_endpoint, dynamodb, tmp_path: Path) -> dict[str, str]:
    table = unique_name("auth_user")
    seed(postgres_dsn, table)
    users_table, state_table = await create_dynamodb_tables(dynamodb)
    mapping = tmp_path / "auth_user.toml"
    mapping.write_text(django_mapping(table))
    return {
        "DATABASE_URL": postgres_dsn,
        "DYNAMODB_ENDPOINT_URL": dynamodb_endpoint,
        "DYNAMODB_TABLE": users_table,
        "DYNAMODB_STATE_TABLE": state_table,
        "MAPPING_FILE": str(mapping),
        "SOURCE_TABLE": table,
    }


async def items(env: dict[str, str]) -> dict[int, dict]:
    async with dynamodb_client(env["DYNAMODB_ENDPOINT_URL"], "us-east-1") as client:
        response = await client.scan(TableName=env["DYNAMODB_TABLE"], ConsistentRead=True)
    return {int(item["user_id"]["N"]): item for item in response["Items"]}


async def test_django_users_all_migrate_and_every_column_but_password_arrives(own_table):
    result = cli(own_table, "migrate", "--all", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["migrated_count"], summary["failed_count"]) == (len(DJANGO_USERNAMES), 0)

    stored = await items(own_table)
    assert sorted(stored) == list(range(1, len(DJANGO_USERNAMES) + 1))
    for user_id, item in stored.items():
        assert "password" not in item
        assert item["username"] == {"S": DJANGO_USERNAMES[user_id - 1]}
        assert item["display_name"] == {"S": f"First{user_id} Läst"}
        assert item["first_name"] == {"S": f"First{user_id}"}  # used inside an expression: carried too
        assert item["created_at"] == {"S": "2023-05-06T07:08:09.123456Z"}
        assert "date_joined" not in item  # it arrives as created_at
        assert item["is_superuser"] == {"BOOL": user_id == 1}
        assert item["is_staff"] == {"BOOL": user_id == 2}
        assert item["is_active"] == {"BOOL": user_id != 4}
        assert item["status"] == {"S": "suspended" if user_id == 4 else "active"}
        assert item["plan_tier"] == {"S": "pro"}
        assert item["email"] == {"S": "" if user_id % 3 == 0 else f"user{user_id}@example.com"}
        if user_id % 2:
            assert item["last_login"] == {"S": "2023-05-06T07:08:09.123456Z"}
        else:
            assert "last_login" not in item  # NULL omits the attribute
    assert stored[5]["phone"] == {"S": "+44 20 7946 0958"}
    assert "phone" not in stored[1]

    stats = cli(own_table, "stats", "--json")
    assert stats.returncode == 0, stats.stderr
    assert json.loads(stats.stdout)["total_dynamo_users"] == len(DJANGO_USERNAMES)


async def test_the_mapping_command_shows_every_column_and_a_sample(own_table):
    result = cli(own_table, "mapping", "--json", "--sample", "5")
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    by_source = {column["source"]: column for column in shown["columns"]}
    assert by_source["id"]["role"] == "key"
    assert by_source["username"]["attribute"] == "username"
    assert by_source["date_joined"]["attribute"] == "created_at"
    assert by_source["is_staff"]["target_type"] == "BOOL"
    assert by_source["last_login"]["role"] == "carried"
    assert shown["excluded"] == ["password"]
    assert shown["rules"]["email"] == {"email": True}
    assert shown["sample"] == {"read": 5, "valid": 5, "rejected": 0, "by_reason": {}, "errors": []}

    text = cli(own_table, "mapping", "--sample", "3")
    assert text.returncode == 0, text.stderr
    assert "Excluded (never read): password" in text.stdout
    assert "Sample of 3 rows: 3 valid, 0 rejected." in text.stdout


async def test_mapping_mistakes_are_named_all_at_once_with_exit_2(own_table, tmp_path: Path):
    broken = tmp_path / "broken.toml"
    broken.write_text(
        django_mapping(own_table["SOURCE_TABLE"]).replace('email = "email"', 'email = "e_mail"')
        + '\n[rules.status]\npattern = "(unclosed"\n'
    )
    for command in (["mapping", "--json"], ["migrate", "--all", "--json"]):
        result = cli(own_table, *command, "--mapping", str(broken))
        assert result.returncode == 2, (command, result.stderr)
        # The file's own problem and the one against the table, in one run.
        problems = json.loads(result.stdout)["problems"]
        assert f"the mapping ({broken}) has {len(problems)} problem(s)" in result.stderr
        assert problems[0].startswith("[rules.status].pattern is not a valid regular expression")
        assert problems[1].startswith("[attributes] email: no column 'e_mail' in")
        # (and the email column, now carried, would clash with the attribute: gone with the fix)
        assert problems[2].startswith("[other_columns] carry: column 'email' would arrive as attribute 'email'")
        assert len(problems) == 3
        assert "Traceback" not in result.stderr

    # PostgreSQL down: the file's own problem is still named (exit 2), with why the rest went unchecked.
    down = {**own_table, "DATABASE_URL": "postgresql://migrator:s3cret@127.0.0.1:9/app"}
    result = cli(down, "mapping", "--mapping", str(broken))
    assert result.returncode == 2, result.stderr
    assert "pattern is not a valid regular expression" in result.stderr
    assert "not checked against source table" in result.stderr
    assert "127.0.0.1:9" in result.stderr
    assert "s3cret" not in result.stderr
    # A command that never reads the source refuses the file as before, naming its own problem.
    tables = cli(own_table, "init-tables", "--mapping", str(broken))
    assert tables.returncode == 2
    assert "pattern is not a valid regular expression" in tables.stderr

    misspelt = tmp_path / "misspelt.toml"
    misspelt.write_text(
        django_mapping(own_table["SOURCE_TABLE"])
        .replace('email = "email"', 'email = "e_mail"')
        .replace("CASE WHEN is_active", "CASE WHEN is_activ")
    )
    for command in (["mapping"], ["migrate", "--all"], ["stats"]):
        result = cli(own_table, *command, "--mapping", str(misspelt))
        assert result.returncode == 2, (command, result.stderr)
        assert "e_mail" in result.stderr
        assert "is_activ" in result.stderr
        assert "unavailable" not in result.stderr
        assert "Traceback" not in result.stderr


async def test_rewrite_reaches_the_tools_items_but_never_foreign_or_changed_ones(own_table, tmp_path: Path):
    first = cli(own_table, "migrate", "--all")
    assert first.returncode == 0, first.stderr
    async with dynamodb_client(own_table["DYNAMODB_ENDPOINT_URL"], "us-east-1") as client:
        table = own_table["DYNAMODB_TABLE"]
        # The application changed user 2 after the migration wrote it, and wrote user 3 itself.
        await client.update_item(
            TableName=table,
            Key={"user_id": {"N": "2"}},
            UpdateExpression="SET email = :e",
            ExpressionAttributeValues={":e": {"S": "changed@app.example"}},
        )
        await client.put_item(TableName=table, Item={"user_id": {"N": "3"}, "username": {"S": "written-by-the-app"}})
    # A corrected mapping: the display name gets a comma.
    fixed = tmp_path / "fixed.toml"
    fixed.write_text(django_mapping(own_table["SOURCE_TABLE"]).replace("|| ' ' ||", "|| ', ' ||"))
    plain = cli(own_table, "migrate", "--all", "--restart", "--mapping", str(fixed), "--json")
    assert json.loads(plain.stdout)["skipped_count"] == len(DJANGO_USERNAMES)  # without --rewrite: untouched

    result = cli(own_table, "migrate", "--all", "--rewrite", "--mapping", str(fixed), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["rewritten_count"] == len(DJANGO_USERNAMES) - 2
    assert summary["not_rewritten_user_ids"] == [2, 3]
    assert any("changed in DynamoDB since the migration wrote it" in text for text in summary["not_rewritten"])
    assert any("not written by the migration" in text for text in summary["not_rewritten"])

    stored = await items(own_table)
    assert stored[1]["display_name"] == {"S": "First1, Läst"}
    assert stored[2]["email"] == {"S": "changed@app.example"}
    assert stored[2]["display_name"] == {"S": "First2 Läst"}
    assert stored[3] == {"user_id": {"N": "3"}, "username": {"S": "written-by-the-app"}}
    stats = json.loads(cli(own_table, "stats", "--json").stdout)
    assert stats["total_dynamo_users"] == len(DJANGO_USERNAMES)  # a rewrite counts nobody twice

    again = cli(own_table, "migrate", "--all", "--rewrite", "--mapping", str(fixed), "--json")
    assert json.loads(again.stdout)["rewritten_count"] == 0  # nothing left to change


async def test_without_a_mapping_the_django_table_is_a_named_mismatch_not_an_outage(own_table):
    env = {key: value for key, value in own_table.items() if key != "MAPPING_FILE"}
    for command in (["migrate", "--all"], ["stats"]):
        result = cli(env, *command)
        assert result.returncode == 2, (command, result.stderr)
        assert "display_name" in result.stderr  # a column the documented layout needs
        assert "unavailable" not in result.stderr


def test_an_unreachable_database_names_host_and_port(own_table):
    env = {**own_table, "DATABASE_URL": "postgresql://migrator:s3cret@127.0.0.1:9/app"}
    result = cli(env, "stats")
    assert result.returncode == 3
    assert "127.0.0.1:9" in result.stderr
    assert "s3cret" not in result.stderr


async def test_a_missing_dynamodb_table_points_to_init_tables(own_table):
    env = {**own_table, "DYNAMODB_TABLE": unique_name("missing")}
    result = cli(env, "stats")
    assert result.returncode == 2
    assert env["DYNAMODB_TABLE"] in result.stderr
    assert "init-tables" in result.stderr
