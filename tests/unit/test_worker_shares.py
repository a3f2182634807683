"""The suite's order under pytest-xdist (`tests.worker_shares`): each worker's share starts with its
part of the slow tests, the others keep their collection order."""

from __future__ import annotations

import json
from pathlib import Path

import attrs

from tests.worker_shares import in_worker_shares, share_sizes


@attrs.frozen
class Item:
    nodeid: str


def test_the_shares_are_as_long_as_worksteal_makes_them():
    assert share_sizes(10, 3) == [3, 3, 4]
    assert share_sizes(1557, 3) == [519, 519, 519]
    assert sum(share_sizes(7, 4)) == 7


def test_each_share_starts_with_its_part_of_the_slow_tests_longest_first():
    items = [Item(f"t{n}") for n in range(12)]
    seconds = {"t3": 50.0, "t7": 40.0, "t9": 30.0, "t11": 25.0}
    ordered = in_worker_shares(items, 3, seconds)
    assert sorted(ordered, key=lambda item: int(item.nodeid[1:])) == items  # every test once
    shares = [ordered[0:4], ordered[4:8], ordered[8:12]]  # worksteal's 4, 4 and 4
    assert [share[0].nodeid for share in shares] == ["t3", "t7", "t9"]
    assert shares[2][1].nodeid == "t11"  # the least loaded share (30 s) takes the next
    rest = [item for item in ordered if item.nodeid not in seconds]
    assert rest == [item for item in items if item.nodeid not in seconds]  # in collection order


def test_one_process_keeps_the_collection_order():
    items = [Item("a"), Item("b")]
    assert in_worker_shares(items, 0, {"b": 9.0}) == items


def test_every_slow_test_named_exists():
    names = json.loads((Path(__file__).parents[1] / "slow_tests.json").read_text())
    for nodeid in names:
        path, _, test = nodeid.partition("::")
        assert f"def {test.split('[')[0]}(" in (Path(__file__).parents[2] / path).read_text(), nodeid
