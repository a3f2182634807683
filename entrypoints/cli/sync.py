"""The `sync` command: carry PostgreSQL's changes into DynamoDB, once or until stopped."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Awaitable, Callable
from typing import TypeVar

from user_migration.domain.convert.rules import failure_text
from user_migration.domain.errors import DependencyUnavailable
from user_migration.domain.parallel.sync_worker import SyncWorkerSummary
from user_migration.domain.sync.poll import SyncProgress, SyncSummary
from user_migration.domain.sync.request import FollowRequest, SyncRequest
from user_migration.entrypoints.cli.exit_codes import EXIT_INTERRUPTED, EXIT_OK, EXIT_USERS_FAILED
from user_migration.entrypoints.cli.failures_shown import SHOWN_FAILURES
from user_migration.entrypoints.cli.migrate import stop_on_signals
from user_migration.entrypoints.cli.progress import StatusLine, count_line
from user_migration.entrypoints.cli.stream import parse_size, stream, written_text
from user_migration.entrypoints.cli.sync_pass import (
    pass_fields,
    print_pass_line,
    run_sync_workers,
    unavailable_line,
    worker_exit_code,
)
from user_migration.entrypoints.library import UserMigration
from user_migration.entrypoints.views import view

# What a pass answers: its summary, or a worker's summary of its part of a shared pass.
_Passed = TypeVar("_Passed", SyncSummary, SyncWorkerSummary)


def add_sync_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `user-migration sync`."""
    how = parser.add_mutually_exclusive_group(required=True)
    how.add_argument("--once", action="store_true", help="catch up with every change committed so far, then exit")
    how.add_argument("--follow", action="store_true", help="keep catching up until SIGINT/SIGTERM")
    parser.add_argument(
        "--interval", type=float, default=5.0, metavar="SECONDS", help="--follow: pause between passes (default 5)"
    )
    parser.add_argument("--batch-size", type=int, default=1000, help="rows per page (1..1000, default 1000)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON (--follow: a line per pass)")
    parser.add_argument(
        "--changes",
        choices=("poll", "logical"),
        default="poll",
        help="poll: read the changed rows each pass (default); logical: stream them from the replication slot "
        "`cdc setup` made (with --follow)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="poll as N workers (processes here) sharing each pass's segments under leases; "
        "--workers 1 on each of N hosts does the same",
    )
    parser.add_argument(
        "--max-retained-wal",
        type=parse_size,
        metavar="SIZE",
        help="--changes logical: warn loudly while the slot keeps more WAL than this on the source (e.g. 10GB)",
    )


def check_sync_arguments(arguments: argparse.Namespace) -> str | None:
    """A usage problem of the sync options, or None."""
    if not 1 <= arguments.batch_size <= 1000:
        return "--batch-size must be between 1 and 1000"
    if not 0 <= arguments.interval <= 86_400:
        return "--interval must be between 0 and 86400 seconds"
    if arguments.changes == "logical" and not arguments.follow:
        return "--changes logical streams until stopped: use it with --follow"
    if arguments.max_retained_wal is not None and arguments.changes != "logical":
        return "--max-retained-wal is for --changes logical"
    if arguments.workers is not None and not 1 <= arguments.workers <= 64:
        return "--workers must be between 1 and 64"
    if arguments.workers is not None and arguments.changes == "logical":
        return "--workers splits polling passes; a replication slot is read by one stream (--changes logical)"
    return None


def _print_pass(summary: SyncSummary, arguments: argparse.Namespace, worked: SyncWorkerSummary | None = None) -> None:
    if arguments.json:
        fields = view(summary) | (pass_fields(worked) if worked is not None else {})
        print(json.dumps(fields), flush=True)
        return
    lag = "-" if summary.lag_seconds is None else f"{summary.lag_seconds:.1f} s"
    print(
        f"Saw {summary.changes_seen:,} changes: wrote {written_text(summary.written, summary.same_version_written)}, "
        f"deleted {summary.deleted:,}, "
        f"kept {summary.skipped_newer:,} newer in DynamoDB, {summary.unchanged:,} already current, "
        f"failed {summary.failed:,} (lag {lag}, {summary.elapsed_seconds:.1f} s).",
        flush=True,
    )
    if summary.full_pass:
        print("  No change cursor was recorded before: this pass read every row.", file=sys.stderr)
    for user_id, why in list(summary.not_deleted.items())[:SHOWN_FAILURES]:
        print(f"  not deleted: {failure_text(user_id, [why])}", file=sys.stderr)
    for user_id, reasons in list(summary.failures.items())[:SHOWN_FAILURES]:
        print(f"  {failure_text(user_id, list(reasons))}", file=sys.stderr)
    if summary.failed > SHOWN_FAILURES:
        print(f"  ... and {summary.failed - SHOWN_FAILURES:,} more", file=sys.stderr)
    if worked is not None:
        print_pass_line(pass_fields(worked))


class _Progress(StatusLine):
    """A count on a terminal's stderr (a pass's total is not known in advance)."""

    def __call__(self, progress: SyncProgress) -> None:
        counts = f"written {progress.written:,} deleted {progress.deleted:,} failed {progress.failed:,}"
        self.show(count_line(progress.changes_seen, progress.elapsed_seconds, counts))


async def sync(migration: UserMigration, arguments: argparse.Namespace) -> int:
    """Run `sync` with its options; returns the exit code."""
    if arguments.changes == "logical":
        return await stream(migration, arguments)
    if arguments.workers is not None:
        if arguments.workers > 1:
            return await run_sync_workers(arguments)
        # `sync --workers 1`: this process is one worker of the passes.
        worked = await _passes(arguments, migration.sync_as_worker, migration.sync_follow_as_worker)
        _print_totals(worked, arguments)
        return worker_exit_code(worked, arguments.once)
    summary = await _passes(arguments, migration.sync_once, migration.sync_follow)
    _print_totals(summary, arguments)
    if arguments.once and summary.stopped_early:
        return EXIT_INTERRUPTED
    return EXIT_USERS_FAILED if summary.failed else EXIT_OK


async def _passes(
    arguments: argparse.Namespace,
    once: Callable[[SyncRequest], Awaitable[_Passed]],
    follow: Callable[[FollowRequest[_Passed]], Awaitable[_Passed]],
) -> _Passed:
    """One pass (`--once`), or passes until a signal, each pass that carried something printed."""
    bar = _Progress(sys.stderr)
    try:
        with stop_on_signals() as stop:
            if arguments.once:
                return await once(SyncRequest(arguments.batch_size, stop=stop, on_progress=bar))

            def on_pass(passed: _Passed) -> None:
                bar.close()
                summary, worked = _parts(passed)
                if summary.changes_seen or summary.failed:  # quiet passes print nothing
                    _print_pass(summary, arguments, worked)

            def on_unavailable(error: DependencyUnavailable) -> None:
                bar.close()
                print(unavailable_line(error, arguments.interval), file=sys.stderr)

            return await follow(
                FollowRequest(arguments.interval, stop, arguments.batch_size, on_pass, bar, on_unavailable)
            )
    finally:
        bar.close()


def _print_totals(passed: SyncSummary | SyncWorkerSummary, arguments: argparse.Namespace) -> None:
    """The pass (`--once`), or the totals of the passes followed."""
    summary, worked = _parts(passed)
    if arguments.once:
        _print_pass(summary, arguments, worked)
    elif arguments.json:
        print(json.dumps({"totals": view(summary) | (pass_fields(worked) if worked is not None else {})}))
    else:
        print(f"Stopped after {summary.passes:,} passes. In all:", end=" ")
        _print_pass(summary, arguments, worked)


def _parts(passed: SyncSummary | SyncWorkerSummary) -> tuple[SyncSummary, SyncWorkerSummary | None]:
    """The changes carried, and the worker's part when it was a worker's pass."""
    if isinstance(passed, SyncSummary):
        return passed, None
    return passed.summary, passed
