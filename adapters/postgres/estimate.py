"""The planner's estimate of how many rows a relation holds, in about a millisecond at any size.

For a table (or a materialized view, or each leaf of a partitioned table) it is what the planner
itself computes: the rows per page the last VACUUM or ANALYZE found (`reltuples / relpages`)
times the pages the table has now (`pg_relation_size / block_size`), so that growth since then
is seen. A table with no rows per page known (never analysed: `reltuples` is -1 from PostgreSQL
14; or analysed while empty, and grown since) gives None: the caller counts it when it is small,
and otherwise asks EXPLAIN, whose guess then rests on the column widths. A view (or a foreign
table) has no pages of its own: EXPLAIN says how many rows the planner expects of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# Relation kinds with pages of their own: tables and materialized views (a partitioned table's
# rows are in its leaves, which the query lists).
STORED_KINDS = frozenset({"r", "m"})
# A table without statistics up to this size (10 MB of 8 kB pages) is counted instead of guessed:
# a `count(*)` of it takes milliseconds.
EXACT_COUNT_UP_TO_PAGES = 1280

# The relation and, when it is partitioned, each leaf partition: its kind, the rows and pages the
# last VACUUM or ANALYZE recorded, and its pages now.
SIZES_QUERY = """
SELECT c.relkind::text, c.reltuples, c.relpages, pg_relation_size(c.oid) / current_setting('block_size')::bigint
FROM pg_class c
WHERE c.oid = %(relation)s::regclass
   OR c.oid IN (SELECT relid FROM pg_partition_tree(%(relation)s::regclass) WHERE isleaf)
"""


def stored_pages(sizes: Sequence[Sequence[Any]]) -> list[tuple[float, int, int]]:
    """Of SIZES_QUERY's rows, those with pages of their own: (reltuples, relpages, pages now)."""
    return [(float(tuples), int(pages), int(now)) for kind, tuples, pages, now in sizes if kind in STORED_KINDS]


def planner_rows(stored: Sequence[tuple[float, int, int]]) -> int | None:
    """The rows of these tables as the planner estimates them; None when one of them has pages
    but no rows per page known."""
    rows = 0.0
    for tuples, pages, now in stored:
        if now == 0:
            continue  # no pages, no rows
        if tuples < 0 or pages == 0:
            return None
        rows += tuples / pages * now
    return round(rows)


def explained_rows(plan: Any) -> int:
    """The rows EXPLAIN (FORMAT JSON) expects of the top plan node."""
    document = plan[0] if isinstance(plan, list) else plan
    return max(round(float(document["Plan"]["Plan Rows"])), 0)
