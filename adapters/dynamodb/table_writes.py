"""What every writer of one table shares (`ConditionalWriter`, `ItemRewriter`), built once by the target."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import attrs

from user_migration.adapters.dynamodb.counters import TargetCounters
from user_migration.adapters.retry import Backoff
from user_migration.ports.write_budget import WriteBudget

if TYPE_CHECKING:
    from user_migration.adapters.dynamodb.batched import BatchedWrites


@attrs.frozen
class TableWrites:
    """The client and the table with its key attribute; the bound on writes in flight (shared with
    every other write of the target), the backoff and counters of throttling, the process's write
    budget; and the PartiQL batches where the endpoint runs them (None: one PutItem a user)."""

    client: Any
    table: str
    key_attribute: str
    writes_in_flight: asyncio.Semaphore
    backoff: Backoff
    counters: TargetCounters
    budget: WriteBudget
    batched: BatchedWrites | None = None
