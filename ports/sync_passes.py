"""The passes of `sync --workers`: what every worker of one pass carries (the same cursors for
all), and what each segment's worker applied, kept beside the segments so that whoever sees the
pass finished records its cursor and its count once."""

from __future__ import annotations

import abc

import attrs

from user_migration.domain.model import ChangeCursor
from user_migration.domain.parallel.segments import SegmentLease


@attrs.frozen
class SyncPass:
    """Pass `number` carries the rows changed since `since` (every row when None: a full pass)
    and, once every segment is done, records `cursor` (taken when the pass began)."""

    number: int
    since: str | None
    cursor: ChangeCursor


class SyncPasses(abc.ABC):
    """The passes' parameters and their segments' results."""

    @abc.abstractmethod
    async def begin(self, proposed: SyncPass) -> SyncPass:
        """The pass numbered `proposed.number` as its first worker began it: `proposed` when no
        worker did yet, else the one that did (or, when a later pass began meanwhile, that one)."""

    @abc.abstractmethod
    async def record(self, lease: SegmentLease, applied: int) -> bool:
        """Keep how many items the segment of `lease` wrote or deleted in its pass (replacing an
        earlier pass's), only while `lease` is still as its owner last saw it; False when it is
        not (the lease was lost: nothing recorded)."""

    @abc.abstractmethod
    async def applied(self, number: int) -> dict[int, int]:
        """What each segment applied in pass `number`, by segment index (segments without a
        result left out)."""
