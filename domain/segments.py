"""The id space split into segments: the units of work that workers lease, and of bookkeeping.

A plan covers every id from 0 to `MAX_USER_ID` with contiguous segments, so that any user (also
one inserted after the plan was made, above every id seen) belongs to exactly one segment.
Boundaries come from the source's own distribution of ids (quantiles), so skewed or sparse ids
still split into segments of about equal numbers of users; the plan is made once and kept, since
the counters kept per segment must keep meaning the same ids.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Iterable, Iterator, Sequence

import attrs

from domain.request import MAX_USER_ID

# Many more segments than workers (a worker that dies leaves a small piece, and the last pieces
# of a run are small), but a bounded number: statistics read every segment's item.
MIN_SEGMENTS = 16
MAX_SEGMENTS = 1024
USERS_PER_SEGMENT = 50_000
# Fewer segments than `MIN_SEGMENTS` for a small source: a page of users (up to 1,000) should
# mostly fall in one segment, since a page over several holds each of them in turn.
FEWEST_USERS_PER_SEGMENT = 500


def segments_for(total_users: int) -> int:
    """How many segments a source of `total_users` gets: about `USERS_PER_SEGMENT` each, at least
    `MIN_SEGMENTS` and at most `MAX_SEGMENTS`, but none of fewer than `FEWEST_USERS_PER_SEGMENT`
    users (a small source has fewer segments, at least one)."""
    wanted = min(MAX_SEGMENTS, max(MIN_SEGMENTS, math.ceil(total_users / USERS_PER_SEGMENT)))
    return max(1, min(wanted, total_users // FEWEST_USERS_PER_SEGMENT))


@attrs.frozen
class Segment:
    """Ids `lowest..highest` (inclusive), the `index`-th piece of the plan."""

    index: int
    lowest: int
    highest: int

    def __contains__(self, user_id: object) -> bool:
        return isinstance(user_id, int) and self.lowest <= user_id <= self.highest


@attrs.frozen
class SegmentPlan:
    """Contiguous segments from 0 to `MAX_USER_ID`; `starts` are their lowest ids, ascending."""

    starts: tuple[int, ...]

    def __attrs_post_init__(self) -> None:
        if not self.starts or self.starts[0] != 0 or any(b <= a for a, b in itertools.pairwise(self.starts)):
            raise ValueError(f"not a segment plan: starts {self.starts[:5]}... must rise from 0")

    @classmethod
    def from_boundaries(cls, boundaries: Iterable[int]) -> SegmentPlan:
        """A plan whose segments start at 0 and at each of `boundaries` (ids at the source's
        quantiles; duplicates, and ids out of range, are dropped)."""
        return cls(tuple(sorted({0, *(b for b in boundaries if 0 < b <= MAX_USER_ID)})))

    def __len__(self) -> int:
        return len(self.starts)

    def __iter__(self) -> Iterator[Segment]:
        return (self[index] for index in range(len(self.starts)))

    def __getitem__(self, index: int) -> Segment:
        highest = self.starts[index + 1] - 1 if index + 1 < len(self.starts) else MAX_USER_ID
        return Segment(index, self.starts[index], highest)

    def index_of(self, user_id: int) -> int:
        """The index of the segment holding `user_id` (ids below 0 belong to the first)."""
        return max(bisect.bisect_right(self.starts, user_id) - 1, 0)

    def covering(self, lowest: int, highest: int) -> list[Segment]:
        """The segments that ids `lowest..highest` fall in, in order."""
        return [self[index] for index in range(self.index_of(lowest), self.index_of(highest) + 1)]

    def group(self, user_ids: Iterable[int]) -> dict[int, list[int]]:
        """The ids by the index of their segment."""
        groups: dict[int, list[int]] = {}
        for user_id in user_ids:
            groups.setdefault(self.index_of(user_id), []).append(user_id)
        return groups


@attrs.frozen
class SegmentLease:
    """A segment as the lease table holds it for the current run."""

    segment: Segment
    run: int
    owner: str | None = None
    counter: int = 0
    # The next id to read: every user of the segment below it was handled in this run.
    checkpoint: int = attrs.field(default=attrs.Factory(lambda self: self.segment.lowest, takes_self=True))
    done: bool = False

    @property
    def state(self) -> str:
        """`done`, `leased` (a worker owns it; perhaps one that died, until another takes it) or `pending`."""
        if self.done:
            return "done"
        return "leased" if self.owner is not None else "pending"


@attrs.frozen
class ScanPart:
    """One of `total` parts of a scan of the whole target (DynamoDB's parallel scan: every item is
    in exactly one part), so that the workers of a verify pass share the search for extra items."""

    index: int
    total: int

    def __attrs_post_init__(self) -> None:
        if not 0 <= self.index < self.total:
            raise ValueError(f"scan part {self.index} of {self.total} does not exist")


def resume_point(leases: Iterable[SegmentLease]) -> int | None:
    """Where the run stands as one id: every user below it was handled in this run (the lowest
    checkpoint of an unfinished segment); None once every segment is done."""
    return min((lease.checkpoint for lease in leases if not lease.done), default=None)


def quantile_boundaries(sorted_ids: Sequence[int], segments: int) -> list[int]:
    """The ids that split `sorted_ids` (ascending, a sample or all) into `segments` equal parts."""
    if not sorted_ids or segments <= 1:
        return []
    step = len(sorted_ids) / segments
    return sorted({sorted_ids[min(int(step * part), len(sorted_ids) - 1)] for part in range(1, segments)})
