"""A settlement's parts: what a hold over several segments (or over an earlier version's leftovers)
settles in each."""

import pytest

from user_migration.ports.migration_state import Settlement


def test_split_gives_each_part_its_own_ids_of_every_kind() -> None:
    settlement = Settlement(
        landed=[1, 12], unsure=[2], removed=[13], unsure_removed=[3], failed={14: ["missing_email"]}, succeeded=[4]
    )
    parts = settlement.split(lambda user_id: user_id // 10, [0, 1, 2])
    assert parts[0] == Settlement(landed=[1], unsure=[2], unsure_removed=[3], succeeded=[4])
    assert parts[1] == Settlement(landed=[12], removed=[13], failed={14: ("missing_email",)})
    assert parts[2] == Settlement()


def test_an_id_of_no_part_is_refused_not_dropped() -> None:
    with pytest.raises(ValueError, match="user 25"):
        Settlement(landed=[1, 25]).split(lambda user_id: user_id // 10, [0, 1])


def test_only_keeps_the_accepted_ids_of_every_kind() -> None:
    settlement = Settlement(landed=[1, 2], unsure=[3, 4], failed={5: ["write_failed"], 6: ["a", "b"]}, succeeded=[2])
    evens = settlement.only(lambda user_id: user_id % 2 == 0)
    assert evens == Settlement(landed=[2], unsure=[4], failed={6: ("a", "b")}, succeeded=[2])
