"""`sync --workers N`: polling passes over the whole id space shared by the workers of each pass
(N processes here, or `--workers 1` on each of N hosts), and their summaries added up."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from user_migration.domain.errors import DependencyUnavailable
from user_migration.domain.parallel.sync_worker import SyncWorkerSummary
from user_migration.entrypoints.cli.exit_codes import EXIT_INTERRUPTED, EXIT_OK, EXIT_USERS_FAILED
from user_migration.entrypoints.cli.worker_processes import latest_of, lease_fields, run_and_add_up
from user_migration.entrypoints.views import view


def pass_fields(worked: SyncWorkerSummary) -> dict[str, Any]:
    """One worker's pass and leases, as `--json` adds them to its summary (the sync's fields)."""
    return {
        "worker": worked.worker,
        "sync_pass": worked.number,
        **view(worked.leases),
        # What all the pass's workers applied together, once it is finished; null before.
        "pass_applied": worked.whole_pass,
    }


def print_pass_line(fields: dict[str, Any]) -> None:
    """The pass and leases of a worker (or of the workers added up), for people."""
    print(
        f"Sync pass {fields['sync_pass']}: segments done here {fields['segments_done']}, leases taken "
        f"{fields['lease_takes']} ({fields['lease_steals']} after expiring), lost {fields['leases_lost']}."
    )
    if fields.get("pass_applied") is not None:
        print(
            f"The pass is finished: all its workers together wrote or deleted {fields['pass_applied']:,} items, "
            "and its cursor is recorded."
        )
    elif fields.get("unfinished_segments"):
        print(f"{fields['unfinished_segments']} segments of the pass are unfinished; `sync --workers` again goes on.")


def worker_exit_code(worked: SyncWorkerSummary, once: bool) -> int:
    """A worker's exit code: interrupted, some users failed, or all carried over."""
    if once and worked.summary.stopped_early:
        return EXIT_INTERRUPTED
    return EXIT_USERS_FAILED if worked.summary.failed else EXIT_OK


async def run_sync_workers(arguments: argparse.Namespace) -> int:
    """Start `--workers` sync worker processes with these options, wait, add up."""
    command = ["sync", "--json", "--workers", "1", "--batch-size", str(arguments.batch_size)]
    command += ["--once"] if arguments.once else ["--follow", "--interval", str(arguments.interval)]
    # A `--follow` worker's last line is its totals.
    return await run_and_add_up(
        command, arguments, lambda summaries: _added_up([s.get("totals", s) for s in summaries]), _print_totals, "--out"
    )


def _print_totals(total: dict[str, Any]) -> None:
    print(
        "These workers saw {changes_seen:,} changes: wrote {written:,}, deleted {deleted:,}, kept "
        "{skipped_newer:,} newer in DynamoDB, failed {failed_count:,}.".format(**total)
    )
    for error in total["errors"][:20]:
        print(f"  {error}", file=sys.stderr)
    print_pass_line(total)


def _added_up(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    names = ("changes_seen", "written", "same_version_written", "deleted", "skipped_newer", "unchanged", "failed_count")
    total: dict[str, Any] = {name: sum(s.get(name, 0) for s in summaries) for name in names}
    for listed in ("failed_user_ids", "not_deleted_user_ids"):
        total[listed] = sorted(i for s in summaries for i in s.get(listed, []))
    for listed in ("errors", "not_deleted"):
        total[listed] = [text for s in summaries for text in s.get(listed, [])]
    total["processing_time_ms"] = max((s.get("processing_time_ms", 0) for s in summaries), default=0)
    total["sync_pass"] = max((s.get("sync_pass", 0) for s in summaries), default=0)
    total["pass_applied"] = latest_of(summaries).get("pass_applied")
    total["caught_up"] = bool(summaries) and all(s.get("caught_up") for s in summaries)
    total["stopped_early"] = any(s.get("stopped_early") for s in summaries)
    return {**total, **lease_fields(summaries)}


def unavailable_line(error: DependencyUnavailable, interval: float) -> str:
    """What a `--follow` worker tells when a pass found a dependency down."""
    return f"user-migration sync: {error}; trying again in {interval:g} s"
