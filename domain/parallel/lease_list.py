"""The lease table as a worker last read it, kept up to date with its own takes and finished
segments, so that it reads the table again only when the list cannot tell it more (the Kinesis
Client Library's lease taker does the same; see `domain.parallel.lease_loop`)."""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from user_migration.domain.parallel.segments import SegmentLease


@attrs.define
class LeaseList:
    """Every segment's lease as last read (None: to be read), with this worker's changes since."""

    leases: list[SegmentLease] | None = None
    # Whether `leases` is exactly what the table answered (no change of this worker's since).
    fresh: bool = False

    def read(self, leases: Sequence[SegmentLease]) -> None:
        """The leases just read from the table."""
        self.leases = list(leases)
        self.fresh = True

    def forget(self) -> None:
        """The list may be wrong now: read the table again before choosing."""
        self.leases = None
        self.fresh = False

    def taken(self, lease: SegmentLease) -> None:
        """This worker took `lease` (as the table now holds it)."""
        self._replace(lease)

    def ended(self, index: int, outcome: str) -> None:
        """This worker's work on segment `index` ended: marked done under its lease, or otherwise
        (stopped, lost, failed), after which the table alone tells what the lease is now."""
        if outcome != "done" or self.leases is None:
            self.forget()
            return
        for lease in self.leases:
            if lease.segment.index == index:
                self._replace(attrs.evolve(lease, owner=None, done=True))

    def pending_besides(self, indexes: set[int]) -> bool:
        """Whether a lease not done is listed outside `indexes` (others' to look at again)."""
        return any(not lease.done and lease.segment.index not in indexes for lease in self.leases or [])

    def _replace(self, lease: SegmentLease) -> None:
        if self.leases is not None:
            self.leases = [lease if old.segment.index == lease.segment.index else old for old in self.leases]
        self.fresh = False
