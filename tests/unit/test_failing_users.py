"""The failing users a segment's item lists: exact while they fit, an upper bound past that."""

from user_migration.adapters.dynamodb.holds import FAILED_LISTED_BYTES, failing_users
from user_migration.adapters.dynamodb.id_ranges import encode_ids

SPARSE = [10**18 + 7919 * n for n in range(10_000)]  # 19-digit ids, none next to another


def test_while_the_list_fits_it_is_exact():
    listed, unlisted = failing_users({1, 2, 3}, 0, failed=[7], succeeded=[2])
    assert (listed, unlisted) == ({1, 3, 7}, 0)


def test_runs_of_ids_fit_in_any_number():
    listed, unlisted = failing_users(set(), 0, failed=range(1, 1_000_001), succeeded=[])
    assert (len(listed), unlisted) == (1_000_000, 0)


def test_past_the_limit_the_list_only_shrinks_and_the_rest_is_counted():
    first, unlisted = failing_users(set(), 0, failed=SPARSE[:3_000], succeeded=[])
    assert (len(first), unlisted) == (3_000, 0)
    listed, unlisted = failing_users(first, 0, failed=SPARSE[3_000:6_000], succeeded=[])
    # The lowest ids that fit stay listed, the others are counted.
    assert len(encode_ids(listed)) <= FAILED_LISTED_BYTES < len(encode_ids(SPARSE[: len(listed) + 1]))
    # Measured as stored with one reason code each (the ids twice): half as many fit.
    twice, _ = failing_users(first, 0, SPARSE[3_000:6_000], [], lambda ids: 2 * len(encode_ids(ids)))
    assert len(listed) // 2 - 1 <= len(twice) <= len(listed) // 2 + 1
    assert listed == set(SPARSE[: len(listed)])
    assert len(listed) + unlisted == 6_000
    # A listed user that succeeds leaves the list; an unlisted one cannot be told apart, and stays counted.
    listed, unlisted = failing_users(listed, unlisted, failed=[], succeeded=[SPARSE[0], SPARSE[5_999]])
    assert len(listed) + unlisted == 5_999
    # Once unlisted users exist, a new failure is counted, not listed, even with room in the list.
    before = len(listed)
    listed, unlisted = failing_users(listed, unlisted, failed=[5], succeeded=[])
    assert (len(listed), len(listed) + unlisted, 5 in listed) == (before, 6_000, False)
