"""The dependencies' timeouts and silences, from the process's `StallWatch`: requests to PostgreSQL or
DynamoDB that got no answer in time, counted per dependency, and how long each has now left a request
waiting without answering anything."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from user_migration.domain.observe.stall_watch import StallWatch


def dependency_metrics(watch: StallWatch) -> Iterator[Metric]:
    """`user_migration_dependency_timeouts_total{dependency}` and `..._silent_seconds{dependency}`."""
    timeouts = CounterMetricFamily(
        "user_migration_dependency_timeouts",
        "requests to a dependency (PostgreSQL, DynamoDB) that got no answer within their timeout",
        labels=["dependency"],
    )
    silent = GaugeMetricFamily(
        "user_migration_dependency_silent_seconds",
        "how long a dependency has left a request waiting without answering anything (0: it answers)",
        labels=["dependency"],
    )
    stalls = {stall.dependency: stall.seconds for stall in watch.stalls()}
    for dependency, count in sorted(watch.timeouts.items()):
        timeouts.add_metric([dependency.lower()], count)
        silent.add_metric([dependency.lower()], stalls.get(dependency, 0.0))
    yield timeouts
    yield silent
