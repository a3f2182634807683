"""`migrate --all` as a worker of the run, and `--workers N`: N such processes on this machine.

Each worker process is an ordinary `user-migration migrate --all` (so N hosts run the same
command, e.g. as the pods of a Kubernetes Job); this module starts N of them, waits, and adds
up their summaries.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import attrs

from user_migration.domain.budget.bucket import BudgetSnapshot
from user_migration.domain.keys import UserId
from user_migration.domain.parallel.migrate_worker import WorkerSummary
from user_migration.entrypoints.cli.failures_shown import print_failures
from user_migration.entrypoints.cli.worker_processes import run_and_add_up
from user_migration.entrypoints.cli.worker_totals import (
    ANY,
    HIGHEST,
    IDS_ONCE,
    LATEST,
    SUM,
    TEXTS_ONCE,
    CountOf,
    added_up,
    adds,
)
from user_migration.entrypoints.library import UserMigration
from user_migration.entrypoints.views import view


def is_worker_run(arguments: argparse.Namespace) -> bool:
    """Whether `migrate` runs as a worker of the run on leased segments: every `--all` (with
    `--resume` too: a worker goes on where each segment stopped), but for the walks that are not
    the run's: `--dry-run` (writes nothing), `--rewrite` (a second pass over items written
    earlier) and `--start-user-id` (a walk from an id the operator chose)."""
    return bool(arguments.all and not (arguments.dry_run or arguments.rewrite or arguments.start_user_id is not None))


def worker_json(
    worked: WorkerSummary, summary_json: dict[str, Any], budget: BudgetSnapshot | None = None
) -> dict[str, Any]:
    """A worker's summary as JSON: the run's fields, its leases and what it spent of the budget."""
    spent = {"write_units_spent": budget.units_spent, "write_throttled": budget.throttled} if budget else {}
    return {
        **spent,
        **summary_json,
        "worker": worked.worker,
        "run": worked.number,
        **view(worked.leases),
    }


def print_worker_summary(
    worked: WorkerSummary,
    summary_json: dict[str, Any],
    as_json: bool,
    budget: BudgetSnapshot | None = None,
    failed_out: Path | None = None,
) -> None:
    """One worker's summary, for people or as JSON."""
    fields = worker_json(worked, summary_json, budget)
    if as_json:
        print(json.dumps(fields))
        return
    _print_human(fields, failed_out)


def _print_human(fields: dict[str, Any], failed_out: Path | None = None) -> None:
    seconds = fields["processing_time_ms"] / 1000
    rate = fields["users_read"] / seconds if seconds > 0 else 0
    print(
        f"Migrated {fields['migrated_count']:,} users, skipped {fields['skipped_count']:,} already in DynamoDB, "
        f"failed {fields['failed_count']:,} (read {fields['users_read']:,} in {seconds:.1f} s, {rate:,.0f} users/s)."
    )
    print(
        f"Run {fields['run']}: segments done here {fields['segments_done']}, leases taken "
        f"{fields['lease_takes']} ({fields['lease_steals']} after expiring), lost {fields['leases_lost']}."
    )
    if "write_units_spent" in fields:
        print(
            f"Write units spent on the users table: {fields['write_units_spent']:,.0f} "
            f"(throttled {fields['write_throttled']:,} times)."
        )
    print_failures(fields["errors"], fields["failed_count"])
    if fields["failed_count"] and failed_out is not None:
        print(
            f"Failed users are in {failed_out}; after fixing them: user-migration migrate --retry-failed {failed_out}"
        )
    if fields["stopped_early"]:
        print("Stopped early on request.")
    if fields["unfinished_segments"]:
        print(
            f"{fields['unfinished_segments']} segments of the run are unfinished (writes failed, or other "
            "workers still at them); `user-migration migrate --all` again goes on with them."
        )
        if fields.get("resume_from_user_id") is not None:
            print(f"Checkpoint: every user below id {fields['resume_from_user_id']} is handled in this run.")
    else:
        print("The run is finished; `user-migration migrate --all --restart` walks the source again.")


async def run_workers(migration: UserMigration, arguments: argparse.Namespace) -> int:
    """Start `--workers` worker processes (after a `--restart` here, once), wait, add up."""
    command = ["migrate", "--all", "--json", "--workers", "1", "--batch-size", str(arguments.batch_size)]
    return await run_and_add_up(
        command,
        arguments,
        lambda summaries: added_up(MigrateTotals, summaries),
        lambda total: _print_human(total, arguments.failed_out),
        "--failed-out",
        arguments.failed_out,
        migration.restart_run,
    )


@attrs.frozen
class MigrateTotals:
    """What `migrate --all --workers N` prints: the workers' summaries added up."""

    users_read: int = adds(SUM)
    migrated_count: int = adds(SUM)
    skipped_count: int = adds(SUM)
    write_units_spent: int = adds(SUM)
    write_throttled: int = adds(SUM)
    failed_user_ids: list[UserId] = adds(IDS_ONCE, [])
    failed_count: int = adds(CountOf("failed_user_ids"))
    errors: list[str] = adds(TEXTS_ONCE, [])
    processing_time_ms: int = adds(HIGHEST)
    run: int = adds(HIGHEST)
    resume_from_user_id: UserId | None = adds(LATEST, None)
    dry_run: bool = adds(ANY, False)
    stopped_early: bool = adds(ANY, False)
