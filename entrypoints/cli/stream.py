"""`sync --follow --changes logical`: the stream's progress, its retained WAL and lag, and the
loud warning past `--max-retained-wal`."""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from typing import Any

from user_migration.domain.convert.rules import failure_text
from user_migration.domain.errors import ChangeStreamInUse, DependencyUnavailable
from user_migration.domain.sync.poll import SyncProgress
from user_migration.domain.sync.request import StreamRequest
from user_migration.domain.sync.stream import StreamProgress, StreamSummary
from user_migration.entrypoints.cli.exit_codes import EXIT_OK, EXIT_USERS_FAILED
from user_migration.entrypoints.cli.failures_shown import SHOWN_FAILURES
from user_migration.entrypoints.cli.migrate import stop_on_signals
from user_migration.entrypoints.cli.progress import StatusLine, count_line
from user_migration.entrypoints.views import view

_UNITS = {"": 1, "b": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3, "tb": 1024**4}
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*", re.IGNORECASE)
# A line of the stream's state on stdout at most this often (besides the status line on a terminal).
REPORT_SECONDS = 5.0


def parse_size(text: str) -> int:
    """Bytes of `10GB`, `512MB`, `1.5TB` or a plain number (units of 1024, as PostgreSQL's)."""
    match = _SIZE.fullmatch(text)
    if match is None or match[2].lower() not in _UNITS:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (say e.g. 10GB, 512MB or a number of bytes)")
    return int(float(match[1]) * _UNITS[match[2].lower()])


def size_text(size: int) -> str:
    """A size in the largest unit it reaches (`12.3 MB`)."""
    for unit in ("TB", "GB", "MB", "kB"):
        if size >= _UNITS[unit.lower()]:
            return f"{size / _UNITS[unit.lower()]:.1f} {unit}"
    return f"{size} B"


def written_text(written: int, same_version_written: int) -> str:
    """How many items were written, naming those whose row changed without a new version."""
    if not same_version_written:
        return f"{written:,}"
    return f"{written:,} ({same_version_written:,} of them rows changed without a new version)"


def progress_text(progress: StreamProgress) -> str:
    """A progress report as a line."""
    health = progress.health
    wal = (
        "slot: -"
        if health is None
        else (f"slot retains {size_text(health.retained_wal_bytes)} of WAL, {size_text(health.lag_bytes)} behind")
    )
    counts = f"written {progress.written:,} deleted {progress.deleted:,} failed {progress.failed:,}"
    line = count_line(progress.changes_seen, progress.elapsed_seconds, counts)
    return f"{line} | lag {progress.lag_seconds:.1f} s | {wal}"


class _Reports:
    """The status line, a line (or JSON line) every `REPORT_SECONDS`, and the warning."""

    def __init__(self, arguments: argparse.Namespace) -> None:
        self._arguments = arguments
        self.bar = StatusLine(sys.stderr)
        self._reported = 0.0
        self._warned = 0.0

    def __call__(self, progress: StreamProgress) -> None:
        now = time.monotonic()
        if progress.over_limit and progress.health is not None and now - self._warned >= REPORT_SECONDS:
            self._warned = now
            self.bar.close()
            print(
                f"WARNING: the replication slot retains {size_text(progress.health.retained_wal_bytes)} of WAL, past "
                f"--max-retained-wal {size_text(self._arguments.max_retained_wal)}: the source's disk fills while "
                "this sync is behind. Let it catch up, or stop it and run `user-migration cdc teardown` "
                "(max_slot_wal_keep_size bounds it on the server; see docs/change-data-capture.md).",
                file=sys.stderr,
                flush=True,
            )
        self.bar.show(progress_text(progress))
        if now - self._reported >= REPORT_SECONDS:
            self._reported = now
            self.bar.close()
            if self._arguments.json:
                print(json.dumps(view(progress)), flush=True)
            else:
                print(progress_text(progress), flush=True)

    def backfill(self, progress: SyncProgress) -> None:
        counts = f"written {progress.written:,} deleted {progress.deleted:,} failed {progress.failed:,}"
        self.bar.show("backfill: " + count_line(progress.changes_seen, progress.elapsed_seconds, counts))


def _unavailable(reports: _Reports, retry_seconds: float) -> Any:
    holders: list[int | None] = []  # the holders of the slot told in full so far

    def told(error: DependencyUnavailable) -> None:
        reports.bar.close()
        text = str(error)
        if (
            isinstance(error, ChangeStreamInUse)
            and holders
            and error.holder is not None
            and error.holder == holders[-1]
        ):
            text = f"the replication slot is still held by PostgreSQL process {error.holder} (see above)"
        elif isinstance(error, ChangeStreamInUse):
            holders.append(error.holder)
        print(f"user-migration sync: {text}; trying again in {retry_seconds:g} s", file=sys.stderr, flush=True)

    return told


async def stream(migration: Any, arguments: argparse.Namespace) -> int:
    """Run `sync --follow --changes logical`; returns the exit code."""
    reports = _Reports(arguments)
    try:
        with stop_on_signals() as stop:
            summary: StreamSummary = await migration.stream_changes(
                StreamRequest(
                    stop,
                    arguments.batch_size,
                    arguments.max_retained_wal,
                    on_progress=reports,
                    on_backfill_progress=reports.backfill,
                    on_unavailable=_unavailable(reports, 5.0),
                )
            )
    finally:
        reports.bar.close()
    tally = summary.tally
    failures = summary.failures
    if arguments.json:
        print(json.dumps({"totals": view(summary)}))
    else:
        backfill = "" if summary.backfill is None else f"backfilled {summary.backfill.written:,} users, then "
        print(
            f"Stopped. In all: {backfill}{summary.transactions:,} transactions, {summary.changes_seen:,} changes: "
            f"wrote {written_text(tally.written, tally.same_version_written)}, deleted {tally.deleted:,}, "
            f"kept {tally.skipped_newer:,} newer in DynamoDB, "
            f"{tally.unchanged:,} already current, failed {len(failures):,} (backfill included)."
        )
        for user_id, reasons in list(failures.items())[:SHOWN_FAILURES]:
            print(f"  {failure_text(user_id, list(reasons))}", file=sys.stderr)
    return EXIT_USERS_FAILED if failures else EXIT_OK
