"""A source row's version as one number, so that "newer" is a comparison DynamoDB can make.

The mapping's `[source] version` column (`updated_at` in the documented layout) is a timestamp or
an integer. A timestamp becomes microseconds since 1970-01-01 UTC (a timestamp without time zone
is read as UTC, as the documented layout stores it), an integer stays itself. A row whose version
is NULL or not a finite moment has none: its item can only ever be written where none exists.
"""

from __future__ import annotations

from datetime import UTC, datetime

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def version_of(value: object) -> int | None:
    """The version number of a version column's value; None when it has none."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        delta = moment - _EPOCH
        return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return None


def may_replace(stored: int | None, row: int | None) -> bool:
    """Whether a row of version `row` may replace a stored item of version `stored`: only when
    the row is newer. An item without a version was written by someone else and is never
    replaced; a row without one replaces nothing. (An item as new as its row is judged by its
    content: `ChangeWrites.apply`.)"""
    if stored is None or row is None:
        return False
    return row > stored
