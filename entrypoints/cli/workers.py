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

from user_migration.domain.budget.bucket import BudgetSnapshot
from user_migration.domain.parallel.migrate_worker import WorkerSummary
from user_migration.entrypoints.cli.failures_shown import print_failures
from user_migration.entrypoints.cli.worker_processes import latest_of, lease_fields, run_and_add_up
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
        _added_up,
        lambda total: _print_human(total, arguments.failed_out),
        "--failed-out",
        arguments.failed_out,
        migration.restart_run,
    )


def _added_up(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    names = ("users_read", "migrated_count", "skipped_count", "write_units_spent", "write_throttled")
    total: dict[str, Any] = {name: sum(s.get(name, 0) for s in summaries) for name in names}
    # A page done by a worker that then lost its lease may be done again by the next one: a
    # failing user is listed once.
    total["failed_user_ids"] = sorted({i for s in summaries for i in s.get("failed_user_ids", [])})
    total["failed_count"] = len(total["failed_user_ids"])
    total["errors"] = list(dict.fromkeys(error for s in summaries for error in s.get("errors", [])))
    total["processing_time_ms"] = max((s.get("processing_time_ms", 0) for s in summaries), default=0)
    total["run"] = max((s.get("run", 0) for s in summaries), default=0)
    total["resume_from_user_id"] = latest_of(summaries).get("resume_from_user_id")
    total["dry_run"] = False
    total["stopped_early"] = any(s.get("stopped_early") for s in summaries)
    return {**total, **lease_fields(summaries)}
