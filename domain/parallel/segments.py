"""The id space split into segments: the units of work that workers lease, and of bookkeeping.

A plan covers every id of the key's id space (from 0 to `MAX_USER_ID` for an integer key; every
uuid; every text) with contiguous segments, so that any user (also
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

from user_migration.domain.keys import KeyKind, UserId

# Many more segments than workers (a worker that dies leaves a small piece, and the last pieces
# of a run are small), but a bounded number: statistics read every segment's item.
MIN_SEGMENTS = 16
MAX_SEGMENTS = 1024
USERS_PER_SEGMENT = 50_000
# Fewer segments than `MIN_SEGMENTS` for a small source: a page of users (up to 1,000) should
# mostly fall in one segment, since a page over several holds each of them in turn (the default of
# the `SEGMENT_MIN_USERS` setting).
FEWEST_USERS_PER_SEGMENT = 500


def segments_for(total_users: int, fewest_users: int = FEWEST_USERS_PER_SEGMENT) -> int:
    """How many segments a source of `total_users` gets: about `USERS_PER_SEGMENT` each, at least
    `MIN_SEGMENTS` and at most `MAX_SEGMENTS`, but none of fewer than `fewest_users` users (a small
    source has fewer segments, at least one)."""
    wanted = min(MAX_SEGMENTS, max(MIN_SEGMENTS, math.ceil(total_users / USERS_PER_SEGMENT)))
    return max(1, min(wanted, total_users // max(1, fewest_users)))


@attrs.frozen
class Segment:
    """Ids `lowest..highest` (inclusive), the `index`-th piece of the plan."""

    index: int
    lowest: UserId
    highest: UserId

    def __contains__(self, user_id: object) -> bool:
        return (
            isinstance(user_id, type(self.lowest))
            and not isinstance(user_id, bool)
            and self.lowest <= user_id <= self.highest  # type: ignore[operator]  # of the same type, checked above
        )


@attrs.frozen
class SegmentPlan:
    """Contiguous segments over the key's id space (from 0 to `MAX_USER_ID` for an integer key);
    `starts` are their lowest ids, ascending, the first the id space's first (its kind tells the key's)."""

    starts: tuple[UserId, ...]

    def __attrs_post_init__(self) -> None:
        if not self.starts:
            raise ValueError("not a segment plan: no starts")
        kind = KeyKind.of_first(self.starts[0])
        if (
            self.starts[0] != kind.first
            or not all(kind.holds(start) for start in self.starts)
            or any(b <= a for a, b in itertools.pairwise(self.starts))  # type: ignore[operator]  # one kind
        ):
            raise ValueError(f"not a segment plan: starts {self.starts[:5]}... must rise from {kind.first!r}")

    @property
    def kind(self) -> KeyKind:
        """The kind of key the plan splits."""
        return KeyKind.of_first(self.starts[0])

    @classmethod
    def from_boundaries(cls, boundaries: Iterable[UserId], kind: KeyKind = KeyKind.INTEGER) -> SegmentPlan:
        """A plan whose segments start at the first id and at each of `boundaries` (another plan's
        starts; duplicates, and ids out of range or of another kind, are dropped)."""
        first = kind.first
        inside = {b for b in boundaries if kind.holds(b) and first < b <= kind.last}  # type: ignore[operator]
        return cls(tuple(sorted({first, *inside})))

    @classmethod
    def from_samples(cls, samples: Iterable[UserId], kind: KeyKind = KeyKind.INTEGER) -> SegmentPlan:
        """A plan split at ids sampled from the source at its quantiles. An integer sample starts a
        segment (as it always did); a uuid or text sample ends one, the next starting just after it (a
        text has no id just before it, so a segment's last id must be a sample)."""
        if kind is KeyKind.INTEGER:
            return cls.from_boundaries(samples, kind)
        starts = (kind.after(sample) for sample in samples if kind.holds(sample))
        return cls.from_boundaries([start for start in starts if start is not None], kind)

    def samples(self) -> list[UserId]:
        """What `from_samples` makes this very plan from (another kind of lease on the same segments)."""
        if self.kind is KeyKind.INTEGER:
            return list(self.starts[1:])
        return [self[index].highest for index in range(len(self.starts) - 1)]

    def __len__(self) -> int:
        return len(self.starts)

    def __iter__(self) -> Iterator[Segment]:
        return (self[index] for index in range(len(self.starts)))

    def __getitem__(self, index: int) -> Segment:
        kind = self.kind
        highest = kind.before(self.starts[index + 1]) if index + 1 < len(self.starts) else kind.last
        return Segment(index, self.starts[index], highest)

    def index_of(self, user_id: UserId) -> int:
        """The index of the segment holding `user_id` (ids below 0 belong to the first)."""
        return max(bisect.bisect_right(self.starts, user_id) - 1, 0)

    def covering(self, lowest: UserId, highest: UserId) -> list[Segment]:
        """The segments that ids `lowest..highest` fall in, in order."""
        return [self[index] for index in range(self.index_of(lowest), self.index_of(highest) + 1)]

    def group(self, user_ids: Iterable[UserId]) -> dict[int, list[UserId]]:
        """The ids by the index of their segment."""
        groups: dict[int, list[UserId]] = {}
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
    checkpoint: UserId = attrs.field(default=attrs.Factory(lambda self: self.segment.lowest, takes_self=True))
    done: bool = False

    def checkpointed(self, next_user_id: UserId, done: bool = False) -> SegmentLease:
        """This lease as its checkpoint at `next_user_id` leaves it (counter + 1); `done` lets it go."""
        return attrs.evolve(
            self, counter=self.counter + 1, checkpoint=next_user_id, done=done, owner=None if done else self.owner
        )

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


def resume_point(leases: Iterable[SegmentLease]) -> UserId | None:
    """Where the run stands as one id: every user below it was handled in this run (the lowest
    checkpoint of an unfinished segment); None once every segment is done."""
    return min((lease.checkpoint for lease in leases if not lease.done), default=None)


def quantile_boundaries(sorted_ids: Sequence[UserId], segments: int) -> list[UserId]:
    """The ids that split `sorted_ids` (ascending, a sample or all) into `segments` equal parts."""
    if not sorted_ids or segments <= 1:
        return []
    step = len(sorted_ids) / segments
    return sorted({sorted_ids[min(int(step * part), len(sorted_ids) - 1)] for part in range(1, segments)})
