"""Creating the users table and the state table (idempotent; on-demand billing)."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from adapters.dynamodb_errors import error_code, target_errors
from domain.errors import TargetUnavailable

STATE_KEY_ATTRIBUTE = "state_id"


async def _ensure_table(client: Any, table: str, key: str, key_type: str) -> bool:
    """Create `table` with partition key `key` unless it exists; True when it was created."""
    try:
        description = await client.describe_table(TableName=table)
    except ClientError as error:
        if error_code(error) != "ResourceNotFoundException":
            raise
    else:
        schema = description["Table"]["KeySchema"]
        if [(part["AttributeName"], part["KeyType"]) for part in schema] != [(key, "HASH")]:
            raise TargetUnavailable(f"table {table!r} exists with another key schema; expected partition key {key!r}")
        return False
    try:
        await client.create_table(
            TableName=table,
            KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": key, "AttributeType": key_type}],
            BillingMode="PAY_PER_REQUEST",
        )
    except ClientError as error:
        if error_code(error) != "ResourceInUseException":  # created meanwhile by someone else
            raise
    await client.get_waiter("table_exists").wait(TableName=table, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    return True


async def ensure_tables(client: Any, users_table: str, state_table: str) -> list[str]:
    """Create both tables if they do not exist; returns the names of the tables created."""
    created = []
    async with target_errors("creating tables"):
        if await _ensure_table(client, users_table, "user_id", "N"):
            created.append(users_table)
        if await _ensure_table(client, state_table, STATE_KEY_ATTRIBUTE, "S"):
            created.append(state_table)
    return created


async def ensure_table_active(client: Any, table: str) -> None:
    """Raise `TargetUnavailable` unless `table` exists and is ACTIVE."""
    async with target_errors(f"describing table {table!r}"):
        try:
            description = await client.describe_table(TableName=table)
        except ClientError as error:
            if error_code(error) == "ResourceNotFoundException":
                raise TargetUnavailable(f"DynamoDB table {table!r} does not exist") from error
            raise
    status = description["Table"].get("TableStatus", "ACTIVE")
    if status not in ("ACTIVE", "UPDATING"):
        raise TargetUnavailable(f"DynamoDB table {table!r} is {status}")
