"""The replication slot's retained WAL and lag, read from PostgreSQL at each scrape: the stream
(`sync --follow --changes logical`) runs in its own process, and the slot is where the source
tells how much it keeps for it (the forgotten slot that fills a disk shows here first)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from user_migration.domain.errors import DependencyUnavailable, SetupError
from user_migration.domain.sync.row_changes import StreamHealth
from user_migration.entrypoints.http.sync_metrics import REFRESH_TIMEOUT_SECONDS
from user_migration.ports.change_stream import ChangeStream


class StreamCollector(Collector):
    """The slot as the last `refresh` read it; nothing while there is no slot."""

    def __init__(self) -> None:
        self._health: StreamHealth | None = None

    async def refresh(self, stream: ChangeStream) -> None:
        """Read the slot again; when PostgreSQL cannot be asked now the previous reading stays, and
        a slot that is gone (or never made) shows nothing."""
        try:
            self._health = await asyncio.wait_for(stream.health(), REFRESH_TIMEOUT_SECONDS)
        except SetupError:
            self._health = None
        except (DependencyUnavailable, TimeoutError):
            pass

    def collect(self) -> Iterator[Metric]:
        health = self._health
        if health is None:
            return
        yield GaugeMetricFamily(
            "user_migration_cdc_retained_wal_bytes",
            "WAL the replication slot keeps on the source's disk (bounded by max_slot_wal_keep_size)",
            value=health.retained_wal_bytes,
        )
        yield GaugeMetricFamily(
            "user_migration_cdc_lag_bytes",
            "WAL written since the position the stream last acknowledged as stored in DynamoDB",
            value=health.lag_bytes,
        )
        yield GaugeMetricFamily(
            "user_migration_cdc_slot_active", "1 while a sync streams from the slot", value=int(health.active)
        )
