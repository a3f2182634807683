"""A segment lease's attributes on its segment's item, and the conditional write that changes them:
sent alone by `adapters.dynamodb.leases`, or inside a hold's settle of the same item by
`adapters.dynamodb.holds` (the segment's done mark with its last page's settle)."""

from __future__ import annotations

from typing import Any

import attrs

from user_migration.adapters.dynamodb.codec import decode_key, key_value
from user_migration.domain.parallel.segments import Segment, SegmentLease


@attrs.frozen
class LeaseNames:
    """The attributes that hold one kind of lease on the segments' items, and the plan item's
    attribute with that kind's run number: the migration's runs (`lease_*`, `run`), verify's passes
    (`verify_lease_*`, `verify_run`) and `sync --workers`' passes (`sync_lease_*`, `sync_run`) keep
    leases of their own on the same segments."""

    prefix: str = "lease_"
    run_attribute: str = "run"

    def __getattr__(self, name: str) -> str:
        # owner, counter, checkpoint, done, takes, steals, run: each the prefix and the name.
        if name.startswith("_"):
            raise AttributeError(name)
        return self.prefix + name

    @property
    def fields(self) -> str:
        return ", ".join(self.prefix + name for name in ("run", "owner", "counter", "checkpoint", "done"))


MIGRATION_LEASES = LeaseNames()
VERIFY_LEASES = LeaseNames("verify_lease_", "verify_run")
SYNC_LEASES = LeaseNames("sync_lease_", "sync_run")


def lease_in(
    segment: Segment, run: int, item: dict[str, Any] | None, names: LeaseNames = MIGRATION_LEASES
) -> SegmentLease:
    """The lease of run `run` on `segment` that its item (as read) holds."""
    item = item or {}
    counter = int(item[names.counter]["N"]) if names.counter in item else 0
    if names.run not in item or int(item[names.run]["N"]) != run:
        return SegmentLease(segment, run, None, counter)  # not worked on in this run yet
    return SegmentLease(
        segment,
        run,
        item[names.owner]["S"] if names.owner in item else None,
        counter,
        decode_key(item[names.checkpoint]) if names.checkpoint in item else segment.lowest,
        bool(item.get(names.done, {}).get("BOOL", False)),
    )


@attrs.frozen
class LeaseWrite:
    """The parts of a conditional `UpdateItem` that moves a segment's lease from `seen` to `wanted`
    (see `DynamoDbSegmentLeases._change`): alone, or inside a hold's settle of the same item
    (`adapters.dynamodb.holds.ProgressLedger.settle`), whose own parts use none of its names."""

    sets: tuple[str, ...]
    removes: tuple[str, ...]
    adds: tuple[str, ...]
    condition: str
    values: dict[str, Any]

    def update(self) -> str:
        update = "SET " + ", ".join(self.sets)
        if self.removes:
            update += " REMOVE " + ", ".join(self.removes)
        if self.adds:
            update += " ADD " + ", ".join(self.adds)
        return update


def lease_write(
    seen: SegmentLease,
    wanted: SegmentLease,
    owned: bool,
    stolen: bool | None = None,
    names: LeaseNames = MIGRATION_LEASES,
) -> LeaseWrite:
    """The write of `wanted` over `seen`, conditional on the counter seen (and, `owned`, on
    `seen.owner` owning it in `seen.run`); a take (`stolen` not None) adds to the tallies."""
    values: dict[str, Any] = {
        ":lease_next": {"N": str(wanted.counter)},
        ":run": {"N": str(wanted.run)},
        ":checkpoint": key_value(wanted.checkpoint),
        ":done": {"BOOL": wanted.done},
    }
    sets = [
        f"{names.counter} = :lease_next",
        f"{names.run} = :run",
        f"{names.checkpoint} = :checkpoint",
        f"{names.done} = :done",
    ]
    removes: list[str] = []
    if wanted.owner is not None:
        sets.append(f"{names.owner} = :owner")
        values[":owner"] = {"S": wanted.owner}
    else:
        removes.append(names.owner)
    adds: list[str] = []
    if stolen is not None:
        adds += [f"{names.takes} :one", f"{names.steals} :stolen"]
        values[":one"] = {"N": "1"}
        values[":stolen"] = {"N": "1" if stolen else "0"}
    if seen.counter == 0:
        condition = f"attribute_not_exists({names.counter})"
    else:
        condition = f"{names.counter} = :seen"
        values[":seen"] = {"N": str(seen.counter)}
    if owned:
        condition += f" AND {names.owner} = :me AND {names.run} = :run"
        values[":me"] = {"S": seen.owner or ""}
    return LeaseWrite(tuple(sets), tuple(removes), tuple(adds), condition, values)
