"""Prometheus metrics of one app: users by outcome, batches, DynamoDB retries, HTTP requests, the
last verify's differences by class, the write budget, the dependencies' timeouts."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from user_migration.adapters.dynamodb.counters import TargetCounters
from user_migration.domain.budget.bucket import BudgetSnapshot
from user_migration.domain.migrate.report import MigrationReport
from user_migration.domain.observe.stall_watch import StallWatch
from user_migration.domain.verify.differences import LatestVerification, Problem
from user_migration.entrypoints.http.budget_metrics import budget_metrics
from user_migration.entrypoints.http.dependency_metrics import dependency_metrics
from user_migration.entrypoints.http.readings import Readings
from user_migration.entrypoints.http.segment_metrics import SegmentsCollector
from user_migration.entrypoints.http.stats_metrics import StatisticsCollector
from user_migration.entrypoints.http.stream_metrics import StreamCollector
from user_migration.entrypoints.http.sync_metrics import SyncCollector


def _target_metrics(counters: TargetCounters) -> Iterator[Metric]:
    for name, help_text, value in (
        ("user_migration_dynamodb_retries", "DynamoDB requests retried", counters.retries),
        ("user_migration_dynamodb_throttles", "DynamoDB throttling errors", counters.throttles),
        (
            "user_migration_dynamodb_unprocessed_items",
            "items DynamoDB left unprocessed",
            counters.unprocessed_items,
        ),
        ("user_migration_dynamodb_unprocessed_keys", "keys DynamoDB left unprocessed", counters.unprocessed_keys),
    ):
        yield CounterMetricFamily(name, help_text, value=value)


def _verify_metrics(latest: LatestVerification) -> Iterator[Metric]:
    """The counts of the last verify in this process (a whole run or an HTTP page); nothing
    before the first, so that no dashboard reads "no differences" from a verify never run."""
    if latest.counts is None or latest.finished_at is None:
        return
    differences = GaugeMetricFamily(
        "user_migration_verify_differences", "differences the last verify found, by class", labels=["problem"]
    )
    for problem in Problem:
        differences.add_metric([problem.value], latest.counts.of(problem))
    yield differences
    yield GaugeMetricFamily(
        "user_migration_verify_checked", "source rows the last verify compared", value=latest.counts.checked
    )
    yield GaugeMetricFamily(
        "user_migration_verify_finished_timestamp_seconds",
        "when the last verify finished (Unix time)",
        value=latest.finished_at.timestamp(),
    )


class MigrationMetrics:
    """The app's metrics, in a registry of their own (no process-wide state)."""

    def __init__(
        self,
        target_counters: Callable[[], TargetCounters | None] = lambda: None,
        latest_verification: Callable[[], LatestVerification | None] = lambda: None,
        write_budget: Callable[[], BudgetSnapshot | None] = lambda: None,
        stall_watch: Callable[[], StallWatch | None] = lambda: None,
    ) -> None:
        self.registry = CollectorRegistry()
        self.users = Counter(
            "user_migration_users",
            "users by outcome (migrated, skipped)",
            ["outcome", "dry_run"],
            registry=self.registry,
        )
        self.failed = Counter(
            "user_migration_users_failed",
            "users that failed, by reason class",
            ["reason", "dry_run"],
            registry=self.registry,
        )
        self.batches = Counter(
            "user_migration_batches", "migration requests handled", ["mode", "dry_run"], registry=self.registry
        )
        self.batch_seconds = Histogram(
            "user_migration_batch_duration_seconds",
            "time to handle one migration request",
            ["mode"],
            registry=self.registry,
        )
        self.http_requests = Counter(
            "user_migration_http_requests",
            "HTTP requests by route and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.http_seconds = Histogram(
            "user_migration_http_request_duration_seconds", "HTTP request duration", ["route"], registry=self.registry
        )
        self.registry.register(Readings(lambda: target_counters() or TargetCounters(), _target_metrics))
        self.registry.register(Readings(latest_verification, _verify_metrics))
        self.registry.register(Readings(write_budget, budget_metrics))
        self.registry.register(Readings(stall_watch, dependency_metrics))
        self.sync = SyncCollector()
        self.registry.register(self.sync)
        self.statistics = StatisticsCollector()
        self.registry.register(self.statistics)
        self.segments = SegmentsCollector()
        self.registry.register(self.segments)
        self.stream = StreamCollector()
        self.registry.register(self.stream)

    def record_batch(self, report: MigrationReport, mode: str) -> None:
        """Count one migration request and its users."""
        dry_run = "true" if report.dry_run else "false"
        self.batches.labels(mode, dry_run).inc()
        self.batch_seconds.labels(mode).observe(report.processing_time_ms / 1000)
        self.users.labels("migrated", dry_run).inc(report.migrated_count)
        self.users.labels("skipped", dry_run).inc(report.skipped_count)
        # Reasons carry stable codes (`missing_email`, `invalid_profile`, `write_failed`...): a
        # reworded message never changes a label.
        for code in report.reason_codes:
            self.failed.labels(code, dry_run).inc()

    def exposition(self) -> bytes:
        """The Prometheus text format of every metric."""
        return generate_latest(self.registry)
