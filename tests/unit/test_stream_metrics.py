"""The slot's retained WAL and lag in /metrics: read at each scrape, nothing without a slot."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from user_migration.adapters.memory.changes import InMemoryChangeStream
from user_migration.domain.errors import SetupError, SourceUnavailable
from user_migration.domain.sync.row_changes import RowChange, StreamHealth
from user_migration.entrypoints.http.stream_metrics import StreamCollector


class _Failing(InMemoryChangeStream):
    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    async def health(self) -> StreamHealth:
        raise self.error


def exposition(collector: StreamCollector) -> str:
    registry = CollectorRegistry()
    registry.register(collector)
    return generate_latest(registry).decode()


async def test_the_slot_s_retained_wal_and_lag_are_gauges() -> None:
    stream = InMemoryChangeStream()
    stream.held_wal = 4_096
    stream.commit([RowChange(1)])
    collector = StreamCollector()
    assert exposition(collector) == ""  # nothing before the first reading
    await collector.refresh(stream)
    text = exposition(collector)
    assert "user_migration_cdc_retained_wal_bytes 4196.0" in text
    assert "user_migration_cdc_lag_bytes 100.0" in text
    assert "user_migration_cdc_slot_active 0.0" in text


async def test_an_outage_keeps_the_last_reading_and_a_gone_slot_shows_nothing() -> None:
    collector = StreamCollector()
    await collector.refresh(InMemoryChangeStream())
    await collector.refresh(_Failing(SourceUnavailable("PostgreSQL is unavailable")))
    assert "user_migration_cdc_lag_bytes 0.0" in exposition(collector)
    await collector.refresh(_Failing(SetupError(["replication slot s does not exist"])))
    assert exposition(collector) == ""
