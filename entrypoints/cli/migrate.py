"""The `migrate` command: the library's use cases, printed for people or as JSON."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

from user_migration.domain.convert.rules import failure_text
from user_migration.domain.errors import UserNotFound
from user_migration.domain.keys import UserId, given_id
from user_migration.domain.migrate.request import RunRequest
from user_migration.domain.migrate.run import RunSummary
from user_migration.entrypoints.cli.exit_codes import EXIT_INTERRUPTED, EXIT_OK, EXIT_USERS_FAILED
from user_migration.entrypoints.cli.failures_shown import SHOWN_FAILURES, print_failures
from user_migration.entrypoints.cli.progress import ProgressBar, progress_line
from user_migration.entrypoints.cli.workers import is_worker_run, print_worker_summary, run_workers
from user_migration.entrypoints.heap import collect_young_less_often, freeze_long_lived_objects
from user_migration.entrypoints.library import UserMigration
from user_migration.entrypoints.views import view

_ID_DIGITS = re.compile(r"-?[0-9]{1,30}")


def id_argument(text: str) -> int | str:
    """A user id as given on the command line: digits as an int (an integer key's id, checked as
    before), any other text as written (a uuid or text key's, checked once the mapping is known)."""
    stripped = text.strip()
    return int(stripped) if _ID_DIGITS.fullmatch(stripped) else text


def add_migrate_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `user-migration migrate`."""
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument(
        "--all",
        action="store_true",
        help="the whole source in batches, as a worker of the run (every --all process on the same tables shares "
        "its segments); --dry-run, --rewrite and --start-user-id walk it alone",
    )
    what.add_argument("--user-id", type=id_argument, metavar="ID", help="migrate one user")
    what.add_argument("--retry-failed", type=Path, metavar="FILE", help="retry the users listed in a --failed-out file")
    parser.add_argument("--batch-size", type=int, default=1000, help="users per batch (1..1000, default 1000)")
    parser.add_argument(
        "--start-user-id", type=id_argument, metavar="ID", help="first user id of --all (default: the beginning)"
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="--all from where the run stopped (what plain --all does anyway); kept for scripts that say it",
    )
    parser.add_argument(
        "--restart", action="store_true", help="--all: walk the whole source again, even if the last run finished"
    )
    parser.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="--all as N workers of the run (processes on this machine) sharing its segments under leases; "
        "--workers 1 on each of N hosts does the same",
    )
    parser.add_argument("--dry-run", action="store_true", help="read, validate and check, write nothing")
    parser.add_argument(
        "--rewrite",
        action="store_true",
        help="also rewrite items this tool wrote in an earlier run (after fixing the mapping); "
        "items someone else wrote or changed are left as they are and listed",
    )
    parser.add_argument(
        "--offline",
        action="store_true",
        help="unconditional batch writes (faster where every request costs): only while nothing else writes "
        "the DynamoDB table, since an item written meanwhile would be replaced (also OFFLINE_WRITES=true)",
    )
    parser.add_argument("--failed-out", type=Path, metavar="FILE", help="write failed users as JSON lines to FILE")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")


def _failed_ids_from(path: Path) -> list[UserId]:
    ids = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            user_id = record["user_id"]
            # A uuid or text key's ids are written as strings, an integer key's as numbers.
            ids.append(user_id if isinstance(user_id, str) else int(user_id))
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(f"{path}:{number}: not a failed-user line ({error})") from None
    return ids


def _write_failures(path: Path, summary: RunSummary) -> None:
    with path.open("w") as out:
        for user_id, reasons in summary.failures.items():
            out.write(json.dumps({"user_id": user_id, "reasons": list(reasons)}) + "\n")


def _print_summary(summary: RunSummary, arguments: argparse.Namespace) -> None:
    if arguments.json:
        print(json.dumps(view(summary)))
        return
    rate = summary.users_read / summary.elapsed_seconds if summary.elapsed_seconds > 0 else 0
    verb = "Would migrate" if summary.dry_run else "Migrated"
    print(
        f"{verb} {summary.migrated:,} users, skipped {summary.skipped:,} already in DynamoDB, "
        f"failed {summary.failed:,} (read {summary.users_read:,} in {summary.elapsed_seconds:.1f} s, "
        f"{rate:,.0f} users/s)."
    )
    if summary.rewrite:
        print(f"Rewrote {summary.rewritten:,} items written earlier; left {len(summary.kept):,} as they are:")
        for user_id, why in list(summary.kept.items())[:SHOWN_FAILURES]:
            print(f"  {failure_text(user_id, [why])}", file=sys.stderr)
    print_failures(
        (failure_text(user_id, list(reasons)) for user_id, reasons in summary.failures.items()), summary.failed
    )
    if summary.failed and arguments.failed_out:
        print(
            f"Failed users are in {arguments.failed_out}; after fixing them: "
            f"user-migration migrate --retry-failed {arguments.failed_out}"
        )
    if summary.stopped_early:
        print("Stopped early on request.")
    if summary.resume_from_user_id is not None:
        print(f"Checkpoint: a later run with --resume starts at user id {summary.resume_from_user_id}.")


@contextlib.contextmanager
def stop_on_signals() -> Iterator[asyncio.Event]:
    """The first SIGINT/SIGTERM asks the run to stop after the pages in hand; a second one
    interrupts at once (the checkpoint of the last finished page still holds)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    main_task = asyncio.current_task()

    def on_signal() -> None:
        if stop.is_set() and main_task is not None:
            main_task.cancel()
            return
        print("\nStopping after the current batches (press Ctrl-C again to stop at once)...", file=sys.stderr)
        stop.set()

    for signal_number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signal_number, on_signal)
    try:
        yield stop
    finally:
        for signal_number in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signal_number)


def check_migrate_arguments(arguments: argparse.Namespace) -> str | None:
    """A usage problem of the migrate options, or None."""
    if not 1 <= arguments.batch_size <= 1000:
        return "--batch-size must be between 1 and 1000"
    if arguments.resume and arguments.start_user_id is not None:
        return "--resume and --start-user-id cannot be combined"
    if (arguments.resume or arguments.start_user_id is not None) and not arguments.all:
        return "--resume and --start-user-id go with --all"
    if arguments.workers is not None and not 1 <= arguments.workers <= 64:
        return "--workers must be between 1 and 64"
    segmented = arguments.restart or arguments.workers is not None
    if segmented and not arguments.all:
        return "--restart and --workers go with --all"
    if segmented and (arguments.dry_run or arguments.rewrite or arguments.start_user_id is not None):
        return "--restart and --workers cannot be combined with --dry-run, --rewrite or --start-user-id"
    if arguments.restart and arguments.resume:
        return "--restart and --resume cannot be combined (--restart starts the run again from the beginning)"
    if arguments.retry_failed is not None and not arguments.retry_failed.is_file():
        return f"{arguments.retry_failed}: no such file"
    return None


async def migrate(migration: UserMigration, arguments: argparse.Namespace) -> int:
    """Run `migrate` with its options; returns the exit code."""
    kind = migration.key_kind
    user_id = given_id(kind, "--user-id", arguments.user_id, lowest=1)
    if user_id is not None:
        try:
            report = await migration.migrate_user(user_id, arguments.dry_run, arguments.rewrite)
        except UserNotFound as error:
            print(json.dumps({"error": error.code, "message": str(error)}) if arguments.json else str(error))
            return EXIT_USERS_FAILED
        if arguments.json:
            print(json.dumps(view(report)))
        else:
            print(
                f"{'Would migrate' if report.dry_run else 'Migrated'} {report.migrated_count}, "
                f"skipped {report.skipped_count}, failed {report.failed_count}."
            )
            for error_text in report.errors:
                print(f"  {error_text}", file=sys.stderr)
        return EXIT_USERS_FAILED if report.failed_count else EXIT_OK

    freeze_long_lived_objects()  # a whole run: what was wired is not scanned again
    collect_young_less_often()
    if arguments.retry_failed is not None:
        user_ids = _failed_ids_from(arguments.retry_failed)
        total = len(set(user_ids))
        bar = ProgressBar(sys.stderr, total, progress_line)
        try:
            summary = await migration.retry_users(
                user_ids, arguments.dry_run, on_progress=bar, rewrite=arguments.rewrite
            )
        finally:
            bar.close()
    elif is_worker_run(arguments):
        if (arguments.workers or 1) > 1:
            return await run_workers(migration, arguments)
        bar = ProgressBar(sys.stderr, 0, progress_line)
        try:
            with stop_on_signals() as stop:
                worked = await migration.work(arguments.batch_size, arguments.restart, on_progress=bar, stop=stop)
        finally:
            bar.close()
        summary = worked.summary
        if arguments.failed_out is not None:
            _write_failures(arguments.failed_out, summary)
        fields = view(summary)
        print_worker_summary(worked, fields, arguments.json, await migration.budget_snapshot(), arguments.failed_out)
        if summary.stopped_early:
            return EXIT_INTERRUPTED
        return EXIT_USERS_FAILED if summary.failed or worked.leases.unfinished_segments else EXIT_OK
    else:
        given = given_id(kind, "--start-user-id", arguments.start_user_id)
        start = await migration.resume_point() if arguments.resume else (kind.first if given is None else given)
        # The total is only for the bar; counting a huge table is not free, so only when it shows.
        total = await migration.users_to_migrate(start) if sys.stderr.isatty() else 0
        bar = ProgressBar(sys.stderr, total, progress_line)
        try:
            with stop_on_signals() as stop:
                summary = await migration.migrate_all(
                    RunRequest(
                        batch_size=arguments.batch_size,
                        start_user_id=start,
                        dry_run=arguments.dry_run,
                        on_progress=bar,
                        stop=stop,
                        rewrite=arguments.rewrite,
                    )
                )
        finally:
            bar.close()
    if arguments.failed_out is not None:
        _write_failures(arguments.failed_out, summary)
    _print_summary(summary, arguments)
    if summary.stopped_early:
        return EXIT_INTERRUPTED
    return EXIT_USERS_FAILED if summary.failed else EXIT_OK
