"""The contract of `SyncPasses`, for the in-memory and the DynamoDB adapter alike: every worker
of a pass gets the cursors its first worker began it with, and a segment's count is kept per
pass, only while its worker still holds the segment's lease."""

from __future__ import annotations

from datetime import UTC, datetime

from user_migration.domain.model import ChangeCursor
from user_migration.ports.sync_passes import SyncPass

TAKEN = datetime(2026, 12, 3, 10, 0, 0, 250000, tzinfo=UTC)


def proposal(number: int, since: str | None, position: str) -> SyncPass:
    return SyncPass(number, since, ChangeCursor(position, TAKEN))


async def test_the_first_worker_begins_a_pass_and_the_others_get_its_cursors(make_sync_pass):
    _, passes = await make_sync_pass()
    first = proposal(1, None, "pg-xmin:100")
    assert await passes.begin(first) == first  # a full pass: no cursor to go on from
    assert await passes.begin(proposal(1, None, "pg-xmin:130")) == first
    second = proposal(2, "pg-xmin:100", "pg-xmin:180")
    assert await passes.begin(second) == second
    assert await passes.begin(proposal(2, "pg-xmin:100", "pg-xmin:199")) == second
    # A worker still on pass 1 learns that pass 2 began meanwhile.
    assert await passes.begin(proposal(1, None, "pg-xmin:200")) == second


async def test_a_segment_count_is_kept_for_its_pass_and_only_under_its_lease(make_sync_pass):
    leases, passes = await make_sync_pass()
    mine = await leases.take((await leases.leases())[2], "slow-worker")
    assert mine is not None
    assert await passes.record(mine, 7)
    assert await passes.read(1) == {2: 7}
    theirs = await leases.take(mine, "other-worker")  # it expired, and another worker took it
    assert theirs is not None
    assert not await passes.record(mine, 9)
    assert await passes.record(theirs, 5)
    assert await passes.read(1) == {2: 5}
    assert await leases.restart(1) == 2
    assert await passes.read(2) == {}
    again = await leases.take((await leases.leases())[0], "worker-c")
    assert again is not None
    assert await passes.record(again, 0)
    assert (await passes.read(1), await passes.read(2)) == ({2: 5}, {0: 0})
