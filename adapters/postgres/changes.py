"""Which rows changed since a cursor, told by PostgreSQL's `xmin` (the polling of `sync`).

Every row version carries `xmin`, the id of the transaction that wrote it. A cursor is
`txid_snapshot_xmin(txid_current_snapshot())` at the time it is taken: the oldest transaction
still running then, with its wraparound epoch (64 bits). Every transaction below it had ended, so
its rows were visible to any read made after the cursor was taken; a row written by a transaction
at or above it, even one that commits after a later one started, is read again by the next poll,
because the condition is `xmin >= cursor` (Airbyte's xmin mode does the same; a `updated_at >
watermark` poll misses such commits). `xmin` is 32 bits: when the counter wrapped once since
the cursor, rows `>= cursor` or `<` the current position are read (a superset: their versions
decide); after two or more wraparounds every row is read again. Deletes are not told at all.
"""

from __future__ import annotations

_PREFIX = "pg-xmin:"
_LOW_32 = 0xFFFFFFFF
# Relation kinds whose rows have an xmin: tables, partitioned tables, materialized views.
TABLE_KINDS = frozenset({"r", "p", "m"})
CHANGE_CURSOR_QUERY = (
    "SELECT txid_snapshot_xmin(txid_current_snapshot()), relkind::text FROM pg_class WHERE oid = %s::regclass"
)
_XMIN = "xmin::text::bigint"


def cursor_text(position: int) -> str:
    """The cursor of a 64-bit snapshot xmin."""
    return f"{_PREFIX}{position}"


def cursor_position(cursor: str | None) -> int | None:
    """The 64-bit snapshot xmin of a cursor; None for no cursor or one of another source."""
    if cursor is None or not cursor.startswith(_PREFIX):
        return None
    digits = cursor.removeprefix(_PREFIX)
    return int(digits) if digits.isdigit() else None


def changed_rows_condition(saved: int, current: int) -> str | None:
    """The SQL condition (no parameters) of rows written at or after `saved`, the current
    snapshot xmin being `current`; None when every row must be read again."""
    wraparounds = (current >> 32) - (saved >> 32)
    if wraparounds < 0 or wraparounds > 1:
        return None
    since = saved & _LOW_32
    if wraparounds == 0:
        return f"{_XMIN} >= {since}"
    return f"({_XMIN} >= {since} OR {_XMIN} < {current & _LOW_32})"
