"""Sets of user ids written compactly, as the state table stores them: `"1..1000,1002,1005..1010"`.

Uuid and text ids have no runs: they are written as a JSON list of strings (`["a0ee...", "b1..."]`),
which no integer set's text can be mistaken for (it starts with `[`).

A page's ids are mostly runs, so a hold's intent of a thousand ids costs a few bytes instead of a
list of a thousand numbers, which DynamoDB (and moto far more) would parse, store and send back
at every step of every page.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from user_migration.domain.keys import UserId


def encode_ids(user_ids: Iterable[UserId]) -> str:
    """The ids, sorted and merged into runs: `lo..hi` for a run, `id` alone; `""` for none. Uuid and
    text ids (strs): a JSON list of them, sorted."""
    unique = set(user_ids)
    texts = sorted(user_id for user_id in unique if isinstance(user_id, str))
    if texts:
        if len(texts) != len(unique):
            raise ValueError("user ids of two kinds in one set")
        return json.dumps(texts, ensure_ascii=False, separators=(",", ":"))
    ordered = sorted(user_id for user_id in unique if isinstance(user_id, int))
    runs: list[str] = []
    start = 0
    while start < len(ordered):
        end = start
        while end + 1 < len(ordered) and ordered[end + 1] == ordered[end] + 1:
            end += 1
        runs.append(str(ordered[start]) if end == start else f"{ordered[start]}..{ordered[end]}")
        start = end + 1
    return ",".join(runs)


def decode_ids(text: str) -> set[UserId]:
    """Reverse of `encode_ids`; raises ValueError on text it did not write."""
    if text.startswith("["):
        texts = json.loads(text)
        if not isinstance(texts, list) or not all(isinstance(each, str) for each in texts):
            raise ValueError(f"not a list of user ids: {text[:40]!r}")
        return set(texts)
    user_ids: set[UserId] = set()
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
