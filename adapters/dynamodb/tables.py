"""Creating the users table and the state table (idempotent; on-demand billing)."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from user_migration.adapters.dynamodb.errors import error_code, target_errors
from user_migration.domain.errors import SetupError, TargetUnavailable

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
        if (found := key_type_of(description["Table"], key)) not in (None, key_type):
            raise SetupError(
                [key_type_problem(table, key, found, key_type)], f"table {table!r} does not fit the mapping"
            )
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


def key_type_of(description: Any, key: str) -> str | None:
    """The DynamoDB type (N, S, B) of attribute `key` in a table's description, None when not told."""
    for definition in description.get("AttributeDefinitions", []):
        if definition.get("AttributeName") == key:
            return str(definition.get("AttributeType"))
    return None


def key_type_problem(table: str, key: str, found: str, wanted: str) -> str:
    """Why a users table whose key is of another type than the mapping's cannot be used."""
    return (
        f"DynamoDB table {table!r} has partition key {key!r} of type {found}, but the mapping's key is of type "
        f"{wanted} ({'an integer key' if wanted == 'N' else 'a uuid or text key'}); use another table "
        "(DYNAMODB_TABLE) or a mapping whose [source] key_type fits it"
    )


async def ensure_tables(
    client: Any, users_table: str, state_table: str, key_attribute: str = "user_id", key_type: str = "N"
) -> list[str]:
    """Create both tables if they do not exist (the users table's partition key is the mapping's
    `key_attribute`, of DynamoDB type `key_type`); returns the names of the tables created. A users
    table whose key is of another type is a `SetupError` naming both."""
    created = []
    for table, key, attribute_type in ((users_table, key_attribute, key_type), (state_table, STATE_KEY_ATTRIBUTE, "S")):
        async with target_errors(f"creating table {table!r}", table=table):
            if await _ensure_table(client, table, key, attribute_type):
                created.append(table)
    return created


async def ensure_table_active(client: Any, table: str, key: tuple[str, str] | None = None) -> dict[str, Any]:
    """Raise `TargetTableMissing` when `table` does not exist, `TargetUnavailable` unless it is ACTIVE,
    and `SetupError` when `key` (attribute, DynamoDB type) is given and the table's key is of another type;
    otherwise return the table's description (DescribeTable's `Table`).

    A missing table is the operator's set-up (`user-migration init-tables` creates it), not an outage.
    """
    async with target_errors(f"describing table {table!r}", table=table):  # ResourceNotFound: TargetTableMissing
        description = await client.describe_table(TableName=table)
    if key is not None and (found := key_type_of(description["Table"], key[0])) not in (None, key[1]):
        raise SetupError([key_type_problem(table, key[0], found, key[1])], f"table {table!r} does not fit the mapping")
    status = description["Table"].get("TableStatus", "ACTIVE")
    if status not in ("ACTIVE", "UPDATING"):
        raise TargetUnavailable(f"DynamoDB table {table!r} is {status}")
    described: dict[str, Any] = description["Table"]
    return described
