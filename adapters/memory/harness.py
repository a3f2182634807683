"""In-memory adapters: the public test harness's source, target and state.

They keep the ports' contracts (the same contract suites run against them and the real
adapters) and add a few knobs for tests, such as making the target refuse some users.
"""

from __future__ import annotations

import bisect
import copy
import itertools
import zlib
from collections.abc import AsyncIterator, Collection, Iterable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import attrs

from user_migration.adapters.dynamodb.codec import (
    decode_key,
    encode_user,
    key_attribute_type,
    rewrite_choice,
    stored_user,
    stored_version,
    why_not_rewritten,
)
from user_migration.adapters.dynamodb.compare import compare_users
from user_migration.adapters.dynamodb.item_size import Item
from user_migration.domain.convert.mapping import (
    DEFAULT_KEY_ATTRIBUTE,
    PlannedColumn,
    SourcePlan,
    UserMapping,
    default_mapping,
)
from user_migration.domain.convert.versions import may_replace, version_of
from user_migration.domain.errors import MappingError
from user_migration.domain.keys import KeyKind, UserId, ids_within
from user_migration.domain.model import (
    ChangeCursor,
    ConditionalWriteOutcome,
    DeleteOutcome,
    MigrationProgress,
    PreparedUser,
    RewriteOutcome,
    SourceUser,
    StoredUser,
    User,
    WriteOutcome,
    WriteRule,
    as_source_user,
)
from user_migration.domain.parallel.segments import ScanPart, quantile_boundaries
from user_migration.domain.verify.differences import StoredComparison
from user_migration.domain.write.range_locks import UserRangeLocks
from user_migration.ports.migration_state import MigrationState, Settlement, UsersHold
from user_migration.ports.user_source import UserSource
from user_migration.ports.user_target import UserTarget


def _part_of(user_id: UserId, total: int) -> int:
    """Which of `total` scan parts an id falls in (a text id by a stable hash of it)."""
    return user_id % total if isinstance(user_id, int) else zlib.crc32(user_id.encode("utf-8", "surrogatepass")) % total


class InMemoryUserSource(UserSource):
    """A source holding the given users, read in id order like the keyset query.

    Users of the documented layout (`User`) arrive as the documented mapping reads them; a
    `SourceUser` arrives with exactly its values (as a mapping of your own would give them).
    """

    def __init__(self, users: Iterable[User | SourceUser] = (), mapping: UserMapping | None = None) -> None:
        if mapping is not None and mapping.problems:  # as the real source, never read through a broken file
            raise MappingError(list(mapping.problems), mapping.origin)
        self.mapping = mapping if mapping is not None else default_mapping()
        self._users: dict[UserId, SourceUser] = {}
        self._ids: list[UserId] = []
        # Every put is a change, numbered: a cursor is the number the next change will get.
        self._changes = 0
        self._changed: dict[UserId, int] = {}
        for user in users:
            self.put(user)

    @property
    def key_kind(self) -> KeyKind:
        return self.mapping.key_kind

    def put(self, user: User | SourceUser) -> None:
        """Add or replace a user (e.g. to fix a row before retrying it). A `SourceUser` without a
        version takes it from the mapping's version attribute, as the real source reads it."""
        if user.id not in self._users:
            bisect.insort(self._ids, user.id)
        source_user = as_source_user(user)
        version_column = self.mapping.version
        if source_user.version is None and version_column is not None and version_column in source_user.values:
            source_user = attrs.evolve(source_user, version=version_of(source_user.values[version_column]))
        self._users[user.id] = source_user
        self._changes += 1
        self._changed[user.id] = self._changes

    def delete(self, user_id: UserId) -> None:
        """Remove a user, as a DELETE of its row would."""
        if self._users.pop(user_id, None) is not None:
            self._ids.remove(user_id)
            self._changed.pop(user_id, None)

    async def existing_user_ids(self, user_ids: Collection[UserId]) -> set[UserId]:
        return {user_id for user_id in user_ids if user_id in self._users}

    async def change_cursor(self) -> str:
        return str(self._changes + 1)

    async def read_changed_page(
        self, since: str | None, start_user_id: UserId, limit: int, highest: UserId | None = None
    ) -> Sequence[SourceUser]:
        first_change = int(since) if since is not None and since.isdigit() else 0
        first = bisect.bisect_left(self._ids, start_user_id)
        last = len(self._ids) if highest is None else bisect.bisect_right(self._ids, highest)
        changed = (user_id for user_id in self._ids[first:last] if self._changed[user_id] >= first_change)
        return [self._users[user_id] for user_id in itertools.islice(changed, limit)]

    async def read_page(self, start_user_id: UserId, limit: int, highest: UserId | None = None) -> Sequence[SourceUser]:
        first = bisect.bisect_left(self._ids, start_user_id)
        last = len(self._ids) if highest is None else bisect.bisect_right(self._ids, highest)
        return [self._users[user_id] for user_id in self._ids[first : min(first + limit, last)]]

    async def segment_boundaries(self, segments: int) -> list[UserId]:
        return quantile_boundaries(self._ids, segments)

    async def read_user(self, user_id: UserId) -> SourceUser | None:
        return self._users.get(user_id)

    async def read_users(self, user_ids: Collection[UserId]) -> Sequence[SourceUser]:
        return [self._users[user_id] for user_id in sorted(set(user_ids)) if user_id in self._users]

    async def describe(self) -> SourcePlan:
        columns = [
            PlannedColumn(
                "key", self.mapping.key, "bigint", self.mapping.key_attribute, key_attribute_type(self.key_kind)
            )
        ]
        for source in self.mapping.attributes:
            role = "mapped" if source.column is not None else "expression"
            columns.append(PlannedColumn(role, source.sql, "unknown (in memory)", source.name, None))
        return SourcePlan(self.mapping.table, self.mapping.key, tuple(columns))

    async def count_users(self, start_user_id: UserId | None = None) -> int:
        start = self.key_kind.first if start_user_id is None else start_user_id
        return len(self._ids) - bisect.bisect_left(self._ids, start)

    async def estimate_user_count(self) -> int:
        return await self.count_users()  # exact, and as cheap as an estimate here

    async def check_ready(self) -> None:
        return None


class InMemoryUserTarget(UserTarget):
    """A target keeping items in a dict.

    `refuse` maps user ids to a reason: writes of those users fail with it, as DynamoDB's
    unprocessed items would after the retries ran out.
    """

    def __init__(self, items: Iterable[Item] = (), key_attribute: str = DEFAULT_KEY_ATTRIBUTE) -> None:
        self.key_attribute = key_attribute
        self.items: dict[UserId, Item] = {decode_key(item[key_attribute]): item for item in items}
        self.refuse: dict[UserId, str] = {}
        self.write_calls = 0

    async def existing_user_ids(self, user_ids: Collection[UserId]) -> set[UserId]:
        return {user_id for user_id in user_ids if user_id in self.items}

    async def holds_no_items(self) -> bool:
        return not self.items

    async def write_users(self, users: Sequence[PreparedUser]) -> WriteOutcome:
        self.write_calls += 1
        written: list[UserId] = []
        failed: dict[UserId, str] = {}
        for user in users:
            if user.user_id in self.refuse:
                failed[user.user_id] = self.refuse[user.user_id]
                continue
            self.items[user.user_id] = encode_user(user, self.key_attribute)
            written.append(user.user_id)
        return WriteOutcome(tuple(written), failed)

    async def write_users_if(self, users: Sequence[PreparedUser], rule: WriteRule) -> ConditionalWriteOutcome:
        self.write_calls += 1
        written: list[UserId] = []
        created: set[UserId] = set()
        refused: set[UserId] = set()
        failed: dict[UserId, str] = {}
        for user in {user.user_id: user for user in users}.values():
            current = self.items.get(user.user_id)
            if user.user_id in self.refuse:
                failed[user.user_id] = self.refuse[user.user_id]
            elif current is None:
                self.items[user.user_id] = encode_user(user, self.key_attribute)
                written.append(user.user_id)
                created.add(user.user_id)
            elif rule is not WriteRule.ABSENT and may_replace(stored_version(current), user.version):
                self.items[user.user_id] = encode_user(user, self.key_attribute)
                written.append(user.user_id)
            else:
                refused.add(user.user_id)
        return ConditionalWriteOutcome(tuple(written), frozenset(created), frozenset(refused), failed)

    async def delete_unchanged(self, user_ids: Collection[UserId]) -> DeleteOutcome:
        deleted: list[UserId] = []
        kept: dict[UserId, str] = {}
        failed: dict[UserId, str] = {}
        for user_id in sorted(set(user_ids)):
            current = self.items.get(user_id)
            if current is None:
                continue
            if (why := why_not_rewritten(current)) is not None:
                kept[user_id] = why
            elif user_id in self.refuse:
                failed[user_id] = self.refuse[user_id]
            else:
                del self.items[user_id]
                deleted.append(user_id)
        return DeleteOutcome(tuple(deleted), kept, failed)

    async def read_stored(self, user_ids: Collection[UserId]) -> dict[UserId, StoredUser]:
        return {user_id: stored_user(item) for user_id, item in (await self.read_items(user_ids)).items()}

    async def read_items(self, user_ids: Collection[UserId]) -> dict[UserId, Item]:
        """The stored items of these users, by id (copies); absent ones are left out."""
        return {user_id: copy.deepcopy(self.items[user_id]) for user_id in set(user_ids) if user_id in self.items}

    async def compare_with_stored(self, users: Sequence[PreparedUser]) -> dict[UserId, StoredComparison]:
        return compare_users(users, self.items, self.key_attribute)

    async def scan_user_ids(
        self, lowest: UserId, highest: UserId, page_size: int = 1000, part: ScanPart | None = None
    ) -> AsyncIterator[list[UserId]]:
        inside = [
            user_id
            for user_id in list(self.items)
            if lowest <= user_id <= highest  # type: ignore[operator]  # ids of one kind
            and (part is None or _part_of(user_id, part.total) == part.index)
        ]
        for first in range(0, len(inside), page_size):
            yield inside[first : first + page_size]

    async def scan_user_ids_of_small_table(
        self, lowest: UserId, highest: UserId, most_items: int
    ) -> list[UserId] | None:
        if len(self.items) > most_items:
            return None
        return [
            user_id
            for user_id in list(self.items)
            if lowest <= user_id <= highest  # type: ignore[operator]  # ids of one kind
        ]

    async def rewrite_users(self, users: Sequence[PreparedUser]) -> RewriteOutcome:
        self.write_calls += 1
        rewritten: list[UserId] = []
        unchanged: list[UserId] = []
        kept: dict[UserId, str] = {}
        failed: dict[UserId, str] = {}
        for user in users:
            item = encode_user(user, self.key_attribute)
            what, why = rewrite_choice(self.items.get(user.user_id), item, user.version)
            if what == "kept":
                kept[user.user_id] = why
            elif what == "unchanged":
                unchanged.append(user.user_id)
            elif user.user_id in self.refuse:
                failed[user.user_id] = self.refuse[user.user_id]
            else:
                self.items[user.user_id] = item
                rewritten.append(user.user_id)
        return RewriteOutcome(tuple(rewritten), tuple(unchanged), kept, failed)

    async def read_item(self, user_id: UserId) -> Item | None:
        item = self.items.get(user_id)
        return copy.deepcopy(item) if item is not None else None

    async def count_users(self) -> int:
        return len(self.items)

    async def check_ready(self) -> None:
        return None


class _InMemoryHold(UsersHold):
    def __init__(
        self, state: InMemoryMigrationState, inherited: frozenset[UserId], removals: frozenset[UserId]
    ) -> None:
        self._state = state
        self.inherited = inherited
        self.inherited_removals = removals
        self.intended: set[UserId] = set(inherited)
        self.removing: set[UserId] = set(removals)
        self.settled = False

    async def intend(self, user_ids: Collection[UserId]) -> None:
        self.intended.update(user_ids)

    async def intend_removal(self, user_ids: Collection[UserId]) -> None:
        self.removing.update(user_ids)

    async def apply(self, settlement: Settlement) -> None:
        self._state.count(settlement.landed)
        self._state.uncount(settlement.removed)
        for user_id in settlement.succeeded:
            self._state.failed.pop(user_id, None)
        self._state.failed.update({user_id: tuple(sorted(codes)) for user_id, codes in settlement.failed.items()})
        self._state.unsettled.update(settlement.unsure)
        self._state.unsettled_removals.update(settlement.unsure_removed)
        self.settled = True


def _taken_within(user_ids: set[UserId], lowest: UserId, highest: UserId) -> set[UserId]:
    """The ids of lowest..highest, taken out of `user_ids`."""
    inside = ids_within(user_ids, lowest, highest)
    user_ids -= inside
    return inside


class InMemoryMigrationState(MigrationState):
    """Counters held in memory; holds are range locks within this process."""

    def __init__(self) -> None:
        self._progress = MigrationProgress()
        self._holds = UserRangeLocks()
        # Ids whose writes (deletes) were never settled (their holder failed): the next holder looks.
        self.unsettled: set[UserId] = set()
        self.unsettled_removals: set[UserId] = set()
        # Users whose latest attempt failed, with its reason codes.
        self.failed: dict[UserId, tuple[str, ...]] = {}
        self._sync_pass_recorded = 0  # the latest pass of `sync --workers` recorded

    def count(self, user_ids: Collection[UserId]) -> None:
        """Count these users as migrated (used by holds when they settle)."""
        if not user_ids:
            return
        last = self._progress.last_migrated_user_id
        highest = max(user_ids)
        self._progress = attrs.evolve(
            self._progress,
            migrated_users=self._progress.migrated_users + len(user_ids),
            last_migrated_user_id=highest if last is None else max(last, highest),
        )

    def uncount(self, user_ids: Collection[UserId]) -> None:
        """Take these users off the count (their items were deleted)."""
        remaining = max(self._progress.migrated_users - len(user_ids), 0)
        self._progress = attrs.evolve(self._progress, migrated_users=remaining)

    @asynccontextmanager
    async def _hold(self, lowest: UserId, highest: UserId) -> AsyncIterator[UsersHold]:
        async with self._holds.hold(lowest, highest):
            # Only the ids of the range, as the DynamoDB state (`adapters.dynamodb.holds._within`).
            inherited = frozenset(_taken_within(self.unsettled, lowest, highest))
            removals = frozenset(_taken_within(self.unsettled_removals, lowest, highest))
            hold = _InMemoryHold(self, inherited, removals)
            try:
                yield hold
            finally:
                if not hold.settled:
                    self.unsettled.update(hold.intended)
                    self.unsettled_removals.update(hold.removing)

    def hold_users(
        self, lowest: UserId, highest: UserId, intend_if_untouched: Collection[UserId] = ()
    ) -> AbstractAsyncContextManager[UsersHold]:
        return self._hold(lowest, highest)

    async def record_checkpoint(self, resume_from_user_id: UserId) -> None:
        self._progress = attrs.evolve(self._progress, resume_from_user_id=resume_from_user_id)

    async def record_change_cursor(self, cursor: ChangeCursor, applied: int = 0) -> None:
        applied_so_far = self._progress.changes_applied + applied
        self._progress = attrs.evolve(self._progress, change_cursor=cursor, changes_applied=applied_so_far)

    async def record_sync_pass(self, sync_pass: int, cursor: ChangeCursor, applied: int) -> bool:
        if sync_pass <= self._sync_pass_recorded:
            return False
        self._sync_pass_recorded = sync_pass
        await self.record_change_cursor(cursor, applied)
        return True

    async def read_progress(self) -> MigrationProgress:
        return attrs.evolve(self._progress, failed_users=len(self.failed))

    async def failing_users(self) -> dict[UserId, tuple[str, ...]]:
        return dict(sorted(self.failed.items()))

    async def check_ready(self) -> None:
        return None
