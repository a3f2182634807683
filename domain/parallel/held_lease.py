"""A segment's lease while a job works on it: kept renewed, changed one step at a time, and known
lost the moment a change fails or its answer comes too late to write on under it.

Every job holds its lease the same way (the migration's pages, a sync pass's changes, a verify
pass's rows): a renew goes out a third of a lease period after the lease was last renewed, by a
renew or by a checkpoint (which renews too), so a job that checkpoints often enough never sends a
renew of its own. When the job is over the renewer ends between two renewals, never in the middle
of one: the lease the job's last checkpoint starts from is the one the table holds.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from user_migration.domain.parallel.leases import OwnLease
from user_migration.domain.parallel.segments import SegmentLease
from user_migration.ports.segment_leases import SegmentLeases

# After a renewal the owner may write for 3/4 of a lease period (`leases.SAFETY_MARGIN`); the next
# renew goes out when 5/12 of a period of that is left, a third of a period after the last.
RENEW_WITH_LEFT = 5 / 12


async def sleep_or_stop(seconds: float, stop: asyncio.Event | None) -> None:
    """Sleep, or less if `stop` is set meanwhile."""
    if stop is None:
        await asyncio.sleep(seconds)
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


class HeldLease:
    """`own`'s lease while its segment is worked; see the module's docstring."""

    def __init__(self, leases: SegmentLeases, own: OwnLease, lease_seconds: float, clock: Callable[[], float]) -> None:
        self.own = own
        self.lost = asyncio.Event()
        # Set when the lease is lost or the worker is asked to stop: the job stops writing.
        self.segment_stop = asyncio.Event()
        self._leases = leases
        self._lease_seconds = lease_seconds
        self._clock = clock
        self._changing = asyncio.Lock()  # the renewer and the job's checkpoints, one at a time
        self._finished = asyncio.Event()

    def still_valid(self) -> bool:
        """Whether the worker may still write under the lease (by its own clock); once not, lost."""
        if self.lost.is_set() or not self.own.valid(self._clock()):
            self._lose()
            return False
        return True

    async def change(self, step: Callable[[SegmentLease], Awaitable[SegmentLease | None]]) -> bool:
        """Whether `step` (a renew or checkpoint, which the table makes only while the lease is
        this worker's) landed; the lease is lost when it did not, or when its answer came too late
        to write on under it. A lease marked done is nobody's (the done mark lets it go): nothing
        is sent for it any more, and it is not lost."""
        async with self._changing:
            if self.lost.is_set() or self.own.lease.done:
                return False
            sent = self._clock()
            changed = await step(self.own.lease)
            if changed is None or not self.own.valid(self._clock()):
                self._lose()
                return changed is not None
            self.own.renewed(changed, sent)
            return True

    @contextlib.asynccontextmanager
    async def kept(self, stop: asyncio.Event | None) -> AsyncIterator[HeldLease]:
        """The lease renewed in the background while the block runs (and `segment_stop` set when
        `stop` is)."""
        renewer = asyncio.create_task(self._renew_now_and_then())
        watcher = asyncio.create_task(self._stopping(stop))
        try:
            yield self
        except BaseException:
            renewer.cancel()
            raise
        finally:
            self._finished.set()
            watcher.cancel()
            await asyncio.gather(renewer, watcher, return_exceptions=True)

    def _lose(self) -> None:
        self.lost.set()
        self.segment_stop.set()

    async def _renew_now_and_then(self) -> None:
        while not self.lost.is_set() and not self.own.lease.done:
            renewed_until = self.own.valid_until
            left = self.own.valid_until - self._clock() - self._lease_seconds * RENEW_WITH_LEFT
            await sleep_or_stop(max(left, 0.01), self._finished)
            if self._finished.is_set():
                return
            if self.own.valid_until == renewed_until:  # no checkpoint renewed it meanwhile
                await self.change(self._leases.renew)  # not sent once the lease is marked done

    async def _stopping(self, stop: asyncio.Event | None) -> None:
        if stop is not None:
            await stop.wait()
            self.segment_stop.set()
