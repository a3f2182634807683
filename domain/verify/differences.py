"""What `verify` finds: the classes of difference between a source row and its item, one
difference, and the counts of a run or of a page.

The words are the report's own (`missing`, `different`, `extra`, `newer_in_dynamodb`,
`invalid_in_source`): the CLI's `--out` lines, its `--json`, the HTTP page and the metrics' labels
all use them unchanged.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from datetime import datetime

import attrs

from user_migration.domain.keys import UserId


class Problem(enum.Enum):
    """A class of difference between the source and the target."""

    # A valid row whose item is absent.
    MISSING = "missing"
    # The item differs from what the row becomes, and is not newer than the row.
    DIFFERENT = "different"
    # An item whose row does not exist.
    EXTRA = "extra"
    # The item is newer than the row (an application wrote it): reported, not an error.
    NEWER_IN_DYNAMODB = "newer_in_dynamodb"
    # The row fails validation: reported with its reasons, not an error of the migration.
    INVALID_IN_SOURCE = "invalid_in_source"


# The differences the migration is to fix (verify exits 1 while any remains).
FAILING = frozenset({Problem.MISSING, Problem.DIFFERENT, Problem.EXTRA})


@attrs.frozen
class StoredComparison:
    """How the stored item of one prepared user compares with it: `problem` is None when they
    match, else MISSING, DIFFERENT (with the differing attribute names, sorted, the migration's
    bookkeeping left out) or NEWER_IN_DYNAMODB."""

    problem: Problem | None
    fields: tuple[str, ...] = ()


MATCHING = StoredComparison(None)


@attrs.frozen
class Difference:
    """One difference, as reported: the user, its class, the differing attributes (DIFFERENT) or
    the reasons (INVALID_IN_SOURCE). With a repair, `repaired` says whether it is gone now
    (checked again after the repair) and, if not, `why` says what kept it, when known."""

    user_id: UserId
    problem: Problem
    fields: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()
    repaired: bool | None = None
    why: str | None = None


@attrs.define
class VerifyCounts:
    """How many users were checked, and how many fell in each class. With a repair, the classes
    count what was found; `repaired` and `not_repaired` split the failing ones by what remains."""

    checked: int = 0
    matching: int = 0
    missing: int = 0
    different: int = 0
    extra: int = 0
    newer_in_dynamodb: int = 0
    invalid_in_source: int = 0
    repaired: int = 0
    not_repaired: int = 0

    def add(self, difference: Difference) -> None:
        """Count one difference in its class (and, after a repair, as repaired or not)."""
        name = difference.problem.value
        setattr(self, name, getattr(self, name) + 1)
        if difference.repaired is True:
            self.repaired += 1
        elif difference.repaired is False:
            self.not_repaired += 1

    def include(self, other: VerifyCounts) -> None:
        """Add another tally (a page's) to this one."""
        for field in attrs.fields(VerifyCounts):
            setattr(self, field.name, getattr(self, field.name) + getattr(other, field.name))

    @classmethod
    def sum_of(cls, tallies: Iterable[VerifyCounts]) -> VerifyCounts:
        """Several tallies (a pass's segments') added up."""
        total = cls()
        for tally in tallies:
            total.include(tally)
        return total

    def of(self, problem: Problem) -> int:
        """How many differences of this class were found."""
        count: int = getattr(self, problem.value)
        return count

    @property
    def failing(self) -> int:
        """Missing, different and extra users found."""
        return self.missing + self.different + self.extra


@attrs.frozen
class VerifyProgress:
    """Where a verify run stands, after each page: rows compared, stored ids scanned for extras,
    failing differences found so far."""

    rows_checked: int
    items_scanned: int
    differences: int
    elapsed_seconds: float


@attrs.frozen
class VerifySummary:
    """The outcome of a whole verify run (the differences themselves went to its callback)."""

    counts: VerifyCounts
    repair: bool
    elapsed_seconds: float
    stopped_early: bool = False

    @property
    def clean(self) -> bool:
        """Whether nothing is missing, different or extra (after a repair: nothing remains)."""
        return (self.counts.not_repaired if self.repair else self.counts.failing) == 0


@attrs.frozen
class VerifyPage:
    """One page of a verify over HTTP: its differences and counts, where the next page starts
    (None at the end), whether every id the page answers for was searched for extra items, and
    on the last page whether the ids above its rows were (None on the other pages)."""

    differences: tuple[Difference, ...]
    counts: VerifyCounts
    next_start_user_id: UserId | None
    extra_checked: bool
    extra_checked_above: bool | None = None


@attrs.define
class LatestVerification:
    """The counts of the last verify run or page in this process, for the metrics."""

    counts: VerifyCounts | None = None
    finished_at: datetime | None = None

    def record(self, counts: VerifyCounts, finished_at: datetime) -> None:
        """Keep these as the latest."""
        self.counts = attrs.evolve(counts)
        self.finished_at = finished_at
