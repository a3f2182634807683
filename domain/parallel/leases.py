"""What a worker decides about leases: which have expired, which to take, whether its own still
holds. Pure: the lease table is read and written by the caller (`domain.parallel.migrate_worker`).

Expiry follows the Kinesis Client Library: a lease whose counter has not changed for
`lease_seconds` of this worker's own monotonic clock has expired (its owner stopped renewing),
whatever any wall clock says. The owner, for its part, counts its lease as valid only until
`lease_seconds` after it *sent* its last successful renew, minus a margin: since another worker
only starts its wait after seeing that renew, the owner stops before anyone could take the lease.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import attrs

from user_migration.domain.parallel.segments import SegmentLease

# Of a lease period, what the owner keeps in hand before its lease could be taken.
SAFETY_MARGIN = 0.25


@attrs.define
class LeaseObserver:
    """Counters as this worker last saw them, and since when (its monotonic clock)."""

    lease_seconds: float
    _seen: dict[int, tuple[int, str | None, float]] = attrs.field(factory=dict)

    def observe(self, leases: Sequence[SegmentLease], now: float) -> None:
        """Note the counters read now; a changed counter (or owner) starts its wait again."""
        for lease in leases:
            previous = self._seen.get(lease.segment.index)
            if previous is None or previous[:2] != (lease.counter, lease.owner):
                self._seen[lease.segment.index] = (lease.counter, lease.owner, now)

    def expired(self, lease: SegmentLease, now: float) -> bool:
        """Whether `lease`'s owner has not renewed it for a whole lease period, as far as seen."""
        seen = self._seen.get(lease.segment.index)
        return seen is not None and seen[:2] == (lease.counter, lease.owner) and now - seen[2] >= self.lease_seconds


def choose_lease(
    leases: Sequence[SegmentLease], observer: LeaseObserver, worker: str, now: float, rng: random.Random
) -> SegmentLease | None:
    """The next lease to take: first one of this worker's own unfinished ones (left by an earlier
    life of it under the same name), then an unowned one, then an expired one; shuffled, so
    that workers starting together rarely race for the same. Live leases of others are never
    stolen: they finish their segment, and there are many more segments than workers."""
    pending = [lease for lease in leases if not lease.done]
    for candidates in (
        [lease for lease in pending if lease.owner == worker],
        [lease for lease in pending if lease.owner is None],
        [lease for lease in pending if lease.owner not in (None, worker) and observer.expired(lease, now)],
    ):
        if candidates:
            return rng.choice(candidates)
    return None


@attrs.define
class OwnLease:
    """A lease this worker holds, and until when (its monotonic clock) it may write under it."""

    lease: SegmentLease
    lease_seconds: float
    valid_until: float = 0.0

    def renewed(self, lease: SegmentLease, sent_at: float) -> None:
        """`lease` as the table now holds it, after a take or renew sent at `sent_at`."""
        self.lease = lease
        self.valid_until = sent_at + self.lease_seconds * (1 - SAFETY_MARGIN)

    def valid(self, now: float) -> bool:
        """Whether this worker may still write under the lease."""
        return now < self.valid_until
