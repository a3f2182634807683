"""Segment items as a lease take found them, for the segment's ledger to start from.

A lease take is an `UpdateItem` of the segment's item, and its answer (`ReturnValues: ALL_NEW`)
is the whole item as that take left it, holds and counters included. The segment's ledger in
the same process (`adapters.dynamodb.holds.ProgressLedger`) starts from it instead of reading the
item first: its writes are conditional on the item's `version`, which no lease change touches, so
an item changed by another process since fails the first write's condition and is read again, as
a stale snapshot always is.
"""

from __future__ import annotations

from typing import Any


class SegmentItems:
    """The latest item a lease take of this process got back, per segment, until its ledger asks
    (once: a ledger starts once, and an item noted after that would only be kept for nothing)."""

    def __init__(self) -> None:
        self._items: dict[int, dict[str, Any]] = {}
        self._asked: set[int] = set()

    def note(self, index: int, item: dict[str, Any]) -> None:
        if index not in self._asked:
            self._items[index] = item

    def take(self, index: int) -> dict[str, Any] | None:
        """The item noted for segment `index` (None when none was); later notes of it are dropped."""
        self._asked.add(index)
        return self._items.pop(index, None)
