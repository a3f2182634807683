"""One step of a verify: a page of source rows compared with their items, or a page of stored ids
looked up among the rows; every difference checked again before it is reported, and, with a
repair, fixed where the migration may and checked once more.

Checked again means read again: the rows from the source, the items from the target, compared
anew. A row that changed (or whose change reached the target) between the first look and the
second is reported as it stands at the second, so a live source raises no false alarm.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from datetime import datetime

import attrs

from user_migration.domain.convert.rules import Rejection, UserPreparer
from user_migration.domain.keys import UserId
from user_migration.domain.model import PreparedUser, SourceUser, WriteRule
from user_migration.domain.verify.differences import FAILING, Difference, Problem, VerifyCounts
from user_migration.domain.write.changes import ChangeWrites
from user_migration.ports.user_source import UserSource
from user_migration.ports.user_target import UserTarget


@attrs.frozen
class Findings:
    """What one step found: its differences in id order, its counts, and how many stored ids it
    looked up (a page of the scan for extra items)."""

    differences: tuple[Difference, ...] = ()
    counts: VerifyCounts = attrs.Factory(VerifyCounts)
    scanned: int = 0


@attrs.frozen
class _Look:
    """One user as one look saw it: its class of difference (None: matching), and the row and
    prepared user a repair writes from."""

    user_id: UserId
    problem: Problem | None
    fields: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()
    row: SourceUser | None = None
    prepared: PreparedUser | None = None

    def difference(self, repaired: bool | None = None, why: str | None = None) -> Difference:
        assert self.problem is not None
        return Difference(self.user_id, self.problem, self.fields, self.reasons, repaired, why)


@attrs.define(eq=False, slots=False)
class VerifyStep:
    """Compares, checks again and repairs; see the module's docstring."""

    _source: UserSource
    _target: UserTarget
    _changes: ChangeWrites
    _preparer: UserPreparer
    _clock: Callable[[], datetime]

    async def rows(self, rows: Sequence[SourceUser], repair: bool = False) -> Findings:
        """Verify these source rows against their items. A row deleted before it was checked
        again is counted as checked and nothing else (its item, if any, is an extra one)."""
        counts = VerifyCounts(checked=len(rows))
        first = await self._look(rows)
        suspects = [user_id for user_id, look in first.items() if look.problem is not None]
        again = await self._look_again(suspects) if suspects else {}
        found: list[_Look] = []
        for user_id, look in first.items():
            current = again.get(user_id) if look.problem is not None else look
            if current is None:
                continue
            if current.problem is None:
                counts.matching += 1
            else:
                found.append(current)
        differences = await self._repair_rows(found) if repair else [look.difference() for look in found]
        for difference in differences:
            counts.add(difference)
        return Findings(tuple(differences), counts)

    async def stored_ids(self, user_ids: Collection[UserId], repair: bool = False) -> Findings:
        """Look these stored ids up among the rows: an item whose row does not exist (checked
        again: item still there, row still absent) is extra. A repair deletes the extra items the
        migration wrote and nobody changed since; the others stay, reported."""
        wanted = sorted(set(user_ids))
        rows = await self._source.existing_user_ids(wanted) if wanted else set()
        candidates = [user_id for user_id in wanted if user_id not in rows]
        extra = await self._still_extra(candidates) if candidates else []
        if not repair or not extra:
            differences = [Difference(user_id, Problem.EXTRA) for user_id in extra]
        else:
            outcome = await self._changes.remove(extra)
            why = {**outcome.kept, **outcome.failed}
            remaining = set(await self._still_extra(extra))
            differences = [
                Difference(user_id, Problem.EXTRA, repaired=False, why=why.get(user_id))
                if user_id in remaining
                else Difference(user_id, Problem.EXTRA, repaired=True)
                for user_id in extra
            ]
        counts = VerifyCounts()
        for difference in differences:
            counts.add(difference)
        return Findings(tuple(differences), counts, scanned=len(wanted))

    async def _look(self, rows: Sequence[SourceUser]) -> dict[UserId, _Look]:
        migrated_at = self._clock()
        looks: dict[UserId, _Look] = {}
        prepared: list[PreparedUser] = []
        for row in rows:
            outcome = self._preparer.prepare(row, migrated_at)
            if isinstance(outcome, Rejection):
                looks[row.id] = _Look(row.id, Problem.INVALID_IN_SOURCE, reasons=tuple(outcome.reasons), row=row)
            else:
                looks[row.id] = _Look(row.id, None, row=row, prepared=outcome)
                prepared.append(outcome)
        compared = await self._target.compare_with_stored(prepared) if prepared else {}
        for user in prepared:
            comparison = compared[user.user_id]
            looks[user.user_id] = attrs.evolve(
                looks[user.user_id], problem=comparison.problem, fields=comparison.fields
            )
        return looks

    async def _look_again(self, user_ids: Collection[UserId]) -> dict[UserId, _Look]:
        """The rows read again and compared anew; an id whose row is gone is left out."""
        return await self._look(await self._source.read_users(user_ids))

    async def _repair_rows(self, found: list[_Look]) -> list[Difference]:
        """Missing items written through the counted backfill path, different ones replaced where
        the stored item is not newer than the row (and is the migration's), then both checked again."""
        why: dict[UserId, str] = {}
        rows = [look.row for look in found if look.problem in (Problem.MISSING, Problem.DIFFERENT) and look.row]
        if rows:
            # One path for both, sync's: a missing item is written where none exists (and
            # counted), a different one replaced where it is older than the row, or as new as
            # the row (or unversioned) and the migration's own, unchanged since it wrote it.
            outcome = await self._changes.apply(rows, rule=WriteRule.OLDER)
            why.update(outcome.kept)
            why.update({user_id: "; ".join(reasons) for user_id, reasons in outcome.failures.items()})
        repaired = [look.user_id for look in found if look.problem in FAILING]
        after = await self._look_again(repaired) if repaired else {}
        differences: list[Difference] = []
        for look in found:
            if look.problem not in FAILING:
                differences.append(look.difference())
                continue
            now = after.get(look.user_id)
            if now is None or now.problem not in FAILING:  # fixed (a row gone since: its item is extra)
                differences.append(look.difference(repaired=True))
            else:  # what remains, as it stands now
                differences.append(now.difference(repaired=False, why=why.get(look.user_id)))
        return differences

    async def _still_extra(self, user_ids: Sequence[UserId]) -> list[UserId]:
        """Of these ids, those whose item is (still) stored and whose row (still) does not exist."""
        stored = await self._target.existing_user_ids(user_ids)
        rows = await self._source.existing_user_ids(user_ids)
        return [user_id for user_id in user_ids if user_id in stored and user_id not in rows]
