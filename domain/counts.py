"""Summaries followed by later ones: their counts added, field by field, whatever the summary."""

from __future__ import annotations

from typing import Any, TypeVar, cast

import attrs

Summary = TypeVar("Summary", bound=attrs.AttrsInstance)


def counts_added(earlier: Summary, later: Summary, **others: Any) -> Summary:
    """`later` with each of its integer fields added to `earlier`'s; `others` are the fields that are
    not added (what they become); every other field is the later one's."""
    added = {
        field.name: getattr(earlier, field.name) + getattr(later, field.name)
        for field in attrs.fields(type(later))
        if field.type in (int, "int") and field.name not in others
    }
    summed: Summary = attrs.evolve(cast(Any, later), **added, **others)  # mypy's attrs plugin wants a class
    return summed
