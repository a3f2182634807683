"""Metrics of a value read at each scrape (the process's budget, its stall watch, its target's counters,
its last verify): none while there is nothing to read."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

from prometheus_client.core import Metric
from prometheus_client.registry import Collector

Reading = TypeVar("Reading")


class Readings(Collector, Generic[Reading]):
    """`metrics` of what `read` answers at each scrape; no metric when it answers None."""

    def __init__(self, read: Callable[[], Reading | None], metrics: Callable[[Reading], Iterable[Metric]]) -> None:
        self._read = read
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        reading = self._read()
        if reading is not None:
            yield from self._metrics(reading)
