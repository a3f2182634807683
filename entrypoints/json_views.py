"""The JSON shapes of reports and statistics, made by one cattrs converter at the edge."""

from __future__ import annotations

from typing import Any

from cattrs.preconf.json import make_converter

from domain.report import MigrationReport, MigrationStats

_json = make_converter()


def report_json(report: MigrationReport | MigrationStats) -> dict[str, Any]:
    """A report or the statistics as a JSON-ready dict, fields in the API document's order.

    A report's rewrite fields (`rewritten_count`, `not_rewritten_user_ids`, `not_rewritten`)
    appear only when the request asked for a rewrite.
    """
    shown = dict(_json.unstructure(report))
    if isinstance(report, MigrationReport):
        shown.pop("reason_codes")
        rewrite = shown.pop("rewrite")
        if rewrite is not None:
            shown.update(rewrite)
    return shown
