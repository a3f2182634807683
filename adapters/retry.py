"""Exponential backoff with full jitter, for DynamoDB's unprocessed items and throttling; who waits."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

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


def waiter_alive() -> Callable[[], bool]:
    """Whether the task calling this still waits (for a `StallWatch`: a cancelled waiter's request is no stall)."""
    task = asyncio.current_task()
    if task is None:
        return lambda: True
    return lambda: not task.done()
