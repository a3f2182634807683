"""The dashboard's data: the pace, the segments as cells, the failing users by reason."""

from __future__ import annotations

from user_migration.domain.migrate.request import MAX_USER_ID
from user_migration.domain.observe.overview import failures_view, segment_cells, verify_pass_view
from user_migration.domain.observe.progress_rate import Pace, ProgressRate
from user_migration.domain.parallel.segments import SegmentLease, SegmentPlan
from user_migration.domain.verify.differences import VerifyCounts


def test_the_pace_is_measured_over_the_window_and_gives_the_time_left():
    rate = ProgressRate(window_seconds=10.0)
    assert rate.observe(100.0, 0, 1000) == Pace(None, 0.0, None)
    assert rate.observe(100.5, 50, 950) == Pace(None, 0.5, None)  # too close together to tell
    assert rate.observe(102.0, 200, 800) == Pace(100.0, 2.0, 8)
    # Past the window the oldest readings go, the newest one older than the window stays as the far end.
    rate.observe(108.0, 800, 500)
    assert rate.observe(115.0, 1500, 300) == Pace(100.0, 13.0, 3)  # from the reading at 102


def test_no_time_left_is_told_while_nothing_moves():
    rate = ProgressRate()
    rate.observe(0.0, 10, 90)
    assert rate.observe(5.0, 10, 90) == Pace(0.0, 5.0, None)
    assert rate.observe(10.0, 5, 95) == Pace(-0.5, 10.0, None)  # items deleted (sync)


def test_cells_carry_state_owner_progress_and_the_failing_users_of_each_segment():
    plan = SegmentPlan((0, 100, 200))
    leases = [
        SegmentLease(plan[0], run=1, done=True, checkpoint=100),
        SegmentLease(plan[1], run=1, owner="w1", checkpoint=150),
        SegmentLease(plan[2], run=1),
    ]
    cells = segment_cells(leases, {5: ("missing_email",), 250: ("write_failed",), 260: ("write_failed",)})
    assert [(cell.state, cell.lease, cell.owner, cell.progress, cell.failing_users) for cell in cells] == [
        ("failing", "done", None, 1.0, 1),
        ("leased", "leased", "w1", 0.5, 0),
        ("failing", "pending", None, None, 2),  # the last segment is open up to the largest id
    ]
    assert cells[2].highest == MAX_USER_ID
    assert segment_cells([], {}) == ()


def test_failing_users_by_reason_the_most_frequent_first_with_the_lowest_ids():
    failing = {i: ("write_failed",) for i in range(10, 17)} | {3: ("invalid_username", "missing_email"), 4: ("x",)}
    view = failures_view(failing)
    assert view.failing_users == 9
    assert [(reason.code, reason.users, reason.example_user_ids) for reason in view.by_reason] == [
        ("write_failed", 7, (10, 11, 12, 13, 14)),
        ("invalid_username", 1, (3,)),
        ("missing_email", 1, (3,)),
        ("x", 1, (4,)),
    ]


def test_a_verify_pass_shows_its_segments_verified_and_their_counts_together():
    assert verify_pass_view(1, 3, {}) is None  # nothing recorded of the first pass yet
    started = verify_pass_view(2, 3, {})
    assert started is not None
    assert (started.segments_verified, started.finished, started.counts.checked) == (
        0,
        False,
        0,
    )
    half = verify_pass_view(1, 2, {0: VerifyCounts(checked=5, matching=4, missing=1)})
    assert half is not None
    assert (half.segments_verified, half.finished) == (1, False)
    whole = verify_pass_view(
        1, 2, {0: VerifyCounts(checked=5, matching=4, missing=1), 1: VerifyCounts(checked=3, matching=3)}
    )
    assert whole is not None
    assert whole.finished
    assert whole.counts == VerifyCounts(checked=8, matching=7, missing=1)
