"""Workers of a verify pass on the in-memory adapters: together they find exactly what one verify
of the whole id space finds, each difference once, and a worker whose lease ran out reports nothing
of its segment (the next owner verifies it again)."""

from __future__ import annotations

import asyncio

from tests.unit.test_verification import EVERY_KIND, every_kind_of_difference
from user_migration.adapters.memory.leases import InMemorySegmentLeases
from user_migration.adapters.memory.verify_results import InMemoryVerifyResults
from user_migration.domain.parallel.leased_pass import LeasedPass
from user_migration.domain.parallel.verify_worker import VerifyWorker, is_clean
from user_migration.domain.verify.differences import Difference
from user_migration.domain.verify.request import VerifyRequest


async def pass_over(w, segments: int) -> InMemorySegmentLeases:
    async def propose():
        return await w.source.segment_boundaries(segments)

    leases = InMemorySegmentLeases(propose)
    assert len(await leases.plan()) == segments
    return leases


async def test_workers_of_one_pass_find_what_one_verify_finds_each_once():
    w = await every_kind_of_difference()
    _, alone = await w.verify(batch_size=4)
    leases = await pass_over(w, segments=4)
    results = InMemoryVerifyResults(leases)
    found: list[Difference] = []
    workers = [
        VerifyWorker(w.verification, results, LeasedPass(leases, worker=name, lease_seconds=1.0))
        for name in ("a", "b", "c")
    ]
    summaries = await asyncio.gather(
        *(worker.run(VerifyRequest(batch_size=3, on_difference=found.append)) for worker in workers)
    )
    assert sorted(found, key=lambda d: d.user_id) == sorted(EVERY_KIND, key=lambda d: d.user_id)
    total = summaries[0].summary.counts
    for other in summaries[1:]:
        total.include(other.summary.counts)
    assert total == alone
    assert sum(s.leases.segments_done for s in summaries) == 4
    assert all(s.leases.unfinished_segments == 0 for s in summaries)
    assert all(s.whole_pass == alone for s in summaries)  # each ended with the pass finished
    # The pass is finished: another worker verifies nothing, but tells the pass's verdict.
    again = await VerifyWorker(w.verification, results, LeasedPass(leases, worker="d")).run(VerifyRequest(batch_size=3))
    assert (again.summary.counts.checked, again.leases.segments_done) == (0, 0)
    assert (again.whole_pass, is_clean(again)) == (alone, False)
    restarted = await VerifyWorker(w.verification, results, LeasedPass(leases, worker="d")).run(
        VerifyRequest(batch_size=50), restart=True
    )
    assert (restarted.number, restarted.summary.counts) == (2, alone)


async def test_a_segment_whose_lease_ran_out_is_verified_again_and_reported_once():
    w = await every_kind_of_difference()
    _, alone = await w.verify(batch_size=4)
    leases = await pass_over(w, segments=2)
    results = InMemoryVerifyResults(leases)
    now = [0.0]
    worker = VerifyWorker(
        w.verification, results, LeasedPass(leases, worker="w", lease_seconds=10, clock=lambda: now[0])
    )
    original = w.verification.verify
    stalls = [1]

    async def verify_then_stall(*args, **kwargs):
        summary = await original(*args, **kwargs)
        if stalls:  # the first segment: the worker ran past its lease before marking it done
            stalls.pop()
            now[0] += 100
        return summary

    w.verification.verify = verify_then_stall  # type: ignore[method-assign]
    found: list[Difference] = []
    summary = await asyncio.wait_for(worker.run(VerifyRequest(batch_size=4, on_difference=found.append)), 10)
    assert (summary.leases.leases_lost, summary.leases.segments_done, summary.leases.unfinished_segments) == (1, 2, 0)
    # The lost segment's findings were dropped, and it was verified again: each difference once.
    assert sorted(found, key=lambda d: d.user_id) == sorted(EVERY_KIND, key=lambda d: d.user_id)
    assert summary.summary.counts == alone
    assert summary.whole_pass == alone  # the lost segment's dropped findings are not in the verdict
