"""What `verify` prints: each difference as a JSON line of `--out`, the first few on stderr, and
the counts for people or as JSON."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TextIO

from user_migration.domain.verify.differences import FAILING, Difference, VerifySummary
from user_migration.entrypoints.views import view

SHOWN_DIFFERENCES = 20


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


class Differences:
    """Takes each difference as it is found: a line of `--out`, and the first few kept to show."""

    def __init__(self, out: TextIO | None) -> None:
        self._out = out
        self.shown: list[Difference] = []
        self.failing = 0

    def __call__(self, difference: Difference) -> None:
        if self._out is not None:
            self._out.write(json.dumps(view(difference)) + "\n")
        if difference.problem in FAILING:
            self.failing += 1
            if len(self.shown) < SHOWN_DIFFERENCES:
                self.shown.append(difference)


def print_summary(summary: VerifySummary, differences: Differences, arguments: argparse.Namespace) -> None:
    counts = summary.counts
    if arguments.json:
        print(json.dumps(view(summary)))
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
