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


async def ensure_tables(client: Any, users_table: str, state_table: str, key_attribute: str = "user_id") -> list[str]:
    """Create both tables if they do not exist (the users table's partition key is the mapping's
    `key_attribute`); returns the names of the tables created."""
    created = []
    for table, key, key_type in ((users_table, key_attribute, "N"), (state_table, STATE_KEY_ATTRIBUTE, "S")):
        async with target_errors(f"creating table {table!r}", table=table):
            if await _ensure_table(client, table, key, key_type):
                created.append(table)
    return created


async def ensure_table_active(client: Any, table: str) -> None:
    """Raise `TargetTableMissing` when `table` does not exist, `TargetUnavailable` unless it is ACTIVE.

    A missing table is the operator's set-up (`user-migration init-tables` creates it), not an outage.
    """
    async with target_errors(f"describing table {table!r}", table=table):  # ResourceNotFound: TargetTableMissing
        description = await client.describe_table(TableName=table)
    status = description["Table"].get("TableStatus", "ACTIVE")
    if status not in ("ACTIVE", "UPDATING"):
        raise TargetUnavailable(f"DynamoDB table {table!r} is {status}")
