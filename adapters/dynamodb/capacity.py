"""The users table's write capacity, read with DescribeTable, for `--write-capacity-percent P`.

- Provisioned table: its `ProvisionedThroughput.WriteCapacityUnits` (as they are now: auto scaling
  changes them, so the budget reads them again every 5 minutes while it runs).
- On-demand table with a maximum (`OnDemandThroughput.MaxWriteRequestUnits`): that maximum.
- On-demand table without one: ON_DEMAND_WITHOUT_MAXIMUM = 4,000 units/s, what a new on-demand table
  takes at once without throttling. More than twice the previous peak within 30 minutes may throttle
  an on-demand table, so 4,000 is the figure that is safe on any of them; the EMR DynamoDB connector
  assumes 40,000 (the default account quota) and was criticised for it (emr-dynamodb-connector PR #88).
  A table that has served more can be given `--max-write-units` instead.

Global secondary indexes: every item written to the table is written to each index that projects it,
which costs write units of the index's own (and a provisioned index has capacity of its own). Their
capacity is ignored here: the percentage is of the base table's. The units DynamoDB reports as spent
(`ReturnConsumedCapacity="TOTAL"`) include the indexes', so with indexes the budget is spent sooner.
"""

from __future__ import annotations

from typing import Any

from user_migration.adapters.dynamodb.errors import target_errors
from user_migration.ports.write_budget import TableCapacity

ON_DEMAND_WITHOUT_MAXIMUM = 4000.0


def write_capacity_of(table: dict[str, Any]) -> float:
    """The write units per second of a DescribeTable answer's `Table`; see the module's docstring."""
    billing = table.get("BillingModeSummary", {}).get("BillingMode")
    provisioned = float(table.get("ProvisionedThroughput", {}).get("WriteCapacityUnits", 0) or 0)
    if billing != "PAY_PER_REQUEST" and provisioned > 0:
        return provisioned
    maximum = float(table.get("OnDemandThroughput", {}).get("MaxWriteRequestUnits", -1) or -1)
    return maximum if maximum > 0 else ON_DEMAND_WITHOUT_MAXIMUM


class DynamoDbTableCapacity(TableCapacity):
    """The write capacity of one DynamoDB table."""

    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table

    async def write_units(self) -> float:
        async with target_errors(f"describing table {self._table!r}", table=self._table):
            description = await self._client.describe_table(TableName=self._table)
        return write_capacity_of(description["Table"])
