"""The JSON shapes of `verify`: one difference (a line of `--out`, an item of the HTTP page's
`differences`), the counts (`--json`, the HTTP page), and a page of the HTTP API."""

from __future__ import annotations

from typing import Any

from user_migration.domain.verify.differences import Difference, Problem, VerifyCounts, VerifyPage

_CLASSES = ("checked", "matching", "missing", "different", "extra", "newer_in_dynamodb", "invalid_in_source")


def difference_json(difference: Difference) -> dict[str, Any]:
    """`{"user_id", "problem", "fields"}`, plus `reasons` for a row that fails validation, and
    after a repair `repaired` (and `why`, when it is known what kept it)."""
    shown: dict[str, Any] = {
        "user_id": difference.user_id,
        "problem": difference.problem.value,
        "fields": list(difference.fields),
    }
    if difference.problem is Problem.INVALID_IN_SOURCE:
        shown["reasons"] = [str(reason) for reason in difference.reasons]
    if difference.repaired is not None:
        shown["repaired"] = difference.repaired
    if difference.why is not None:
        shown["why"] = difference.why
    return shown


def counts_json(counts: VerifyCounts, repair: bool = False) -> dict[str, int]:
    """The counts by class; with a repair also `repaired` and `not_repaired`."""
    shown = {name: getattr(counts, name) for name in _CLASSES}
    if repair:
        shown.update(repaired=counts.repaired, not_repaired=counts.not_repaired)
    return shown


def page_json(page: VerifyPage) -> dict[str, Any]:
    """One page of `GET /m2/migration/verify`."""
    return {
        "differences": [difference_json(difference) for difference in page.differences],
        **counts_json(page.counts),
        "next_start_user_id": page.next_start_user_id,
        "extra_checked": page.extra_checked,
        "extra_checked_above": page.extra_checked_above,
    }
