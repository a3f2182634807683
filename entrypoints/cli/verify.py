"""The `verify` command: the library's verify, its differences as JSON lines, its counts printed
for people or as JSON, a progress bar on stderr."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TextIO

from domain.differences import FAILING, Difference, VerifyProgress, VerifySummary
from domain.request import MAX_USER_ID
from entrypoints.cli.exit_codes import EXIT_INTERRUPTED, EXIT_OK, EXIT_USERS_FAILED
from entrypoints.cli.migrate import stop_on_signals
from entrypoints.cli.progress import StatusLine, bar_text
from entrypoints.heap import freeze_long_lived_objects
from entrypoints.library import UserMigration
from entrypoints.verify_json import counts_json, difference_json

SHOWN_DIFFERENCES = 20


def add_verify_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `user-migration verify`."""
    parser.add_argument("--start-user-id", type=int, default=0, metavar="N", help="first user id (default 0)")
    parser.add_argument(
        "--end-user-id", type=int, default=MAX_USER_ID, metavar="N", help="last user id (default: the end)"
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


def check_verify_arguments(arguments: argparse.Namespace) -> str | None:
    """A usage problem of the verify options, or None."""
    if not 1 <= arguments.batch_size <= 1000:
        return "--batch-size must be between 1 and 1000"
    if not 0 <= arguments.start_user_id <= MAX_USER_ID:
        return f"--start-user-id must be between 0 and {MAX_USER_ID}"
    if not arguments.start_user_id <= arguments.end_user_id <= MAX_USER_ID:
        return f"--end-user-id must be between --start-user-id and {MAX_USER_ID}"
    out: Path | None = arguments.out
    if out is not None and (out.is_dir() or not out.parent.is_dir()):
        return f"--out {out}: not a file in an existing folder"
    return None


def progress_line(progress: VerifyProgress, total: int) -> str:
    """The text of the bar: rows compared of the total, then the stored ids scanned for extras."""
    scanned = f" | scanned {progress.items_scanned:,} items for extras" if progress.items_scanned else ""
    counts = f"differences {progress.differences:,}{scanned}"
    return bar_text(progress.rows_checked, total, counts, progress.elapsed_seconds)


class VerifyProgressBar(StatusLine):
    """The progress of a verify, as a bar."""

    def __init__(self, stream: TextIO, total: int) -> None:
        super().__init__(stream)
        self._total = total

    def __call__(self, progress: VerifyProgress) -> None:
        self.show(progress_line(progress, self._total))


def difference_text(difference: Difference) -> str:
    """`User <id>: <problem> (<fields or reasons>)[, repaired | not repaired: <why>]`."""
    details = difference.fields or tuple(str(reason) for reason in difference.reasons)
    text = f"User {difference.user_id}: {difference.problem.value}"
    if details:
        text += f" ({', '.join(details)})"
    if difference.repaired is True:
        text += ", repaired"
    elif difference.repaired is False:
        text += f", not repaired{': ' + difference.why if difference.why else ''}"
    return text


class _Differences:
    """Takes each difference as it is found: a line of `--out`, and the first few kept to show."""

    def __init__(self, out: TextIO | None) -> None:
        self._out = out
        self.shown: list[Difference] = []
        self.failing = 0

    def __call__(self, difference: Difference) -> None:
        if self._out is not None:
            self._out.write(json.dumps(difference_json(difference)) + "\n")
        if difference.problem in FAILING:
            self.failing += 1
            if len(self.shown) < SHOWN_DIFFERENCES:
                self.shown.append(difference)


def _print_summary(summary: VerifySummary, differences: _Differences, arguments: argparse.Namespace) -> None:
    counts = summary.counts
    if arguments.json:
        print(json.dumps(counts_json(counts, summary.repair)))
        return
    print(
        f"Checked {counts.checked:,} users in {summary.elapsed_seconds:.1f} s: {counts.matching:,} matching, "
        f"{counts.missing:,} missing, {counts.different:,} different, {counts.extra:,} extra, "
        f"{counts.newer_in_dynamodb:,} newer in DynamoDB, {counts.invalid_in_source:,} invalid in the source."
    )
    if summary.repair:
        print(f"Repaired {counts.repaired:,}; {counts.not_repaired:,} left as they are (checked again after).")
    for difference in differences.shown:
        print(f"  {difference_text(difference)}", file=sys.stderr)
    if differences.failing > len(differences.shown):
        print(f"  ... and {differences.failing - len(differences.shown):,} more", file=sys.stderr)
    if arguments.out is not None and (differences.failing or counts.newer_in_dynamodb or counts.invalid_in_source):
        print(f"Every difference is in {arguments.out}.")
    if summary.stopped_early:
        print("Stopped early on request: the counts cover what was checked.")


async def verify(migration: UserMigration, arguments: argparse.Namespace) -> int:
    """Run `verify` with its options; returns the exit code."""
    freeze_long_lived_objects()  # a whole run: worth the collection it costs
    start, end = arguments.start_user_id, arguments.end_user_id
    # The total is only for the bar; counting a huge table is not free, so only when it shows.
    total = await migration.users_to_verify(start, end) if sys.stderr.isatty() else 0
    try:
        out = arguments.out.open("w") if arguments.out is not None else None
    except OSError as error:
        raise ValueError(f"--out {arguments.out}: {error.strerror}") from None
    differences = _Differences(out)
    bar = VerifyProgressBar(sys.stderr, total)
    try:
        with stop_on_signals() as stop:
            summary = await migration.verify(
                start, end, arguments.batch_size, arguments.repair, differences, on_progress=bar, stop=stop
            )
    finally:
        bar.close()
        if out is not None:
            out.close()
    _print_summary(summary, differences, arguments)
    if summary.stopped_early:
        return EXIT_INTERRUPTED
    return EXIT_OK if summary.clean else EXIT_USERS_FAILED
