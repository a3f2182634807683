import attrs

from user_migration.domain.convert.rules import Reason
from user_migration.domain.counts import counts_added
from user_migration.domain.sync.poll import SyncSummary


@attrs.frozen
class _Tally:
    done: int
    label: str
    seconds: float
    left: int = 0


def test_integer_fields_are_added_and_the_others_are_the_later_ones():
    assert counts_added(_Tally(2, "a", 1.5, 7), _Tally(3, "b", 2.0, 1)) == _Tally(5, "b", 2.0, 8)


def test_fields_given_are_what_they_become_and_are_not_added():
    assert counts_added(_Tally(2, "a", 1.5, 7), _Tally(3, "b", 2.0, 1), left=1, seconds=3.5) == _Tally(5, "b", 3.5, 1)


def test_a_sync_pass_followed_by_another_adds_its_counts_and_keeps_the_later_verdicts():
    failures = {7: (Reason("write_failed", "throttled"),), 8: (Reason("invalid_email", "Invalid email format"),)}
    first = SyncSummary(10, 6, 1, 2, 1, failures, {}, 4.0, 1.0, passes=1)
    later = SyncSummary(5, 4, 0, 0, 1, {}, {9: "gone"}, None, 2.0, caught_up=True, same_version_written=2)
    total = first.then(later)
    assert (total.changes_seen, total.written, total.deleted, total.skipped_newer, total.unchanged) == (15, 10, 1, 2, 2)
    assert (total.passes, total.same_version_written, total.elapsed_seconds) == (2, 2, 3.0)
    # The failed write is tried again by the later pass, which did not fail it: only the invalid row stays.
    assert total.failures == {8: ("Invalid email format",)}
    assert (total.not_deleted, total.lag_seconds, total.caught_up) == ({9: "gone"}, 4.0, True)
