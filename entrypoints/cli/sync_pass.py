"""`sync --workers N`: polling passes over the whole id space shared by the workers of each pass
(N processes here, or `--workers 1` on each of N hosts), and their summaries added up."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import attrs

from user_migration.domain.errors import DependencyUnavailable
from user_migration.domain.keys import UserId
from user_migration.domain.parallel.sync_worker import SyncWorkerSummary
from user_migration.entrypoints.cli.exit_codes import EXIT_INTERRUPTED, EXIT_OK, EXIT_USERS_FAILED
from user_migration.entrypoints.cli.worker_processes import run_and_add_up
from user_migration.entrypoints.cli.worker_totals import ALL, ANY, HIGHEST, IDS, LATEST, SUM, TEXTS, added_up, adds
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
        command,
        arguments,
        lambda summaries: added_up(SyncTotals, [s.get("totals", s) for s in summaries]),
        _print_totals,
        "--out",
    )


def _print_totals(total: dict[str, Any]) -> None:
    print(
        "These workers saw {changes_seen:,} changes: wrote {written:,}, deleted {deleted:,}, kept "
        "{skipped_newer:,} newer in DynamoDB, failed {failed_count:,}.".format(**total)
    )
    for error in total["errors"][:20]:
        print(f"  {error}", file=sys.stderr)
    print_pass_line(total)


@attrs.frozen
class SyncTotals:
    """What `sync --workers N` prints: the workers' summaries (a `--follow` worker's totals) added up."""

    changes_seen: int = adds(SUM)
    written: int = adds(SUM)
    same_version_written: int = adds(SUM)
    deleted: int = adds(SUM)
    skipped_newer: int = adds(SUM)
    unchanged: int = adds(SUM)
    failed_count: int = adds(SUM)
    failed_user_ids: list[UserId] = adds(IDS, [])
    not_deleted_user_ids: list[UserId] = adds(IDS, [])
    errors: list[str] = adds(TEXTS, [])
    not_deleted: list[str] = adds(TEXTS, [])
    processing_time_ms: int = adds(HIGHEST)
    sync_pass: int = adds(HIGHEST)
    pass_applied: int | None = adds(LATEST, None)
    caught_up: bool = adds(ALL, False)
    stopped_early: bool = adds(ANY, False)


def unavailable_line(error: DependencyUnavailable, interval: float) -> str:
    """What a `--follow` worker tells when a pass found a dependency down."""
    return f"user-migration sync: {error}; trying again in {interval:g} s"
