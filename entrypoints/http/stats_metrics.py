"""The statistics as gauges, read at each scrape the way `GET /m2/migration/stats` answers: the
source's count from the one the app keeps (never a `count(*)` per scrape), the DynamoDB side from
the state's counters."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from user_migration.domain.errors import DependencyUnavailable, SetupError
from user_migration.domain.migrate.report import MigrationStats
from user_migration.domain.observe.statistics import Statistics
from user_migration.entrypoints.http.sync_metrics import REFRESH_TIMEOUT_SECONDS


class StatisticsCollector(Collector):
    """The statistics as the last `refresh` read them; nothing before the first reading."""

    def __init__(self) -> None:
        self._stats: MigrationStats | None = None

    async def refresh(self, statistics: Statistics) -> None:
        """Read the statistics again; when they cannot be read now, the previous reading stays."""
        with contextlib.suppress(DependencyUnavailable, SetupError, TimeoutError):
            self._stats = await asyncio.wait_for(statistics.read(), REFRESH_TIMEOUT_SECONDS)

    def collect(self) -> Iterator[Metric]:
        stats = self._stats
        if stats is None:
            return
        for name, help_text, value in (
            (
                "total_postgres_users",
                "source users, exact as of ..._as_of or estimated (see ..._exact)",
                stats.total_postgres_users,
            ),
            (
                "total_postgres_users_exact",
                "1 when total_postgres_users is an exact count, 0 for an estimate",
                int(stats.total_postgres_users_exact),
            ),
            (
                "total_postgres_users_as_of_timestamp_seconds",
                "the moment total_postgres_users holds for (Unix time)",
                stats.total_postgres_users_as_of.timestamp(),
            ),
            ("total_dynamo_users", "users the migration has written to DynamoDB", stats.total_dynamo_users),
            ("pending_migration", "total_postgres_users - total_dynamo_users, at least 0", stats.pending_migration),
            ("failed_users", "users whose latest attempt failed validation or writing", stats.failed_users),
        ):
            yield GaugeMetricFamily(f"user_migration_{name}", help_text, value=value)
