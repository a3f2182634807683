"""The run's segments by state and the workers' lease takes and steals, read from the lease
table at each scrape (one batch read of the segments' items), so that they cover every worker of
the run, on whichever host it runs."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from user_migration.domain.errors import DependencyUnavailable, SetupError
from user_migration.entrypoints.http.sync_metrics import REFRESH_TIMEOUT_SECONDS
from user_migration.ports.segment_leases import LeaseActivity, SegmentLeases

SEGMENT_STATES = ("pending", "leased", "done")


class SegmentsCollector(Collector):
    """The segments as the last `refresh` read them; nothing before the first reading."""

    def __init__(self) -> None:
        self._reading: tuple[int, Counter[str], LeaseActivity] | None = None

    async def refresh(self, leases: SegmentLeases) -> None:
        """Read the lease table again; when it cannot be read now, the previous reading stays."""

        async def read() -> tuple[int, Counter[str], LeaseActivity]:
            current = await leases.leases()
            run = current[0].run if current else await leases.run_number()
            return run, Counter(lease.state for lease in current), await leases.activity()

        with contextlib.suppress(DependencyUnavailable, SetupError, TimeoutError):
            self._reading = await asyncio.wait_for(read(), REFRESH_TIMEOUT_SECONDS)

    def collect(self) -> Iterator[Metric]:
        if self._reading is None:
            return
        run, states, activity = self._reading
        yield GaugeMetricFamily("user_migration_run", "the number of the current run over the source", value=run)
        segments = GaugeMetricFamily(
            "user_migration_segments", "segments of the current run by state", labels=["state"]
        )
        for state in SEGMENT_STATES:
            segments.add_metric([state], states.get(state, 0))
        yield segments
        yield CounterMetricFamily(
            "user_migration_lease_takes", "segment leases taken by the workers, all runs", value=activity.takes
        )
        yield CounterMetricFamily(
            "user_migration_lease_steals",
            "segment leases taken after their owner stopped renewing them, all runs",
            value=activity.steals,
        )
