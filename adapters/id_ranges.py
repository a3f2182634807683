"""Sets of user ids written compactly, as the state table stores them: `"1..1000,1002,1005..1010"`.

A page's ids are mostly runs, so a hold's intent of a thousand ids costs a few bytes instead of a
list of a thousand numbers, which DynamoDB (and moto far more) would parse, store and send back
at every step of every page.
"""

from __future__ import annotations

from collections.abc import Iterable


def encode_ids(user_ids: Iterable[int]) -> str:
    """The ids, sorted and merged into runs: `lo..hi` for a run, `id` alone; `""` for none."""
    ordered = sorted(set(user_ids))
    runs: list[str] = []
    start = 0
    while start < len(ordered):
        end = start
        while end + 1 < len(ordered) and ordered[end + 1] == ordered[end] + 1:
            end += 1
        runs.append(str(ordered[start]) if end == start else f"{ordered[start]}..{ordered[end]}")
        start = end + 1
    return ",".join(runs)


def decode_ids(text: str) -> set[int]:
    """Reverse of `encode_ids`; raises ValueError on text it did not write."""
    user_ids: set[int] = set()
    for run in filter(None, text.split(",")):
        lowest, separator, highest = run.partition("..")
        try:
            first = int(lowest)
            last = int(highest) if separator else first
        except ValueError:
            raise ValueError(f"not a run of user ids: {run!r}") from None
        if first > last:
            raise ValueError(f"not a run of user ids: {run!r}")
        user_ids.update(range(first, last + 1))
    return user_ids
