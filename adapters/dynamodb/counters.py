"""What DynamoDB made a target do: retries, throttles, unprocessed items and keys (for /metrics)."""

from __future__ import annotations

import attrs


@attrs.define
class TargetCounters:
    """What DynamoDB made this target do, since it was created (read by the metrics)."""

    retries: int = 0
    throttles: int = 0
    unprocessed_items: int = 0
    unprocessed_keys: int = 0
    # PartiQL write batches sent, and the statements they carried (`adapters.dynamodb.statements`).
    statement_batches: int = 0
    statements: int = 0
