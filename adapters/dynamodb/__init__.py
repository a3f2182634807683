"""DynamoDB (aioboto3): the target, the state table, leases, holds, the budget."""
