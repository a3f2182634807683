"""The JSON shapes of reports and statistics, made by one cattrs converter at the edge."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cattrs.preconf.json import make_converter

from user_migration.domain.convert.timestamps import format_timestamp
from user_migration.domain.migrate.report import MigrationReport, MigrationStats
from user_migration.domain.observe.overview import Overview

_json = make_converter()
# Moments in UTC, ISO 8601 with a `Z` (`total_postgres_users_as_of`), as `migrated_at` is written.
_json.register_unstructure_hook(datetime, format_timestamp)


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


def overview_json(overview: Overview) -> dict[str, Any]:
    """The dashboard's data as a JSON-ready dict (`GET /m2/migration/overview`); its `stats` are
    shaped as `GET /m2/migration/stats` answers."""
    shown: dict[str, Any] = _json.unstructure(overview)
    return shown
