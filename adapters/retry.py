"""Exponential backoff with full jitter, for DynamoDB's unprocessed items and throttling."""

from __future__ import annotations

import asyncio
import random

import attrs


@attrs.frozen
class Backoff:
    """How often and how patiently to retry: attempt n waits up to base * 2**n, at most `cap`."""

    attempts: int = 8
    base_seconds: float = 0.05
    cap_seconds: float = 2.0

    async def pause(self, attempt: int) -> None:
        """Sleep before retry number `attempt` (1 for the first retry)."""
        ceiling = min(self.cap_seconds, self.base_seconds * 2**attempt)
        await asyncio.sleep(random.uniform(0, ceiling))
