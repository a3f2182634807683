"""The passes of `sync --workers`: what every worker of one pass carries (the same cursors for
all), and what each segment's worker applied (`ports.segment_results`), so that whoever sees the
pass finished records its cursor and its count once."""

from __future__ import annotations

import abc

import attrs

from user_migration.domain.model import ChangeCursor
from user_migration.ports.segment_results import SegmentResults


@attrs.frozen
class SyncPass:
    """Pass `number` carries the rows changed since `since` (every row when None: a full pass)
    and, once every segment is done, records `cursor` (taken when the pass began)."""

    number: int
    since: str | None
    cursor: ChangeCursor


class SyncPasses(SegmentResults[int], abc.ABC):
    """The passes' parameters, and how many items each segment wrote or deleted in its pass (its result)."""

    @abc.abstractmethod
    async def begin(self, proposed: SyncPass) -> SyncPass:
        """The pass numbered `proposed.number` as its first worker began it: `proposed` when no
        worker did yet, else the one that did (or, when a later pass began meanwhile, that one)."""
