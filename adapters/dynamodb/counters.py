"""What DynamoDB made a target do: retries, throttles, unprocessed items and keys (for /metrics)."""

from __future__ import annotations

import attrs
from botocore.exceptions import ClientError

from user_migration.adapters.dynamodb.errors import describe
from user_migration.adapters.retry import Backoff


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


async def pause_after_throttling(
    error: ClientError, attempt: int, backoff: Backoff, counters: TargetCounters
) -> str | None:
    """After DynamoDB throttled attempt number `attempt` of a request: counted, and paused before the next
    attempt (None); or, when `backoff`'s attempts are spent, the reason the request's users fail with."""
    counters.throttles += 1
    if attempt < backoff.attempts:
        counters.retries += 1
        await backoff.pause(attempt)
        return None
    return f"throttled by DynamoDB after {attempt} attempts ({describe(error)})"
