"""Holds on id ranges across processes, and the exact accounting of what is written under them.

Everything lives in one item of the state table (each segment of the id space has its own, see
`dynamodb_state`), changed only by conditional writes on its `version` (optimistic concurrency),
so every step is either applied once or not at all:

- take: add `holds.<id> = {lo, hi, expires, writing}` if no live hold overlaps lo..hi.
  Overlapping holds that expired (their process died) are dropped, and the ids of lo..hi they
  were writing — with the `unsettled` ids of lo..hi — pass to the new hold as `inherited`, for it
  to look at and count; their other ids are left in `unsettled` (see `_within`). Expired holds of
  other ranges stay for their holder to settle (it may only be slow).
- intend: append the ids about to be written to `holds.<id>.writing` (and renew the lease).
- intend a removal: append the ids whose items are about to be deleted to `holds.<id>.removing`;
  they pass on like `writing` (as `unsettled_removals`, inherited as `inherited_removals`).
- settle: add what landed to `migrated_users` and take off what was removed, raise
  `last_migrated_user_id`, put unsure ids in `unsettled` (`unsettled_removals`), and remove the
  hold, in one conditional write. If botocore re-sends it after a
  lost response, the re-sent one fails its condition, the item is read again, and the hold is
  gone: it was applied, and nothing is counted twice.

Id sets (`writing`, `unsettled`) are stored compactly (`adapters.dynamodb.id_ranges`: a string of
runs for integer ids, a binary value for uuid and text ids), and each step starts from the item that
the previous write of this process returned, so a page costs three small conditional writes and no
reads while no other process touches the item.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import attrs
from botocore.exceptions import ClientError

from user_migration.adapters.dynamodb.codec import decode_key, key_value
from user_migration.adapters.dynamodb.errors import error_code, target_errors
from user_migration.adapters.dynamodb.id_ranges import decode_ids, encode_ids
from user_migration.adapters.dynamodb.lease_writes import lease_in, lease_write
from user_migration.adapters.dynamodb.plan import segment_key
from user_migration.adapters.dynamodb.tables import STATE_KEY_ATTRIBUTE
from user_migration.domain.errors import TargetUnavailable
from user_migration.domain.keys import UserId, ids_within
from user_migration.ports.migration_state import UNRECORDED_REASON, Settlement, UsersHold
from user_migration.ports.segment_leases import LeaseChange

PROGRESS_KEY = {STATE_KEY_ATTRIBUTE: {"S": "progress"}}
T = TypeVar("T")


def stored_ids(value: dict[str, Any] | None) -> set[UserId]:
    if value is None:
        return set()
    if "S" in value:
        return decode_ids(value["S"])
    if "B" in value:  # uuid and text ids
        return decode_ids(value["B"])
    # Written by versions before the compact form: a list of numbers.
    return {decode_key(element) for element in value.get("L", [])}


# The failing users a segment's item lists, at most (the compact text of their ids in `failed` and
# under each of their reason codes in `failed_reasons`): about 1,500 sparse 64-bit ids with one
# code each, any number in runs. The item's 400 KB must also hold the live holds' intents.
FAILED_LISTED_BYTES = 64_000


def failing_users(
    listed: set[UserId],
    unlisted: int,
    failed: Collection[UserId],
    succeeded: Collection[UserId],
    size_of: Callable[[set[UserId]], int] = lambda ids: len(encode_ids(ids)),
) -> tuple[set[UserId], int]:
    """The failing users a segment lists after a settle, and how many more fail unlisted.

    Exact while the list (as `size_of` measures what is stored of it) fits `FAILED_LISTED_BYTES`.
    Once it would not, the list only shrinks (its users that succeed leave it) and every other
    failing user is counted as unlisted: an unlisted user that later succeeds cannot be told from
    one that never failed, and one that fails again is counted again, so the count becomes an upper
    bound instead of making the item too large to write (which would stop every later page with a
    failure in the segment)."""
    failing = (listed - set(succeeded)) | set(failed)
    if unlisted:
        kept = failing & listed
    elif size_of(failing) <= FAILED_LISTED_BYTES:
        return failing, 0
    else:
        kept = _lowest_that_fit(sorted(failing), size_of)
    return kept, unlisted + len(failing - kept)


def _lowest_that_fit(ordered: list[UserId], size_of: Callable[[set[UserId]], int]) -> set[UserId]:
    """The longest run of the lowest of `ordered` whose stored size fits `FAILED_LISTED_BYTES`."""
    fits, too_many = 0, len(ordered)
    while too_many - fits > 1:
        middle = (fits + too_many) // 2
        if size_of(set(ordered[:middle])) <= FAILED_LISTED_BYTES:
            fits = middle
        else:
            too_many = middle
    return set(ordered[:fits])


def _id_set(user_ids: Collection[UserId]) -> dict[str, Any]:
    encoded = encode_ids(user_ids)
    return {"B": encoded} if isinstance(encoded, bytes) else {"S": encoded}


def _within(user_ids: set[UserId], lowest: UserId, highest: UserId) -> tuple[set[UserId], set[UserId]]:
    """The ids of lowest..highest, which a hold on that range inherits, and the others, which stay
    unsettled.

    A hold inherits only ids it holds: no other holder can write them until it settles, so whether
    they landed is looked at once, by it, after its own writes. An id outside its range may be held
    by another holder at that very moment (one that took its hold before the id was left unsettled),
    which may write and count it; passed on again by this hold (on an abandon, or when its lease
    expires), the id was then counted twice by whoever next inherited it and found it stored: a
    whole page over, when a page re-read after a lease was taken over inherited the next page's
    intent and failed after that page was written (the `migrated_users` over-count with several
    workers)."""
    inside = ids_within(user_ids, lowest, highest)
    return inside, user_ids - inside


# inherited, inherited removals, untouched, intended by the take
_Taken = tuple[frozenset[UserId], frozenset[UserId], bool, frozenset[UserId]]


def _versioned(item: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """The item (empty when there is none yet) and its version."""
    return item, int(item["version"]["N"]) if "version" in item else 0


def _retrieved(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()


class _Conflict(Exception):
    """The item changed since it was read: read it again."""


@attrs.define(eq=False, slots=False)
class _DynamoDbHold(UsersHold):
    _ledger: ProgressLedger
    hold_id: str
    inherited: frozenset[UserId]
    inherited_removals: frozenset[UserId]
    untouched: bool = False
    intended_by_take: frozenset[UserId] = frozenset()
    settled: bool = attrs.field(init=False, default=False)

    async def intend(self, user_ids: Collection[UserId]) -> None:
        await self._ledger.intend(self.hold_id, user_ids)

    async def intend_removal(self, user_ids: Collection[UserId]) -> None:
        await self._ledger.intend(self.hold_id, user_ids, field="removing")

    async def apply(self, settlement: Settlement) -> None:
        await self._ledger.settle(self.hold_id, settlement)
        self.settled = True

    async def apply_with_lease(self, settlement: Settlement, change: LeaseChange) -> None:
        await self._ledger.settle(self.hold_id, settlement, change)
        self.settled = True


def failing_of(item: dict[str, Any]) -> dict[UserId, tuple[str, ...]]:
    """The failing users an item lists, with their reason codes (`failed_reasons`: code -> ids;
    an id in `failed` under no code was noted by a version that kept none)."""
    codes: dict[UserId, list[str]] = {user_id: [] for user_id in stored_ids(item.get("failed"))}
    for code, ids in sorted(item.get("failed_reasons", {}).get("M", {}).items()):
        for user_id in stored_ids(ids):
            codes.setdefault(user_id, []).append(code)
    return {user_id: tuple(found) or (UNRECORDED_REASON,) for user_id, found in sorted(codes.items())}


def _codes_after(item: dict[str, Any], settlement: Settlement) -> dict[UserId, tuple[str, ...]]:
    """The codes of every listed failing user that stays failing, and of every user failing now
    (a user failing again gets its new codes)."""
    kept = {
        user_id: codes
        for user_id, codes in failing_of(item).items()
        if user_id not in settlement.succeeded and user_id not in settlement.failed and UNRECORDED_REASON not in codes
    }
    return {**kept, **settlement.failed}


def _by_code(codes: dict[UserId, tuple[str, ...]], listed: set[UserId]) -> dict[str, set[UserId]]:
    by_code: dict[str, set[UserId]] = {}
    for user_id in listed:
        for code in codes.get(user_id, ()):
            by_code.setdefault(code, set()).add(user_id)
    return by_code


class ProgressLedger:
    """One item of the state table (a segment's): its counters, its failing users and the holds
    on id ranges within it."""

    def __init__(
        self,
        client: Any,
        table: str,
        lease_seconds: float = 60.0,
        wait_seconds: float = 90.0,
        key: dict[str, Any] | None = None,
        first_item: Callable[[], dict[str, Any] | None] | None = None,
    ) -> None:
        self._client = client
        # The item as this process last saw it before its first step (a lease take's answer), if any.
        self._first_item = first_item
        self._table = table
        self._key = key if key is not None else PROGRESS_KEY
        self._lease_seconds = lease_seconds
        self._wait_seconds = wait_seconds
        # One read-modify-write at a time from this process: the item is then contended only by
        # other processes, and conflicts (retries) stay rare.
        self._one_at_a_time = asyncio.Lock()
        # The item as this process's last write left it (DynamoDB's own answer, ALL_NEW), so the
        # next step needs no read first. Every write is conditional on the version: a snapshot
        # that another process made stale fails its condition, and the item is read again.
        self._snapshot: tuple[dict[str, Any], int] | None = None
        # Whether every write to the item, ever, was this process's, made from its own snapshot:
        # true while the item had no `version` (no hold ever) when this process first read it and
        # no step of this process has had to read it again since (another process's write, or an
        # answer lost). Then the ranges this process held (`_held`) are the only ones ever held.
        self._only_ours: bool | None = None
        self._held: list[tuple[UserId, UserId]] = []

    async def read(self) -> tuple[dict[str, Any], int]:
        """The item (empty when there is none yet) and its version."""
        async with target_errors("reading progress", table=self._table):
            response = await self._client.get_item(TableName=self._table, Key=self._key, ConsistentRead=True)
        return _versioned(response.get("Item", {}))

    async def _write(
        self,
        version: int,
        update: str,
        values: dict[str, Any],
        names: dict[str, str] | None = None,
        also: str | None = None,
    ) -> None:
        """Apply `update` only if the item is still at `version` (and `also` holds); raise
        `_Conflict` otherwise."""
        condition = "attribute_not_exists(version)" if version == 0 else "version = :version"
        if also is not None:
            condition = f"{condition} AND {also}"
        values = {**values, ":next": {"N": str(version + 1)}}
        if version:
            values[":version"] = {"N": str(version)}
        arguments: dict[str, Any] = {
            "TableName": self._table,
            "Key": self._key,
            "UpdateExpression": update,
            "ConditionExpression": condition,
            "ExpressionAttributeValues": values,
            "ReturnValues": "ALL_NEW",
        }
        if names:
            arguments["ExpressionAttributeNames"] = names
        async with target_errors("recording progress", table=self._table):
            try:
                response = await self._client.update_item(**arguments)
            except ClientError as error:
                if error_code(error) == "ConditionalCheckFailedException":
                    raise _Conflict from error
                raise
        applied: dict[str, Any] = response["Attributes"]
        self._snapshot = applied, int(applied["version"]["N"])

    async def _change(self, step: Callable[[dict[str, Any], int], Awaitable[T]]) -> T:
        """Apply `step` to the item as it stands (this process's snapshot of it, or read), again
        and again until no other process changed the item in between."""
        while True:
            try:
                async with self._one_at_a_time:
                    snapshot, self._snapshot = self._snapshot, None  # set again only by a write that applied
                    if snapshot is None:
                        first = self._first_item() if self._only_ours is None and self._first_item else None
                        snapshot = _versioned(first) if first is not None else await self.read()
                        self._only_ours = self._only_ours is None and snapshot[1] == 0
                    return await step(*snapshot)
            except _Conflict:
                await asyncio.sleep(random.uniform(0.005, 0.05))

    def _entry(self, item: dict[str, Any], hold_id: str) -> dict[str, Any] | None:
        entry: dict[str, Any] | None = item.get("holds", {}).get("M", {}).get(hold_id)
        return entry

    async def take(
        self, lowest: UserId, highest: UserId, intend_if_untouched: Collection[UserId] = ()
    ) -> _DynamoDbHold:
        """Wait until no live hold overlaps lowest..highest, then hold it; an untouched hold's
        `writing` starts with `intend_if_untouched` (one write for the take and the intent)."""
        hold_id = uuid.uuid4().hex

        async def try_take(item: dict[str, Any], version: int) -> _Taken | None:
            now = time.time()
            # What was left unsettled stays where it is, but for the ids of lowest..highest (see `_within`).
            unsettled = stored_ids(item.get("unsettled"))
            unsettled_removals = stored_ids(item.get("unsettled_removals"))
            live: dict[str, Any] = {}
            for other, entry in item.get("holds", {}).get("M", {}).items():
                fields = entry["M"]
                held_low, held_high = decode_key(fields["lo"]), decode_key(fields["hi"])
                if lowest <= held_high and held_low <= highest:  # type: ignore[operator]  # ids of one kind
                    if float(fields["expires"]["N"]) >= now:
                        return None
                    # Its holder died (or stalled past its lease): its intent is now ours to settle,
                    # the part of it within lowest..highest; the rest is left unsettled.
                    unsettled |= stored_ids(fields.get("writing"))
                    unsettled_removals |= stored_ids(fields.get("removing"))
                    continue
                # A hold of other users stays, expired or not: its holder, if alive, still
                # settles it, and whoever next holds those users inherits it otherwise.
                live[other] = entry
            inherited, unsettled = _within(unsettled, lowest, highest)
            inherited_removals, unsettled_removals = _within(unsettled_removals, lowest, highest)
            untouched = self._untouched(lowest, highest) and not inherited and not inherited_removals
            intended = frozenset(intend_if_untouched) if untouched else frozenset()
            live[hold_id] = {
                "M": {
                    "lo": key_value(lowest),
                    "hi": key_value(highest),
                    "expires": {"N": f"{now + self._lease_seconds:.3f}"},
                    "writing": _id_set(inherited | intended),
                    "removing": _id_set(inherited_removals),
                }
            }
            left = {"unsettled": unsettled, "unsettled_removals": unsettled_removals}
            kept = [name for name, ids in left.items() if ids]
            update = "SET holds = :holds, version = :next" + "".join(f", {name} = :{name}" for name in kept)
            removed = [name for name in left if name not in kept]
            if removed:
                update += " REMOVE " + ", ".join(removed)
            values = {":holds": {"M": live}, **{f":{name}": _id_set(left[name]) for name in kept}}
            await self._write(version, update, values)
            self._held.append((lowest, highest))
            return frozenset(inherited), frozenset(inherited_removals), untouched, intended

        deadline = time.monotonic() + self._wait_seconds
        pause = 0.02
        while (taken := await self._change(try_take)) is None:
            if time.monotonic() > deadline:
                raise TargetUnavailable(
                    f"users {lowest}..{highest} stayed held by another process for {self._wait_seconds:.0f}s"
                )
            await asyncio.sleep(random.uniform(pause / 2, pause))
            pause = min(pause * 2, 1.0)
        return _DynamoDbHold(self, hold_id, *taken)

    def _untouched(self, lowest: UserId, highest: UserId) -> bool:
        """Whether no user of lowest..highest was ever written under a hold on this item: every
        hold on it, ever, was this process's (see `_only_ours`), and none of them on these users."""
        return bool(self._only_ours) and not any(
            lowest <= held_high and held_low <= highest  # type: ignore[operator]  # ids of one kind
            for held_low, held_high in self._held
        )

    async def intend(self, hold_id: str, user_ids: Collection[UserId], field: str = "writing") -> None:
        """Record the ids about to be written (`removing`: deleted), and renew the lease."""

        async def try_intend(item: dict[str, Any], version: int) -> None:
            entry = self._entry(item, hold_id)
            if entry is None:
                raise TargetUnavailable("the hold on these users expired before writing; nothing was written")
            ids = stored_ids(entry["M"].get(field)) | set(user_ids)
            await self._write(
                version,
                "SET holds.#hold.#ids = :ids, holds.#hold.expires = :expires, version = :next",
                {":ids": _id_set(ids), ":expires": {"N": f"{time.time() + self._lease_seconds:.3f}"}},
                {"#hold": hold_id, "#ids": field},
            )

        await self._change(try_intend)

    async def settle(self, hold_id: str, settlement: Settlement, change: LeaseChange | None = None) -> None:
        """Count what landed (and uncount what was removed), note the failing users, and release
        the hold, exactly once; with `change`, a change of this segment's lease made in the same
        write, under both conditions (see `LeaseChange`)."""
        landed = settlement.landed
        lease = change if change is not None and segment_key(change.seen.segment.index) == self._key else None
        sent_with_lease = False  # a write carrying the lease change failed its condition once at least

        async def try_settle(item: dict[str, Any], version: int) -> None:
            nonlocal sent_with_lease
            if lease is not None and lease.made is None:
                # After a failed condition the item is as read since (or as this process's next
                # write left it), never older: a lease neither as seen nor as wanted was taken.
                found = lease_in(lease.seen.segment, lease.seen.run, item)
                if found == lease.wanted:
                    lease.made = True  # this very write, its answer lost and sent again
                elif sent_with_lease and found != lease.seen:
                    lease.made = False  # lost to another worker: the settle goes on alone
            if self._entry(item, hold_id) is None:
                # Either this settle was applied already (a re-sent request), or the lease expired
                # and the next holder inherited these ids: in both cases they are counted once.
                return
            last = item.get("last_migrated_user_id")
            highest = max([*landed, *([decode_key(last)] if last else [])], default=None)
            count = int(item.get("migrated_users", {"N": "0"})["N"]) + len(landed) - len(settlement.removed)
            codes = _codes_after(item, settlement)

            def listed_size(ids: set[UserId]) -> int:  # `failed` and `failed_reasons` as stored
                return len(encode_ids(ids)) + sum(len(encode_ids(each)) for each in _by_code(codes, ids).values())

            listed, unlisted = failing_users(
                stored_ids(item.get("failed")),
                int(item.get("failed_unlisted", {"N": "0"})["N"]),
                settlement.failed.keys(),
                settlement.succeeded,
                listed_size,
            )
            reasons = {"M": {code: _id_set(ids) for code, ids in sorted(_by_code(codes, listed).items())}}
            values: dict[str, Any] = {
                ":count": {"N": str(max(count, 0))},
                ":unsettled": _id_set(stored_ids(item.get("unsettled")) | settlement.unsure),
                ":unsettled_removals": _id_set(stored_ids(item.get("unsettled_removals")) | settlement.unsure_removed),
                ":failed": _id_set(listed),
                ":failed_unlisted": {"N": str(unlisted)},
                ":failed_count": {"N": str(len(listed) + unlisted)},
                ":failed_reasons": reasons,
            }
            update = (
                "SET migrated_users = :count, unsettled = :unsettled, "
                "unsettled_removals = :unsettled_removals, failed = :failed, failed_unlisted = :failed_unlisted, "
                "failed_count = :failed_count, failed_reasons = :failed_reasons, version = :next"
            )
            if highest is not None:
                values[":last"] = key_value(highest)
                update += ", last_migrated_user_id = :last"
            if lease is None or lease.made is not None:
                await self._write(version, update + " REMOVE holds.#hold", values, {"#hold": hold_id})
                return
            write = lease_write(lease.seen, lease.wanted, owned=True)
            update = ", ".join([update, *write.sets]) + " REMOVE " + ", ".join(["holds.#hold", *write.removes])
            sent_with_lease = True
            await self._write(version, update, {**values, **write.values}, {"#hold": hold_id}, write.condition)
            lease.made = True

        # Left None (the caller changes the lease alone) when the hold was found settled by its next
        # holder (this one stalled past it) while the lease was still as seen.
        await self._change(try_settle)

    async def abandon(self, hold_id: str) -> None:
        """Release a hold that did not settle: what it meant to write becomes `unsettled`."""

        async def try_abandon(item: dict[str, Any], version: int) -> None:
            entry = self._entry(item, hold_id)
            if entry is None:
                return
            unsettled = stored_ids(item.get("unsettled")) | stored_ids(entry["M"].get("writing"))
            removals = stored_ids(item.get("unsettled_removals")) | stored_ids(entry["M"].get("removing"))
            await self._write(
                version,
                "SET unsettled = :unsettled, unsettled_removals = :removals, version = :next REMOVE holds.#hold",
                {":unsettled": _id_set(unsettled), ":removals": _id_set(removals)},
                {"#hold": hold_id},
            )

        await self._change(try_abandon)

    @asynccontextmanager
    async def hold(
        self, lowest: UserId, highest: UserId, intend_if_untouched: Collection[UserId] = ()
    ) -> AsyncIterator[UsersHold]:
        """Hold lowest..highest until exit; without a settle, hand the intent on."""
        hold = await self.take(lowest, highest, intend_if_untouched)
        try:
            yield hold
        finally:
            if not hold.settled:
                # If DynamoDB cannot be reached now, the lease expires and the next holder inherits.
                abandoning = asyncio.ensure_future(self.abandon(hold.hold_id))
                # Its failure is expected and handled so (the lease expires): looked at even when this
                # task is cancelled while it waits, never an exception left unretrieved.
                abandoning.add_done_callback(_retrieved)
                with contextlib.suppress(Exception):
                    await asyncio.shield(abandoning)
