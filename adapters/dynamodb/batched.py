"""The live-safe writes as PartiQL batches, deciding every user exactly as a conditional PutItem would.

- Insert-if-absent (`WriteRule.ABSENT`, and any row without a version): `INSERT`; `DuplicateItem`
  means an item exists (refused).
- Replace-if-older (`WriteRule.OLDER`): PutItem's condition `attribute_not_exists(k) OR v < :v`
  is two statements in PartiQL, as an UPDATE cannot create an item and keeps what it does not SET.
  The items are read first (one consistent BatchGetItem per 100 users): an absent one is INSERTed;
  a stored one of an older version is UPDATEd to the new item (its other attributes REMOVEd), on
  condition that its version and digest are still what was read; any other is refused, as the
  PutItem's condition would have refused it. When the item changed in between (`DuplicateItem`,
  or `ConditionalCheckFailed` with the item now stored), the user is decided again on what is
  stored now, a few rounds at most; then it goes as a PutItem.
- Digest-guarded rewrite (`rewrite_users`): the items are read in batches instead of one GetItem
  each, `rewrite_choice` decides as before, and a replacement is an UPDATE on condition that every
  attribute is still what was read (the PutItem's `unchanged_condition`, top-level values compared
  whole: no implementation that runs PartiQL compares maps wrongly).

What cannot go as a statement (`adapters.dynamodb.partiql`), or came back refused as a whole, is
returned to the caller, which sends it as a PutItem.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import attrs

from user_migration.adapters.dynamodb.codec import REPLACE, encode_user, rewrite_choice, stored_version
from user_migration.adapters.dynamodb.item_size import Item, write_units_of
from user_migration.adapters.dynamodb.partiql import Statement, insert_statement, update_statement
from user_migration.adapters.dynamodb.rewrite import CHANGED_WHILE_REWRITING
from user_migration.adapters.dynamodb.statements import FALLBACK, ReadItems, Sent, StatementBatches
from user_migration.domain.budget.bucket import write_units_for
from user_migration.domain.convert.mapping import MIGRATION_DIGEST, MIGRATION_VERSION
from user_migration.domain.errors import DependencyUnavailable
from user_migration.domain.keys import UserId
from user_migration.domain.model import ConditionalWriteOutcome, PreparedUser, RewriteOutcome, WriteRule

ROUNDS = 3  # decisions of one user on what is stored, before it goes as a PutItem


@attrs.define
class _Tally:
    written: list[UserId] = attrs.Factory(list)
    created: set[UserId] = attrs.Factory(set)
    refused: set[UserId] = attrs.Factory(set)
    failed: dict[UserId, str] = attrs.Factory(dict)
    unavailable: dict[UserId, DependencyUnavailable] = attrs.Factory(dict)
    leftover: list[PreparedUser] = attrs.Factory(list)


@attrs.frozen
class BatchedOutcome:
    """What the batches decided, the users left to PutItems, and the failures where DynamoDB
    could not be used at all (the caller raises when every user ended so)."""

    outcome: ConditionalWriteOutcome
    leftover: tuple[PreparedUser, ...]
    unavailable: Mapping[UserId, DependencyUnavailable]


class BatchedWrites:
    """The conditional writes and rewrites of one table as PartiQL batches; see the module's docstring."""

    def __init__(self, batches: StatementBatches, table: str, key_attribute: str, read_items: ReadItems) -> None:
        self._batches = batches
        self._table = table
        self._key_attribute = key_attribute
        self._read_items = read_items

    async def usable(self, users: Sequence[PreparedUser]) -> bool:
        """Whether these users' writes go as batches here (probed once, with the first user's key)."""
        if not users:
            return False
        return await self._batches.support.usable("N" if isinstance(users[0].user_id, int) else "S")

    async def write(self, users: Sequence[PreparedUser], rule: WriteRule) -> BatchedOutcome:
        """Write each user (one per id) where `rule` allows it."""
        tally = _Tally()
        by_id = {user.user_id: user for user in users}
        items = {user_id: encode_user(user, self._key_attribute) for user_id, user in by_id.items()}
        units = {
            user_id: float(write_units_for(user.size) if user.size else write_units_of(items[user_id]))
            for user_id, user in by_id.items()
        }
        absent_only = [u for u in by_id.values() if rule is WriteRule.ABSENT or u.version is None]
        if absent_only:
            await self._insert(absent_only, items, units, tally, refused_on_duplicate=True)
        absent_ids = {user.user_id for user in absent_only}
        older = [user for user in by_id.values() if user.user_id not in absent_ids]
        current: dict[UserId, Item | None] | None = None
        for _ in range(ROUNDS):
            if not older:
                break
            if current is None:
                try:
                    stored = await self._read_items([user.user_id for user in older])
                except DependencyUnavailable as error:
                    tally.failed.update(dict.fromkeys((user.user_id for user in older), str(error)))
                    tally.unavailable.update(dict.fromkeys((user.user_id for user in older), error))
                    older = []
                    break
                current = {user.user_id: stored.get(user.user_id) for user in older}
            older, current = await self._replace_round(older, current, items, units, tally)
        tally.leftover.extend(older)
        outcome = ConditionalWriteOutcome(
            tuple(tally.written), frozenset(tally.created), frozenset(tally.refused), tally.failed
        )
        return BatchedOutcome(
            outcome,
            tuple(tally.leftover),
            tally.unavailable,
        )

    async def _insert(
        self,
        users: Sequence[PreparedUser],
        items: Mapping[UserId, Item],
        units: Mapping[UserId, float],
        tally: _Tally,
        refused_on_duplicate: bool,
    ) -> list[PreparedUser]:
        """INSERT each user; the users found present (when not `refused_on_duplicate`)."""
        statements: list[Statement] = []
        for user in users:
            statement = insert_statement(user.user_id, self._table, items[user.user_id])
            if statement is None:
                tally.leftover.append(user)
            else:
                statements.append(statement)
        ends = await self._batches.send(statements, items, units)
        present = []
        for user in users:
            end = ends.get(user.user_id)
            if end is None:
                continue
            if end.succeeded:
                tally.written.append(user.user_id)
                tally.created.add(user.user_id)
            elif end.answer.code in ("DuplicateItem", "ConditionalCheckFailed"):
                if refused_on_duplicate:
                    tally.refused.add(user.user_id)
                else:
                    present.append(user)
            else:
                self._not_sent(user, end, tally)
        return present

    @staticmethod
    def _not_sent(user: PreparedUser, end: Sent, tally: _Tally) -> None:
        if end.answer.code == FALLBACK:
            tally.leftover.append(user)
        else:
            tally.failed[user.user_id] = end.answer.message
            if end.unavailable is not None:
                tally.unavailable[user.user_id] = end.unavailable

    async def _replace_round(
        self,
        users: Sequence[PreparedUser],
        current: Mapping[UserId, Item | None],
        items: Mapping[UserId, Item],
        units: Mapping[UserId, float],
        tally: _Tally,
    ) -> tuple[list[PreparedUser], dict[UserId, Item | None] | None]:
        """One round of replace-if-older: the users to decide again, and what is stored for them
        (None: to be read again)."""
        absent = [user for user in users if current[user.user_id] is None]
        statements: list[Statement] = []
        updated: list[PreparedUser] = []
        for user in users:
            stored = current[user.user_id]
            if stored is None:
                continue
            version = stored_version(stored)
            assert user.version is not None
            if version is None or version >= user.version:
                tally.refused.add(user.user_id)  # the PutItem's `v < :v` fails on it
                continue
            guards = {MIGRATION_VERSION: stored[MIGRATION_VERSION], MIGRATION_DIGEST: stored.get(MIGRATION_DIGEST)}
            item = items[user.user_id]
            statement = update_statement(user.user_id, self._table, self._key_attribute, item, stored, guards)
            if statement is None:
                tally.leftover.append(user)
            else:
                statements.append(statement)
                updated.append(user)
        again = await self._insert(absent, items, units, tally, refused_on_duplicate=False) if absent else []
        ends = await self._batches.send(statements, items, units)
        now: dict[UserId, Item | None] = {}
        for user in updated:
            end = ends[user.user_id]
            if end.succeeded:
                tally.written.append(user.user_id)
            elif end.answer.code == "ConditionalCheckFailed":
                again.append(user)
                now[user.user_id] = end.answer.stored  # what is stored now (None: deleted)
            else:
                self._not_sent(user, end, tally)
        if any(user.user_id not in now for user in again):
            return again, None  # an INSERT met an item: read them all again
        return again, now

    async def rewrite(self, users: Sequence[PreparedUser]) -> tuple[RewriteOutcome, tuple[PreparedUser, ...]]:
        """Rewrite each user's item where the migration may (`rewrite_choice`); the users left to PutItems."""
        try:
            stored = await self._read_items([user.user_id for user in users])
        except DependencyUnavailable as error:
            return RewriteOutcome(failed=dict.fromkeys((user.user_id for user in users), str(error))), ()
        done: dict[str, list[UserId]] = {"rewritten": [], "unchanged": []}
        reasons: dict[str, dict[UserId, str]] = {"kept": {}, "failed": {}}
        leftover: list[PreparedUser] = []
        statements: list[Statement] = []
        items: dict[UserId, Item] = {}
        units: dict[UserId, float] = {}
        replacing: dict[UserId, PreparedUser] = {}
        for user in users:
            current = stored.get(user.user_id)
            item = encode_user(user, self._key_attribute)
            what, why = rewrite_choice(current, item, user.version)
            if what in done:
                done[what].append(user.user_id)
                continue
            if what != REPLACE:
                reasons[what][user.user_id] = why
                continue
            assert current is not None
            statement = update_statement(user.user_id, self._table, self._key_attribute, item, current, current)
            if statement is None:
                leftover.append(user)
                continue
            statements.append(statement)
            items[user.user_id] = item
            units[user.user_id] = float(max(write_units_of(item), write_units_of(current)))
            replacing[user.user_id] = user
        ends = await self._batches.send(statements, items, units)
        for user_id, user in replacing.items():
            end = ends[user_id]
            if end.succeeded:
                done["rewritten"].append(user_id)
            elif end.answer.code == "ConditionalCheckFailed":
                reasons["kept"][user_id] = CHANGED_WHILE_REWRITING
            elif end.answer.code == FALLBACK:
                leftover.append(user)
            else:
                reasons["failed"][user_id] = end.answer.message
        outcome = RewriteOutcome(tuple(done["rewritten"]), tuple(done["unchanged"]), reasons["kept"], reasons["failed"])
        return outcome, tuple(leftover)
