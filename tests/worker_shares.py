"""The order the suite's tests are collected in, so that pytest-xdist's `--dist worksteal` starts
each worker on its share of the slowest tests.

worksteal hands each of N workers a contiguous N-th of the collection at the start, and an idle
worker later steals the second half of the longest queue left. Tests that take long and wait
(stalls, leases running out, processes killed and resumed) that sit late in a share end the run
with the other workers idle: in collection order, the last 9% of the tests took 200 of the suite's
470 s. So the slow tests (`slow_tests.json`: a fresh clone's `build/test-times.xml`, tests of 4 s
or more) go first, each to the share with the least of them so far (longest first), and the other
tests follow in collection order (a module's tests stay together), each share as long as xdist
makes it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, TypeVar


class Collected(Protocol):
    @property
    def nodeid(self) -> str: ...


T = TypeVar("T", bound=Collected)


def share_sizes(count: int, workers: int) -> list[int]:
    """How many tests worksteal hands each worker at the start (`WorkStealingScheduling.check_schedule`)."""
    sizes, left = [], count
    for remaining in range(workers, 0, -1):
        sizes.append(left // remaining)
        left -= sizes[-1]
    return sizes


def in_worker_shares(items: Sequence[T], workers: int, seconds: Mapping[str, float]) -> list[T]:
    """`items` reordered: each worker's share starts with its part of the slow tests."""
    if workers < 2:
        return list(items)
    slow = sorted((item for item in items if seconds.get(item.nodeid, 0.0) > 0), key=lambda i: -seconds[i.nodeid])
    rest = [item for item in items if seconds.get(item.nodeid, 0.0) <= 0]
    shares: list[list[T]] = [[] for _ in range(workers)]
    loads = [0.0] * workers
    for item in slow:
        lightest = min(range(workers), key=lambda share: (loads[share], share))
        shares[lightest].append(item)
        loads[lightest] += seconds[item.nodeid]
    taken = 0
    for share, size in zip(shares, share_sizes(len(items), workers), strict=True):
        more = max(0, size - len(share))
        share.extend(rest[taken : taken + more])
        taken += more
    shares[-1].extend(rest[taken:])
    return [item for share in shares for item in share]
