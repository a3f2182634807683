"""The write budget's metrics: units spent, throttling met, and the rate this process may spend now.

Read from the process's budget at each scrape (`domain.budget.bucket.BudgetSnapshot`), so they cover
every write of the process, the HTTP batch endpoint's and any run through the library alike.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from user_migration.domain.budget.bucket import BudgetSnapshot


def budget_metrics(snapshot: BudgetSnapshot) -> Iterator[Metric]:
    """No rate gauge for an unlimited budget (there is no rate to show)."""
    yield CounterMetricFamily(
        "user_migration_write_units_spent",
        "DynamoDB write capacity units spent on the users table (as DynamoDB reported them)",
        value=snapshot.units_spent,
    )
    yield CounterMetricFamily(
        "user_migration_write_throttled",
        "write requests DynamoDB throttled or left items of unprocessed (each slows the budget down)",
        value=snapshot.throttled,
    )
    if snapshot.units_per_second is not None:
        yield GaugeMetricFamily(
            "user_migration_write_budget_units_per_second",
            "write units per second this process may spend now: its share of the budget, lowered while throttled",
            value=snapshot.units_per_second,
        )
