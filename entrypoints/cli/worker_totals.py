"""The summaries of N worker processes, read back from their `--json` lines and added up: one typed
way for the three jobs (migrate, sync, verify).

A job's totals are an attrs class whose every field says how the workers' values of it add up
(`adds(...)`): summed, the highest, any or all of them, ids or texts gathered (once each, or as
they come), or the value of the worker that looked last. The lease counts are added up by the
domain's own rule (`LeaseCounts.added_up`). A field a worker's line lacks takes its default; a
field shown only when the workers showed it (a verify's `repaired`, with `--repair`) defaults to
None and is left out of the totals then.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import chain
from typing import Any, TypeVar

import attrs

from user_migration.domain.parallel.leased_pass import LeaseCounts
from user_migration.entrypoints.views import view

# How the workers' values of one field become the total: (their values, the latest worker's index).
Adding = Callable[[list[Any], int], Any]


def _sum(values: list[Any], _: int) -> Any:
    return sum(values)


def _highest(values: list[Any], _: int) -> Any:
    return max(values, default=0)


def _any(values: list[Any], _: int) -> bool:
    return any(values)


def _all(values: list[Any], _: int) -> bool:
    return bool(values) and all(values)


def _gathered_once(values: list[Any], _: int) -> list[Any]:
    # A page done by a worker that then lost its lease may be done again by the next one: a
    # failing user is listed once.
    return sorted(set(chain.from_iterable(values)))


def _gathered(values: list[Any], _: int) -> list[Any]:
    return sorted(chain.from_iterable(values))


def _texts_once(values: list[Any], _: int) -> list[str]:
    return list(dict.fromkeys(chain.from_iterable(values)))


def _texts(values: list[Any], _: int) -> list[str]:
    return list(chain.from_iterable(values))


def _latest(values: list[Any], latest: int) -> Any:
    return values[latest] if values else None


@attrs.frozen
class CountOf:
    """A count that is the length of the added-up list `listed` (failing users listed once, counted once)."""

    listed: str


SUM, HIGHEST, ANY, ALL = _sum, _highest, _any, _all
IDS_ONCE, IDS, TEXTS_ONCE, TEXTS, LATEST = _gathered_once, _gathered, _texts_once, _texts, _latest


def adds(how: Adding | CountOf, default: Any = 0, optional: bool = False) -> Any:
    """A totals field: how the workers' values add up, and the value of a worker that lacks it. An
    `optional` field is None when no worker showed it, and then left out of the totals."""
    factory = attrs.Factory(list) if default == [] else default
    return attrs.field(default=None if optional else factory, metadata={"adds": how, "optional": optional})


Totals = TypeVar("Totals", bound=attrs.AttrsInstance)


def added_up(job: type[Totals], summaries: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The workers' `summaries` added up as `job`'s totals, with their lease counts and the
    summaries themselves (`workers`), as `--json` prints them."""
    fields = attrs.fields(job)
    # The worker that saw the fewest unfinished segments looked last: its view of the run is the newest.
    latest = min(range(len(summaries)), key=lambda n: summaries[n].get("unfinished_segments", 0), default=0)
    read = [job(**{f.name: s[f.name] for f in fields if f.name in s}) for s in summaries]
    added = {f.name: _total(f, [getattr(each, f.name) for each in read], latest) for f in fields}
    for f in fields:
        if isinstance(f.metadata["adds"], CountOf):
            added[f.name] = len(added[f.metadata["adds"].listed])
    unstructured = view(job(**added))
    shown = {f.name: unstructured[f.name] for f in fields if added[f.name] is not None or not f.metadata["optional"]}
    counts = [LeaseCounts(**{f.name: int(s.get(f.name, 0)) for f in attrs.fields(LeaseCounts)}) for s in summaries]
    return {**shown, **view(LeaseCounts.added_up(counts)), "workers": list(summaries)}


def _total(field: attrs.Attribute[Any], values: list[Any], latest: int) -> Any:
    if isinstance(field.metadata["adds"], CountOf):
        return 0
    if not field.metadata["optional"]:
        return field.metadata["adds"](values, latest)
    shown = [value for value in values if value is not None]
    return field.metadata["adds"](shown, 0) if shown else None
