"""The contract of `VerifyResults`, for the in-memory and the DynamoDB adapter alike: a segment's
result is kept per pass, and only while its worker still holds the segment's lease."""

from __future__ import annotations

from user_migration.domain.verify.differences import VerifyCounts

FOUND = VerifyCounts(checked=40, matching=38, missing=1, extra=1)


async def test_a_result_is_kept_for_its_pass_and_replaced_by_a_later_one(make_verify_pass):
    leases, results = await make_verify_pass()
    first = await leases.take((await leases.leases())[1], "worker-a")
    assert first is not None
    assert await results.record(first, FOUND)
    assert await results.read(1) == {1: FOUND}
    assert await results.read(2) == {}
    assert await leases.restart(1) == 2
    again = await leases.take((await leases.leases())[1], "worker-b")
    assert again is not None
    clean = VerifyCounts(checked=40, matching=40)
    assert await results.record(again, clean)
    assert (await results.read(1), await results.read(2)) == ({}, {1: clean})


async def test_a_worker_whose_lease_was_taken_records_nothing(make_verify_pass):
    leases, results = await make_verify_pass()
    mine = await leases.take((await leases.leases())[0], "slow-worker")
    assert mine is not None
    theirs = await leases.take(mine, "other-worker")  # it expired, and another worker took it
    assert theirs is not None
    assert not await results.record(mine, FOUND)
    assert await results.read(1) == {}
    assert await results.record(theirs, FOUND)
    assert await results.read(1) == {0: FOUND}
