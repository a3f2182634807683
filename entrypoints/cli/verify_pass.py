"""`verify --workers N`: the whole id space verified by the workers of one verify pass (N processes
here, or `--workers 1` on each of N hosts), and their summaries added up."""

from __future__ import annotations

import argparse
import json
from typing import Any

import attrs

from user_migration.domain.parallel.verify_worker import VerifyWorkerSummary
from user_migration.entrypoints.cli.verify_output import Differences, print_summary
from user_migration.entrypoints.cli.worker_processes import run_and_add_up
from user_migration.entrypoints.cli.worker_totals import ANY, HIGHEST, LATEST, SUM, added_up, adds
from user_migration.entrypoints.library import UserMigration
from user_migration.entrypoints.views import counts_view, view


def pass_json(worked: VerifyWorkerSummary) -> dict[str, Any]:
    """One worker's summary as JSON: its counts, with its pass and its leases."""
    return {
        **view(worked.summary),
        "stopped_early": worked.summary.stopped_early,
        "worker": worked.worker,
        "verify_pass": worked.number,
        **view(worked.leases),
        # The verdict of the whole pass (all workers), once it is finished; null before.
        "pass_counts": None if worked.whole_pass is None else counts_view(worked.whole_pass, worked.summary.repair),
    }


def print_pass_summary(worked: VerifyWorkerSummary, differences: Differences, arguments: argparse.Namespace) -> None:
    """A worker's summary: the counts as a verify prints them, then its pass and leases."""
    if arguments.json:
        print(json.dumps(pass_json(worked)))
        return
    print_summary(worked.summary, differences, arguments)
    _print_pass(pass_json(worked))


def _print_pass(fields: dict[str, Any]) -> None:
    print(
        f"Verify pass {fields['verify_pass']}: segments done here {fields['segments_done']}, leases taken "
        f"{fields['lease_takes']} ({fields['lease_steals']} after expiring), lost {fields['leases_lost']}."
    )
    whole = fields.get("pass_counts")
    if whole is not None:
        print(
            "The pass is finished; all its workers together checked {checked:,} users: {matching:,} matching, "
            "{missing:,} missing, {different:,} different, {extra:,} extra, {newer_in_dynamodb:,} newer in "
            "DynamoDB, {invalid_in_source:,} invalid in the source.".format(**whole)
        )
        print("`user-migration verify --workers N --restart` verifies everything again.")
    elif fields["unfinished_segments"]:
        print(f"{fields['unfinished_segments']} segments of the pass are unfinished; `verify --workers` again goes on.")
    else:
        print("The pass is finished, but a segment's result was not recorded: its verdict is unknown (--restart).")


async def run_verify_workers(migration: UserMigration, arguments: argparse.Namespace) -> int:
    """Start `--workers` verify workers (after a `--restart` here, once), wait, add up."""
    command = ["verify", "--json", "--workers", "1", "--batch-size", str(arguments.batch_size)]
    if arguments.repair:
        command.append("--repair")
    return await run_and_add_up(
        command,
        arguments,
        lambda summaries: added_up(VerifyTotals, summaries),
        _print_totals,
        "--out",
        arguments.out,
        migration.restart_verify_pass,
    )


def _print_totals(total: dict[str, Any]) -> None:
    print(
        "These workers checked {checked:,} users: {matching:,} matching, {missing:,} missing, "
        "{different:,} different, {extra:,} extra.".format(**total)
    )
    _print_pass(total)


@attrs.frozen
class VerifyTotals:
    """What `verify --workers N` prints: the workers' counts added up (`repaired` and
    `not_repaired` with `--repair`), the pass's verdict once it is finished."""

    checked: int = adds(SUM)
    matching: int = adds(SUM)
    missing: int = adds(SUM)
    different: int = adds(SUM)
    extra: int = adds(SUM)
    newer_in_dynamodb: int = adds(SUM)
    invalid_in_source: int = adds(SUM)
    repaired: int | None = adds(SUM, optional=True)
    not_repaired: int | None = adds(SUM, optional=True)
    verify_pass: int = adds(HIGHEST)
    pass_counts: dict[str, int] | None = adds(LATEST, None)
    stopped_early: bool = adds(ANY, False)
