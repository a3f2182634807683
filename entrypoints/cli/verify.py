"""The `verify` command: the library's verify, its differences as JSON lines, its counts printed
for people or as JSON, a progress bar on stderr."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from user_migration.domain.errors import InvalidParameter
from user_migration.domain.keys import KeyKind, UserId, given_id
from user_migration.domain.migrate.request import MAX_USER_ID
from user_migration.domain.parallel.verify_worker import VerifyWorkerSummary, is_clean
from user_migration.domain.verify.differences import VerifyProgress
from user_migration.domain.verify.request import VerifyRequest
from user_migration.entrypoints.cli.exit_codes import EXIT_INTERRUPTED, EXIT_OK, EXIT_USERS_FAILED
from user_migration.entrypoints.cli.migrate import id_argument, stop_on_signals
from user_migration.entrypoints.cli.progress import ProgressBar, bar_text
from user_migration.entrypoints.cli.verify_output import Differences, print_summary
from user_migration.entrypoints.cli.verify_pass import print_pass_summary, run_verify_workers
from user_migration.entrypoints.heap import collect_young_less_often, freeze_long_lived_objects
from user_migration.entrypoints.library import UserMigration


def add_verify_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `user-migration verify`."""
    parser.add_argument("--start-user-id", type=id_argument, default=0, metavar="ID", help="first user id (default 0)")
    parser.add_argument(
        "--end-user-id", type=id_argument, default=MAX_USER_ID, metavar="ID", help="last user id (default: the end)"
    )
    parser.add_argument("--batch-size", type=int, default=1000, help="rows per page (1..1000, default 1000)")
    parser.add_argument("--out", type=Path, metavar="FILE", help="write each difference as a JSON line to FILE")
    parser.add_argument(
        "--repair",
        action="store_true",
        help="write missing items, replace different ones not newer than their row, delete extra items this "
        "tool wrote; items someone else wrote, or newer than their row, are left as they are and reported",
    )
    parser.add_argument("--json", action="store_true", help="print the counts as JSON")
    parser.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="verify the whole id space as N workers of one verify pass (processes here) sharing its segments "
        "under leases; --workers 1 on each of N hosts does the same",
    )
    parser.add_argument(
        "--restart", action="store_true", help="with --workers: verify everything again after a finished pass"
    )


def check_verify_arguments(arguments: argparse.Namespace) -> str | None:
    """A usage problem of the verify options, or None."""
    if not 1 <= arguments.batch_size <= 1000:
        return "--batch-size must be between 1 and 1000"
    start, end = arguments.start_user_id, arguments.end_user_id
    # Ids that are not integers are a uuid or text key's, checked against the key once the mapping is read.
    if isinstance(start, int) and not 0 <= start <= MAX_USER_ID:
        return f"--start-user-id must be between 0 and {MAX_USER_ID}"
    if isinstance(start, int) and isinstance(end, int) and not start <= end <= MAX_USER_ID:
        return f"--end-user-id must be between --start-user-id and {MAX_USER_ID}"
    if arguments.workers is not None and not 1 <= arguments.workers <= 64:
        return "--workers must be between 1 and 64"
    if arguments.restart and arguments.workers is None:
        return "--restart goes with --workers"
    if arguments.workers is not None and (arguments.start_user_id != 0 or arguments.end_user_id != MAX_USER_ID):
        return "--workers verifies the whole id space: it cannot be combined with --start-user-id or --end-user-id"
    out: Path | None = arguments.out
    if out is not None and (out.is_dir() or not out.parent.is_dir()):
        return f"--out {out}: not a file in an existing folder"
    return None


def progress_line(progress: VerifyProgress, total: int) -> str:
    """The text of the bar: rows compared of the total, then the stored ids scanned for extras."""
    scanned = f" | scanned {progress.items_scanned:,} items for extras" if progress.items_scanned else ""
    counts = f"differences {progress.differences:,}{scanned}"
    return bar_text(progress.rows_checked, total, counts, progress.elapsed_seconds)


def verify_range(kind: KeyKind, start: int | str, end: int | str) -> tuple[UserId, UserId]:
    """`--start-user-id` and `--end-user-id` as ids of the key's kind (the defaults: its whole id space)."""
    if kind is KeyKind.INTEGER:
        return given_id(kind, "--start-user-id", start) or 0, given_id(kind, "--end-user-id", end) or 0
    first = kind.first if start == 0 else given_id(kind, "--start-user-id", start)
    last = kind.last if end == MAX_USER_ID else given_id(kind, "--end-user-id", end)
    if first is None or last is None or last < first:  # type: ignore[operator]  # ids of one kind
        raise InvalidParameter("--end-user-id", "--end-user-id must not be below --start-user-id")
    return first, last


async def verify(migration: UserMigration, arguments: argparse.Namespace) -> int:
    """Run `verify` with its options; returns the exit code."""
    freeze_long_lived_objects()  # a whole run: what was wired is not scanned again
    collect_young_less_often()
    if arguments.workers is not None and arguments.workers > 1:
        return await run_verify_workers(migration, arguments)
    start, end = verify_range(migration.key_kind, arguments.start_user_id, arguments.end_user_id)
    # The total is only for the bar; counting a huge table is not free, so only when it shows.
    total = await migration.users_to_verify(start, end) if sys.stderr.isatty() else 0
    try:
        out = arguments.out.open("w") if arguments.out is not None else None
    except OSError as error:
        raise ValueError(f"--out {arguments.out}: {error.strerror}") from None
    differences = Differences(out)
    bar = ProgressBar(sys.stderr, total, progress_line)
    worked: VerifyWorkerSummary | None = None
    try:
        with stop_on_signals() as stop:
            # A worker of a pass takes its ranges from its leases (`--workers` refuses a range of its own).
            alone = arguments.workers is None
            request = VerifyRequest(
                start if alone else None,
                end if alone else None,
                arguments.batch_size,
                arguments.repair,
                differences,
                bar,
                stop,
            )
            if arguments.workers is not None:
                worked = await migration.verify_as_worker(request, arguments.restart)
                summary = worked.summary
            else:
                summary = await migration.verify(request)
    finally:
        bar.close()
        if out is not None:
            out.close()
    if worked is not None:
        print_pass_summary(worked, differences, arguments)
    else:
        print_summary(summary, differences, arguments)
    if summary.stopped_early:
        return EXIT_INTERRUPTED
    if worked is not None:  # the pass's verdict: every worker's, once finished
        return EXIT_OK if is_clean(worked) else EXIT_USERS_FAILED
    return EXIT_OK if summary.clean else EXIT_USERS_FAILED
