"""Writes that must finish once started, and a way to wait for them before shutting down."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class WritesInFlight:
    """Runs each write-and-account step as a task of its own, shielded from its caller's
    cancellation, and lets shutdown wait for the ones still running before it closes clients."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    async def run(self, step: Coroutine[Any, Any, T]) -> T:
        """Run `step` to its end even if the caller is cancelled meanwhile."""
        task = asyncio.ensure_future(step)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            # Let the step end before the cancellation goes on up: the caller's hold is then
            # settled by the step, not abandoned half-way. A second cancellation stops waiting.
            await asyncio.wait({task})
            raise

    async def wait(self, within_seconds: float) -> bool:
        """Wait up to `within_seconds` for running steps; True when none is left."""
        if not self._tasks:
            return True
        _, pending = await asyncio.wait(set(self._tasks), timeout=within_seconds)
        return not pending
