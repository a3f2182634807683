"""Leases on segments of the id space: how the workers of one run share it.

The protocol is the Kinesis Client Library's lease table: one record per segment with its owner,
a lease counter that only grows, and the segment's checkpoint. Every change is conditional on the
counter the changer last saw and adds one to it, so two workers can never both believe they took,
renewed or checkpointed the same lease; expiry is judged by each worker on its own monotonic
clock (a counter unchanged for a lease period), never by comparing wall clocks.
"""

from __future__ import annotations

import abc

import attrs

from user_migration.domain.keys import UserId
from user_migration.domain.parallel.segments import SegmentLease, SegmentPlan


@attrs.frozen
class LeaseActivity:
    """Leases taken over all runs, and of those the ones taken after their owner's expired."""

    takes: int = 0
    steals: int = 0


@attrs.define
class LeaseChange:
    """A change of a segment's lease, from `seen` to `wanted` (as `SegmentLeases.checkpoint` makes
    it), to be made in the same write as the settle of a hold in that segment where the state keeps
    both in one item (`UsersHold.apply_with_lease`). That write checks both conditions: the hold's,
    and the lease's (still at `seen`'s counter, owned by `seen.owner` in `seen.run`).

    `made`, once the settle is done: True when the change was made (by that write, or found made
    after its answer was lost and the write sent again); False when the lease was no longer as seen
    (another worker took it: the settle was made on its own); None when the state did not fold it
    (the caller makes the change on its own, as `SegmentLeases.checkpoint`)."""

    seen: SegmentLease
    wanted: SegmentLease
    made: bool | None = None


class SegmentLeases(abc.ABC):
    """The lease table of the runs over one pair of tables."""

    @abc.abstractmethod
    async def plan(self) -> SegmentPlan:
        """The segments (made once, from the source's distribution, by whoever asks first)."""

    @abc.abstractmethod
    async def run_number(self) -> int:
        """The current run: 1 for the first, one more at each `restart`."""

    @abc.abstractmethod
    async def restart(self, seen_run: int) -> int:
        """Begin a new run (every segment pending again from its lowest id) unless the run is no
        longer `seen_run` (another worker restarted it meanwhile): the current run's number."""

    @abc.abstractmethod
    async def leases(self) -> list[SegmentLease]:
        """Every segment's lease in the current run, in segment order (a segment not yet worked
        on in this run is pending from its lowest id)."""

    @abc.abstractmethod
    async def take(self, lease: SegmentLease, worker: str) -> SegmentLease | None:
        """Own `lease` as `worker`, if it is still as seen (same counter); None when someone else
        changed it first."""

    @abc.abstractmethod
    async def renew(self, lease: SegmentLease) -> SegmentLease | None:
        """Keep owning `lease`; None when it was lost (taken by another worker after expiring)."""

    @abc.abstractmethod
    async def checkpoint(self, lease: SegmentLease, next_user_id: UserId, done: bool = False) -> SegmentLease | None:
        """Record the segment's checkpoint (and renew); with `done` the segment is finished and
        its lease let go. None when the lease was lost: nothing is recorded."""

    @abc.abstractmethod
    async def release(self, lease: SegmentLease) -> None:
        """Let go of `lease` (the checkpoint stays), so another worker may take it at once."""

    @abc.abstractmethod
    async def activity(self) -> LeaseActivity:
        """The takes and steals of every worker so far (for the metrics)."""
