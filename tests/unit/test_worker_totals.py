"""Worker summaries added up (`--workers N`): each job's totals field by field, the leases by the
domain's rule, the newest view taken from the worker that looked last."""

from __future__ import annotations

from typing import Any

from user_migration.entrypoints.cli.sync_pass import SyncTotals
from user_migration.entrypoints.cli.verify_pass import VerifyTotals
from user_migration.entrypoints.cli.worker_totals import added_up
from user_migration.entrypoints.cli.workers import MigrateTotals

LEASES = {"segments_done": 2, "lease_takes": 3, "lease_steals": 1, "leases_lost": 1}


def migrate_summary(**fields: Any) -> dict[str, Any]:
    return {
        "users_read": 100,
        "migrated_count": 90,
        "skipped_count": 5,
        "failed_count": 0,
        "failed_user_ids": [],
        "errors": [],
        "dry_run": False,
        "processing_time_ms": 1000,
        "resume_from_user_id": None,
        "stopped_early": False,
        "write_units_spent": 90,
        "write_throttled": 0,
        "run": 2,
        "worker": "w",
        **LEASES,
        "unfinished_segments": 0,
        **fields,
    }


def test_two_migrate_workers_add_up_with_a_failing_user_listed_and_counted_once():
    # The first worker lost its lease after its page with user 7; the second did that page again.
    first = migrate_summary(
        failed_user_ids=[7, 3],
        failed_count=2,
        errors=["user 7: email is not valid", "user 3: status"],
        unfinished_segments=3,
        resume_from_user_id=40,
        processing_time_ms=2500,
    )
    second = migrate_summary(
        failed_user_ids=[7], failed_count=1, errors=["user 7: email is not valid"], stopped_early=True, run=3
    )

    total = added_up(MigrateTotals, [first, second])

    assert total["users_read"] == 200
    assert total["migrated_count"] == 180
    assert total["write_units_spent"] == 180
    assert total["failed_user_ids"] == [3, 7]
    assert total["failed_count"] == 2
    assert total["errors"] == ["user 7: email is not valid", "user 3: status"]
    assert total["processing_time_ms"] == 2500
    assert total["run"] == 3
    assert total["resume_from_user_id"] is None  # the second worker looked last (0 unfinished)
    assert total["dry_run"] is False
    assert total["stopped_early"] is True
    assert {name: total[name] for name in LEASES} == {name: 2 * value for name, value in LEASES.items()}
    assert total["unfinished_segments"] == 0
    assert total["workers"] == [first, second]


def test_a_field_a_worker_did_not_print_takes_its_default():
    total = added_up(MigrateTotals, [migrate_summary(), {"users_read": 4, "unfinished_segments": 5}])

    assert total["users_read"] == 104
    assert total["migrated_count"] == 90
    assert total["unfinished_segments"] == 0
    assert total["segments_done"] == 2


def test_no_worker_summary_adds_up_to_zeros():
    total = added_up(MigrateTotals, [])

    assert total["users_read"] == 0
    assert total["failed_user_ids"] == []
    assert total["resume_from_user_id"] is None
    assert total["workers"] == []


def verify_summary(**fields: Any) -> dict[str, Any]:
    counts = dict.fromkeys(
        ("checked", "matching", "missing", "different", "extra", "newer_in_dynamodb", "invalid_in_source"), 1
    )
    return {**counts, "stopped_early": False, "verify_pass": 4, **LEASES, "pass_counts": None, **fields}


def test_verify_repair_counts_are_shown_only_when_the_workers_repaired():
    plain = added_up(VerifyTotals, [verify_summary(), verify_summary()])
    repaired = added_up(
        VerifyTotals, [verify_summary(repaired=2, not_repaired=1), verify_summary(repaired=3, not_repaired=0)]
    )

    assert plain["checked"] == 2
    assert "repaired" not in plain
    assert "not_repaired" not in plain
    assert (repaired["repaired"], repaired["not_repaired"]) == (5, 1)


def test_verify_takes_the_pass_verdict_of_the_worker_that_looked_last():
    verdict = {"checked": 10, "matching": 10}
    total = added_up(
        VerifyTotals,
        [verify_summary(unfinished_segments=2), verify_summary(unfinished_segments=0, pass_counts=verdict)],
    )

    assert total["pass_counts"] == verdict
    assert total["verify_pass"] == 4


def test_sync_workers_are_caught_up_only_when_each_one_is():
    def sync_summary(caught_up: bool, failed: list[int]) -> dict[str, Any]:
        return {"changes_seen": 5, "written": 4, "failed_count": len(failed), "failed_user_ids": failed,
                "caught_up": caught_up, "sync_pass": 1, "pass_applied": None, **LEASES}  # fmt: skip

    behind = added_up(SyncTotals, [sync_summary(True, [9]), sync_summary(False, [2])])
    caught_up = added_up(SyncTotals, [sync_summary(True, []), sync_summary(True, [])])

    assert behind["caught_up"] is False
    assert caught_up["caught_up"] is True
    assert behind["changes_seen"] == 10
    assert behind["failed_user_ids"] == [2, 9]
    assert behind["failed_count"] == 2
    assert behind["pass_applied"] is None
