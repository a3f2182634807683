"""The failed users a summary prints on stderr: the first few, and how many more."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from itertools import islice

SHOWN_FAILURES = 20


def print_failures(texts: Iterable[str], failed: int) -> None:
    """The first `SHOWN_FAILURES` of `texts` (one per failed user), then the count of the rest."""
    for text in islice(texts, SHOWN_FAILURES):
        print(f"  {text}", file=sys.stderr)
    if failed > SHOWN_FAILURES:
        print(f"  ... and {failed - SHOWN_FAILURES:,} more", file=sys.stderr)
