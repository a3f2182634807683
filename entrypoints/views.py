"""The JSON the project prints, HTTP and CLI alike: one cattrs converter, one shape a type.

`view(value)` is the JSON-ready form of any report, summary, progress or difference; each type's
shape is registered here once (fields in the API document's order, counts named as the API names
them: `migrated_count`, `failed_user_ids`, `errors`, `processing_time_ms`), so the CLI's `--json`
and the HTTP answers cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs
from cattrs.preconf.json import make_converter

from user_migration.domain.convert.rules import failure_text
from user_migration.domain.convert.timestamps import format_timestamp
from user_migration.domain.keys import UserId
from user_migration.domain.migrate.report import MigrationReport
from user_migration.domain.migrate.run import RunSummary
from user_migration.domain.parallel.leased_pass import LeaseCounts
from user_migration.domain.sync.poll import SyncSummary
from user_migration.domain.sync.stream import StreamProgress, StreamSummary
from user_migration.domain.verify.differences import Difference, Problem, VerifyCounts, VerifyPage, VerifySummary

_json = make_converter()
# Moments in UTC, ISO 8601 with a `Z` (`total_postgres_users_as_of`), as `migrated_at` is written.
_json.register_unstructure_hook(datetime, format_timestamp)
_VERIFY_CLASSES = ("checked", "matching", "missing", "different", "extra", "newer_in_dynamodb", "invalid_in_source")


def view(value: object) -> Any:
    """The JSON-ready form of `value` (a dict for every report and summary)."""
    return _json.unstructure(value)


def _errors(failures: Mapping[UserId, Any]) -> list[str]:
    """Each failing user's line: `user 7: <reasons>` (a reason alone or several)."""
    return [
        failure_text(user_id, [reasons] if isinstance(reasons, str) else list(reasons))
        for user_id, reasons in failures.items()
    ]


def _report(report: MigrationReport) -> dict[str, Any]:
    # A report's rewrite fields (`rewritten_count`, `not_rewritten_user_ids`, `not_rewritten`)
    # appear only when the request asked for a rewrite.
    shown = dict(_plain_report(report))
    shown.pop("reason_codes")
    rewrite = shown.pop("rewrite")
    if rewrite is not None:
        shown.update(rewrite)
    return shown


def _run_summary(summary: RunSummary) -> dict[str, Any]:
    shown = {
        "users_read": summary.users_read,
        "migrated_count": summary.migrated,
        "skipped_count": summary.skipped,
        "failed_count": summary.failed,
        "failed_user_ids": list(summary.failures),
        "errors": _errors(summary.failures),
        "dry_run": summary.dry_run,
        "processing_time_ms": round(summary.elapsed_seconds * 1000),
        "resume_from_user_id": summary.resume_from_user_id,
        "stopped_early": summary.stopped_early,
    }
    if summary.rewrite:
        shown.update(
            rewritten_count=summary.rewritten,
            not_rewritten_user_ids=list(summary.kept),
            not_rewritten=_errors(summary.kept),
        )
    return shown


def _sync_summary(summary: SyncSummary) -> dict[str, Any]:
    return {
        "changes_seen": summary.changes_seen,
        "written": summary.written,
        "same_version_written": summary.same_version_written,
        "deleted": summary.deleted,
        "skipped_newer": summary.skipped_newer,
        "unchanged": summary.unchanged,
        "failed_count": summary.failed,
        "failed_user_ids": list(summary.failures),
        "errors": _errors(summary.failures),
        "not_deleted_user_ids": list(summary.not_deleted),
        "not_deleted": _errors(summary.not_deleted),
        "lag_seconds": None if summary.lag_seconds is None else round(summary.lag_seconds, 3),
        "full_pass": summary.full_pass,
        "caught_up": summary.caught_up,
        "passes": summary.passes,
        "processing_time_ms": round(summary.elapsed_seconds * 1000),
        "stopped_early": summary.stopped_early,
    }


def _stream_progress(progress: StreamProgress) -> dict[str, Any]:
    health = progress.health
    return {
        "transactions": progress.transactions,
        "changes_seen": progress.changes_seen,
        "written": progress.written,
        "deleted": progress.deleted,
        "failed_count": progress.failed,
        "acknowledged_position": progress.acknowledged,
        "lag_seconds": round(progress.lag_seconds, 3),
        "retained_wal_bytes": None if health is None else health.retained_wal_bytes,
        "lag_bytes": None if health is None else health.lag_bytes,
        "over_max_retained_wal": progress.over_limit,
    }


def _stream_summary(summary: StreamSummary) -> dict[str, Any]:
    tally = summary.tally
    return {
        "backfill_written": None if summary.backfill is None else summary.backfill.written,
        "transactions": summary.transactions,
        "changes_seen": summary.changes_seen,
        "written": tally.written,
        "same_version_written": tally.same_version_written,
        "deleted": tally.deleted,
        "skipped_newer": tally.skipped_newer,
        "unchanged": tally.unchanged,
        "failed_user_ids": list(summary.failures),
        "errors": _errors(summary.failures),
        "acknowledged_position": summary.acknowledged,
    }


def _difference(difference: Difference) -> dict[str, Any]:
    # `reasons` for a row that fails validation; after a repair `repaired` (and `why`, when known).
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


def counts_view(counts: VerifyCounts, repair: bool = False) -> dict[str, int]:
    """A verify's counts by class; with a repair also `repaired` and `not_repaired`."""
    shown = {name: getattr(counts, name) for name in _VERIFY_CLASSES}
    if repair:
        shown.update(repaired=counts.repaired, not_repaired=counts.not_repaired)
    return shown


def _verify_page(page: VerifyPage) -> dict[str, Any]:
    return {
        "differences": [_difference(difference) for difference in page.differences],
        **counts_view(page.counts),
        "next_start_user_id": page.next_start_user_id,
        "extra_checked": page.extra_checked,
        "extra_checked_above": page.extra_checked_above,
    }


_plain_report = _json.gen_unstructure_attrs_fromdict(MigrationReport)
_json.register_unstructure_hook(MigrationReport, _report)
_json.register_unstructure_hook(RunSummary, _run_summary)
_json.register_unstructure_hook(SyncSummary, _sync_summary)
_json.register_unstructure_hook(StreamProgress, _stream_progress)
_json.register_unstructure_hook(StreamSummary, _stream_summary)
_json.register_unstructure_hook(Difference, _difference)
_json.register_unstructure_hook(VerifySummary, lambda summary: counts_view(summary.counts, summary.repair))
_json.register_unstructure_hook(VerifyPage, _verify_page)
_json.register_unstructure_hook(LeaseCounts, attrs.asdict)
