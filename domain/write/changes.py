"""The writes that carry changed and deleted rows over: `sync`, the change stream and `verify --repair`.

Each is a step of the write ledger (`domain.write.ledger`), as the backfill's pages are: the range
held, the writes intended, checked for what landed and settled once. A changed row replaces its
item only where the rule allows it, which the target checks atomically with the write; a deleted
row's item goes only where the migration wrote it and nobody changed it since.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from datetime import UTC, datetime

from user_migration.domain.convert.rules import UserPreparer
from user_migration.domain.keys import UserId
from user_migration.domain.migrate.report import ChangeOutcome
from user_migration.domain.model import DeleteOutcome, PreparedUser, RewriteOutcome, SourceUser, WriteRule
from user_migration.domain.write.ledger import Attempt, WriteLedger, write_failures

# Why a changed row's item was left as it is.
NEWER_IN_TARGET = "newer in DynamoDB than its row (written after the row was read): left as it is"
UNVERSIONED_ROW = "the row has no version: its item is only written where none exists"
GONE_WHILE_WRITING = "deleted from DynamoDB while it was being written: left to the next pass"


def _utc_now() -> datetime:
    return datetime.now(UTC)


class ChangeWrites:
    """Carries changed rows and deleted rows into the target through `ledger`; see the module's
    docstring. The ledger's locks and writes in flight are the process's (shared with the backfill's
    `Migration`, so that their writes of one user never overlap and a shutdown waits for both)."""

    def __init__(
        self, ledger: WriteLedger, preparer: UserPreparer | None = None, clock: Callable[[], datetime] = _utc_now
    ) -> None:
        self._target = ledger.target
        self._ledger = ledger
        self._in_flight = ledger.in_flight
        self._preparer = preparer if preparer is not None else UserPreparer()
        self._clock = clock

    async def apply(self, users: Sequence[SourceUser], rule: WriteRule = WriteRule.OLDER) -> ChangeOutcome:
        """Carry changed rows over (`sync`, the stream, `verify --repair`): a user without an item
        is written as the backfill writes it (and counted); a stored item is replaced where `rule`
        allows it, a condition the target checks atomically with the write.

        A row whose version did not move (an `update_column`, an admin's SQL) is judged by its
        content: where it converts to something else than the item as new as it holds, and that
        item is the migration's own, unchanged since it wrote it, the item is replaced,
        conditional on exactly what was read (`same_version_written`). The same goes for an item
        the migration wrote without a version (its row had none then). Items holding what their
        row converts to stay (`unchanged`); newer ones, or someone else's, are kept (`kept`,
        with the reason)."""
        failures, prepared = self._preparer.prepare_all(users, self._clock())
        if not prepared:
            if failures:
                await self._ledger.note_failing(failures)
            return ChangeOutcome(read=len(users), failures=failures)
        attempt = Attempt([user.user_id for user in prepared], dict(failures))
        async with self._ledger.hold([*attempt.user_ids, *attempt.invalid]) as step:
            created, replaced = await step.apply(prepared, rule, attempt)
        refused = sorted(set(replaced.refused))
        stored = await self._target.read_stored(refused) if refused else {}
        by_id = {user.user_id: user for user in prepared}
        kept: dict[UserId, str] = {}
        by_content: list[PreparedUser] = []  # as new as their row, or unversioned: the content decides
        for user_id in refused:
            if user_id not in stored:
                kept[user_id] = GONE_WHILE_WRITING
                continue
            version, row_version = stored[user_id].version, by_id[user_id].version
            if version is None or version == row_version:
                by_content.append(by_id[user_id])
            elif row_version is None:
                kept[user_id] = UNVERSIONED_ROW
            else:
                kept[user_id] = NEWER_IN_TARGET
        compared = await self._in_flight.run(self._target.rewrite_users(by_content)) if by_content else RewriteOutcome()
        write_failed = {**created.failed, **replaced.failed, **compared.failed}
        failures.update(write_failures(write_failed))
        kept.update(compared.kept)
        return ChangeOutcome(
            read=len(users),
            written=len(created.written) + len(replaced.written) + len(compared.rewritten),
            unchanged=len(compared.unchanged),
            kept={user_id: kept[user_id] for user_id in sorted(kept)},
            failures=failures,
            write_failed=frozenset(write_failed),
            same_version_written=len(compared.rewritten),
        )

    async def remove(self, user_ids: Collection[UserId]) -> DeleteOutcome:
        """Delete the items of these users that the migration wrote and nobody changed since
        (checked by the delete itself), and take them off the counters; the others are kept,
        with the reason (e.g. an item the application wrote)."""
        wanted = sorted(set(user_ids))
        if not wanted:
            return DeleteOutcome()
        async with self._ledger.hold(wanted) as step:
            return await step.remove(wanted)
