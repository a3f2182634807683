"""The sync's metrics, read from the state table at each scrape: `sync` runs in its own process,
and the state is where it records how far it caught up and how many changes it applied."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from user_migration.domain.errors import DependencyUnavailable, SetupError
from user_migration.domain.model import MigrationProgress
from user_migration.domain.sync.stream import is_stream_mark
from user_migration.ports.migration_state import MigrationState

REFRESH_TIMEOUT_SECONDS = 2.0


class SyncCollector(Collector):
    """Lag and changes applied of `sync`, as the last `refresh` read them; nothing before a
    change cursor exists (no sync and no whole run yet)."""

    def __init__(self) -> None:
        self._progress: MigrationProgress | None = None

    async def refresh(self, state: MigrationState) -> None:
        """Read the state again; when it cannot be read now (down, or no table yet), the previous
        reading stays: a scrape never fails for it."""
        with contextlib.suppress(DependencyUnavailable, SetupError, TimeoutError):
            self._progress = await asyncio.wait_for(state.read_progress(), REFRESH_TIMEOUT_SECONDS)

    def collect(self) -> Iterator[Metric]:
        progress = self._progress
        if progress is None or progress.change_cursor is None or is_stream_mark(progress.change_cursor.position):
            return  # a stream's lag is its slot's (`StreamCollector`)
        yield GaugeMetricFamily(
            "user_migration_sync_lag_seconds",
            "age of the latest change cursor DynamoDB caught up to (changes committed since may be missing)",
            value=max(time.time() - progress.change_cursor.taken_at.timestamp(), 0.0),
        )
        yield CounterMetricFamily(
            "user_migration_sync_changes_applied",
            "items written or deleted by sync passes that caught up",
            value=progress.changes_applied,
        )
