"""A missing DynamoDB table, region or credentials is the operator's set-up, not an outage (moto server).

`TargetTableMissing` / `SetupError`: the CLI exits 2 and HTTP answers 409 naming what to fix, where an
outage (`TargetUnavailable`) exits 3 / answers 503.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

from user_migration.adapters.dynamodb.client import dynamodb_client
from user_migration.adapters.dynamodb.errors import target_errors
from user_migration.adapters.dynamodb.tables import ensure_table_active, ensure_tables
from user_migration.domain.errors import DependencyUnavailable, SetupError, TargetTableMissing
from user_migration.entrypoints.http.errors import domain_error_response


def unique_name(prefix: str) -> str:
    """A table name no other test uses."""
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


async def test_ensure_table_active_names_the_missing_table_and_init_tables(dynamodb: Any) -> None:
    table = unique_name("missing")
    with pytest.raises(TargetTableMissing) as raised:
        await ensure_table_active(dynamodb, table)
    error = raised.value
    assert error.table == table
    assert not isinstance(error, DependencyUnavailable)
    assert f"DynamoDB table {table!r} does not exist" in str(error)
    assert "user-migration init-tables" in str(error)
    assert isinstance(error.__cause__, ClientError)


async def test_ensure_table_active_passes_once_init_tables_created_it(dynamodb: Any) -> None:
    users_table, state_table = unique_name("users"), unique_name("state")
    assert await ensure_tables(dynamodb, users_table, state_table) == [users_table, state_table]
    await ensure_table_active(dynamodb, users_table)
    await ensure_table_active(dynamodb, state_table)


async def test_target_errors_turns_a_real_resource_not_found_into_target_table_missing(dynamodb: Any) -> None:
    table = unique_name("missing")
    with pytest.raises(TargetTableMissing) as raised:
        async with target_errors("reading an item", table=table):
            await dynamodb.get_item(TableName=table, Key={"user_id": {"N": "1"}})
    assert raised.value.table == table
    assert "init-tables" in str(raised.value)
    cause = raised.value.__cause__
    assert isinstance(cause, ClientError)
    assert cause.response["Error"]["Code"] == "ResourceNotFoundException"


async def test_target_errors_without_a_table_name_is_still_a_setup_error(dynamodb: Any) -> None:
    table = unique_name("missing")
    with pytest.raises(SetupError) as raised:
        async with target_errors("reading an item"):
            await dynamodb.get_item(TableName=table, Key={"user_id": {"N": "1"}})
    assert not isinstance(raised.value, DependencyUnavailable)
    assert "ResourceNotFoundException" in str(raised.value)
    assert "user-migration init-tables" in str(raised.value)


async def test_a_missing_table_answers_409_naming_it() -> None:
    response = domain_error_response(TargetTableMissing("users"))
    assert response.status == 409
    assert response.text is not None
    body = json.loads(response.text)
    assert body["error"] == "table_missing"
    assert "DynamoDB table 'users' does not exist: create it with `user-migration init-tables`" in body["message"]


@pytest.fixture
def no_aws_setup(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """No region and no credentials anywhere botocore looks (nor the instance metadata service)."""
    for name in (
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ROLE_ARN",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.mark.usefixtures("no_aws_setup")
async def test_no_region_at_client_creation_is_a_setup_error(dynamodb_endpoint: str) -> None:
    with pytest.raises(SetupError) as raised:
        async with dynamodb_client(endpoint_url=dynamodb_endpoint):
            pass
    assert "set AWS_REGION" in str(raised.value)


async def get_item(endpoint: str, *, within_target_errors: bool) -> None:
    async with dynamodb_client(endpoint_url=endpoint, region_name="us-east-1") as client:
        if within_target_errors:  # as in every adapter
            async with target_errors("reading an item", table="users"):
                await client.get_item(TableName="users", Key={"user_id": {"N": "1"}})
        else:  # a bare call in the client's block: dynamodb_client itself translates it
            await client.get_item(TableName="users", Key={"user_id": {"N": "1"}})


@pytest.mark.usefixtures("no_aws_setup")
@pytest.mark.parametrize("within_target_errors", [True, False])
async def test_no_credentials_at_the_first_call_is_a_setup_error(
    dynamodb_endpoint: str, within_target_errors: bool
) -> None:
    """SetupError, not TargetUnavailable (CLI exit 2, not 3)."""
    with pytest.raises(SetupError) as raised:
        await get_item(dynamodb_endpoint, within_target_errors=within_target_errors)
    assert not isinstance(raised.value, DependencyUnavailable)
    assert "no AWS credentials were found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY" in str(raised.value)


@pytest.mark.usefixtures("no_aws_setup")
async def test_partial_credentials_are_a_setup_error(monkeypatch: pytest.MonkeyPatch, dynamodb_endpoint: str) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    with pytest.raises(SetupError) as raised:
        await get_item(dynamodb_endpoint, within_target_errors=True)
    assert "the AWS credentials are incomplete (Partial credentials found in env, missing: AWS_SECRET_ACCESS_KEY)" in (
        str(raised.value)
    )
