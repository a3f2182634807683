"""The one leased pass's counts and summary: how workers' leases add up, pass after pass and side by side."""

from __future__ import annotations

from user_migration.domain.parallel.leased_pass import LeaseCounts, LeasedPassSummary
from user_migration.domain.sync.poll import SyncSummary


def test_workers_of_one_pass_add_their_leases_and_keep_the_newest_remainder():
    first = LeaseCounts(segments_done=3, lease_takes=4, lease_steals=1, leases_lost=1, unfinished_segments=2)
    last = LeaseCounts(segments_done=5, lease_takes=5, lease_steals=0, leases_lost=0, unfinished_segments=0)
    assert LeaseCounts.added_up([first, last]) == LeaseCounts(8, 9, 1, 1, 0)
    assert LeaseCounts.added_up([]) == LeaseCounts()


def test_a_later_pass_adds_its_leases_and_tells_what_is_left():
    earlier = LeaseCounts(2, 2, 0, 1, 0)
    later = LeaseCounts(1, 3, 2, 0, 4)
    assert earlier.then(later) == LeaseCounts(3, 5, 2, 1, 4)


def test_a_worker_s_passes_follow_one_another_with_the_later_pass_s_number_and_whole_result():
    one = SyncSummary(3, 2, 0, 0, 1, {}, {}, lag_seconds=None, elapsed_seconds=1.0)
    two = SyncSummary(1, 1, 0, 0, 0, {}, {}, lag_seconds=0.5, elapsed_seconds=2.0)
    earlier = LeasedPassSummary("w1", 1, one, LeaseCounts(2, 2, 0, 0, 0), whole_pass=5)
    later = LeasedPassSummary("w1", 2, two, LeaseCounts(1, 1, 0, 0, 0), whole_pass=None)
    total = earlier.then(later)
    assert (total.worker, total.number, total.whole_pass) == ("w1", 2, None)
    assert (total.summary.changes_seen, total.summary.written) == (4, 3)
    assert (total.summary.passes, total.summary.elapsed_seconds) == (2, 3.0)
    assert total.leases == LeaseCounts(3, 3, 0, 0, 0)
