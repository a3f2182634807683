"""Row changes as a change stream (PostgreSQL's logical replication) tells them, and what a batch
of them comes to.

A stream delivers committed transactions in commit order, each with its commit position (for
PostgreSQL, the WAL position just past its commit record: it grows with every commit). That
position is the version of everything the transaction wrote, in the "never overwrite newer
data" rule. Stream versions sit above every row version a timestamp or counter column gives
(`STREAM_VERSION_BASE`): an item the polling backfill wrote from a row is always older than any
change the stream carries for it, so switching from polling to the stream never leaves a change
refused as "older".
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import attrs

from user_migration.domain.keys import UserId

# Microseconds since 1970 stay below 2.6e17 until the year 9999; positions are 64-bit (< 1.9e19):
# the sum stays within DynamoDB's 38 digits.
STREAM_VERSION_BASE = 10**18


def stream_version(position: int) -> int:
    """The version of what a transaction committed at `position` wrote."""
    return STREAM_VERSION_BASE + position


@attrs.frozen
class RowChange:
    """A row of the users table was inserted or updated (`deleted=False`), or deleted."""

    user_id: UserId
    deleted: bool = False


@attrs.frozen
class CommittedChanges:
    """One source transaction's changes to the users table, in the order it made them."""

    position: int
    committed_at: datetime
    changes: tuple[RowChange, ...]
    # The source's id of the transaction (PostgreSQL's 32-bit xid; 0 where it has none).
    transaction_id: int = 0


@attrs.frozen
class ChangeBatch:
    """What a stream delivered: whole transactions in commit order, and `delivered_through`, the
    position up to which every transaction was delivered (at least the last one's; further when
    the source went on without touching the users table)."""

    transactions: tuple[CommittedChanges, ...]
    delivered_through: int

    @property
    def change_count(self) -> int:
        """How many row changes the batch holds."""
        return sum(len(transaction.changes) for transaction in self.transactions)


@attrs.frozen
class NetChanges:
    """What a batch of transactions comes to, per user: the last change wins, at its position."""

    upserts: dict[UserId, int]  # user id -> position of the transaction that last wrote the row
    deletes: dict[UserId, int]  # user id -> position of the transaction that deleted it last


def net_changes(transactions: Iterable[CommittedChanges]) -> NetChanges:
    """The last change of each user over these transactions (given in commit order)."""
    last: dict[UserId, tuple[int, bool]] = {}
    for transaction in transactions:
        for change in transaction.changes:
            last.pop(change.user_id, None)  # keeps the dict in order of last change
            last[change.user_id] = (transaction.position, change.deleted)
    upserts = {user_id: position for user_id, (position, deleted) in last.items() if not deleted}
    deletes = {user_id: position for user_id, (position, deleted) in last.items() if deleted}
    return NetChanges(upserts, deletes)


@attrs.frozen
class StreamHealth:
    """How far behind the stream is, as the source tells it: the WAL the slot holds on the
    source's disk, and the WAL written since the last acknowledged position (both in bytes)."""

    retained_wal_bytes: int
    lag_bytes: int
    active: bool = True
