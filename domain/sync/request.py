"""What a pass of `sync`, a follow of passes and the change stream are asked to do: one value each,
which the library, the CLI and the workers hand on whole."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Generic, TypeVar

import attrs

from user_migration.domain.errors import DependencyUnavailable
from user_migration.domain.migrate.request import MAX_BATCH_SIZE

if TYPE_CHECKING:
    from user_migration.domain.sync.poll import SyncProgressCallback
    from user_migration.domain.sync.stream import StreamProgressCallback

PassSummary = TypeVar("PassSummary")


@attrs.frozen
class SyncRequest:
    """One pass (or a worker's share of one): `batch_size` rows a page, each page's progress to
    `on_progress`; setting `stop` ends it cleanly after the pages in hand (the cursor stays)."""

    batch_size: int = MAX_BATCH_SIZE
    stop: asyncio.Event | None = None
    on_progress: SyncProgressCallback | None = None


@attrs.frozen
class FollowRequest(Generic[PassSummary]):
    """Pass after pass, `interval_seconds` apart, until `stop` is set: each pass's summary to `on_pass`;
    with `on_unavailable`, a pass that finds a dependency down is told to it and tried again after the
    interval (without, that error ends the follow)."""

    interval_seconds: float
    stop: asyncio.Event
    batch_size: int = MAX_BATCH_SIZE
    on_pass: Callable[[PassSummary], None] | None = None
    on_progress: SyncProgressCallback | None = None
    on_unavailable: Callable[[DependencyUnavailable], None] | None = None

    def each_pass(self) -> SyncRequest:
        """What each of the passes is asked."""
        return SyncRequest(self.batch_size, self.stop, self.on_progress)


@attrs.frozen
class StreamRequest:
    """Stream the source's changes until `stop` is set, `batch_size` rows a page in the backfill (its
    progress to `on_backfill_progress`), the stream's to `on_progress`; `max_retained_wal` (bytes)
    is the WAL the slot may hold back before it is told; `on_unavailable` as in `FollowRequest`."""

    stop: asyncio.Event
    batch_size: int = MAX_BATCH_SIZE
    max_retained_wal: int | None = None
    on_progress: StreamProgressCallback | None = None
    on_backfill_progress: SyncProgressCallback | None = None
    on_unavailable: Callable[[DependencyUnavailable], None] | None = None
