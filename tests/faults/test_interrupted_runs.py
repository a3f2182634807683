"""Whole runs (`user-migration migrate --all`) interrupted by faults, then resumed.

A run cut off at a random moment (DynamoDB or PostgreSQL going away in the middle of any
request), or refused part of its batches, and then resumed, ends with DynamoDB holding exactly
the valid source users, each once, each equal to its source row, with counters equal to the
item count; the checkpoint never passes a valid user that is not in DynamoDB. Each test runs in
both write modes (live: a conditional PutItem per user; offline: check, then BatchWriteItem).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import signal
import subprocess
from typing import Any

import attrs

from tests.cli_runner import cli_beside
from tests.factories import from_item, valid_user
from tests.faults.conftest import (
    World,
    both_write_modes,
    cli_command,
    is_valid,
    process_environment,
    refuse_writes_of,
)
from tests.faults.fault_proxy import FaultProxy
from tests.real_adapters import create_dynamodb_tables, run_leases
from user_migration.domain.model import as_source_user
from user_migration.domain.parallel.segments import resume_point

# 10 pages of 20 users (400 users in pages of 40 before: as many pages, twice the requests),
# invalid users in the first, the third, the sixth and the last page.
USERS = 200
BATCH = "20"
INVALID: dict[int, dict[str, Any]] = {
    9: {"email": "nope"},
    60: {"username": None},
    117: {"status": "archived"},
    199: {"email": None},
}


def source() -> list:
    return [valid_user(i, **INVALID.get(i, {})) for i in range(1, USERS + 1)]


async def assert_exactly_the_valid_users(world: World) -> None:
    """DynamoDB holds every valid source user once, equal to its row; nothing else; counters exact."""
    rows = await world.source_users()
    valid = {user_id for user_id, user in rows.items() if is_valid(user)}
    items = await world.items()  # fails on a user stored twice
    assert set(items) == valid, (sorted(valid - set(items))[:10], sorted(set(items) - valid)[:10])
    for user_id, item in items.items():
        assert as_source_user(from_item(item)) == rows[user_id], user_id
    progress = await world.progress()
    assert progress.migrated_users == len(items), f"counter {progress.migrated_users} for {len(items)} items"


async def assert_checkpoint_is_not_past_an_unwritten_user(world: World) -> None:
    """No segment's checkpoint (its whole range, once done) passes a valid user not in DynamoDB."""
    leases = await run_leases(world.dynamodb, world.state_table)
    rows = await world.source_users()
    items = await world.items()
    unwritten = [user_id for user_id, user in rows.items() if is_valid(user) and user_id not in items]
    for lease in leases:
        handled_below = lease.segment.highest + 1 if lease.done else lease.checkpoint
        passed = [user_id for user_id in unwritten if lease.segment.lowest <= user_id < handled_below]
        assert not passed, f"segment {lease.segment.index}'s checkpoint {handled_below} is past unwritten {passed[:10]}"


def summary_of(result) -> dict:
    assert result.stdout.strip(), result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


async def fresh_world(world: World, stack: contextlib.ExitStack) -> World:
    """The same source table, with DynamoDB tables and proxies of its own."""
    users_table, state_table = await create_dynamodb_tables(world.dynamodb)
    dynamodb_proxy = stack.enter_context(FaultProxy(world.dynamodb_proxy.target, http=True))
    postgres_proxy = stack.enter_context(FaultProxy(world.postgres_proxy.target))
    return attrs.evolve(
        world,
        users_table=users_table,
        state_table=state_table,
        dynamodb_proxy=dynamodb_proxy,
        postgres_proxy=postgres_proxy,
    )


def cut_environment(world: World) -> dict[str, str]:
    """The whole environment of an interrupted run's process. A server cut away is waited for, retrying, for
    the patience (10 minutes by default): 15 s here. Not less: four runs share one moto that answers a request
    at a time, and on a loaded machine a 3 s patience ended runs before their cut (seen in CI: "the cut ...
    never happened")."""
    return process_environment(world.environment(DEPENDENCY_PATIENCE_SECONDS="15"))


async def cut_and_resume(
    world: World, server: str, cut_at: int, cut_env: dict[str, str], one_at_a_time: asyncio.Lock
) -> None:
    """One interrupted run, its resumption and a plain re-run, with every check.

    The interrupted run is a process of its own (`cut_env`, made before any run in this process changes the
    test process's environment); the resumed run and the re-run run in this process (tests.cli_runner),
    one at a time (`one_at_a_time`: an in-process run sets the test process's environment)."""
    proxy = world.dynamodb_proxy if server == "dynamodb" else world.postgres_proxy
    proxy.cut_after(cut_at)
    interrupted = await asyncio.to_thread(
        subprocess.run,
        cli_command("migrate", "--all", "--batch-size", BATCH, "--json"),
        env=cut_env,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert proxy.cuts == 1, f"the cut at byte {cut_at} never happened"
    assert interrupted.returncode in (1, 3), interrupted.stderr
    assert "Traceback" not in interrupted.stderr, interrupted.stderr
    await assert_checkpoint_is_not_past_an_unwritten_user(world)
    proxy.heal()

    async with one_at_a_time:
        resumed = await cli_beside(world.environment(), "migrate", "--all", "--resume", "--batch-size", BATCH, "--json")
    # Only invalid users remain failed: those of the pages it read again (none when the cut came after
    # the last of their pages was checkpointed, seen at byte 501,238 of 504,618), and exit 1 with them.
    failed = summary_of(resumed)["failed_user_ids"]
    assert set(failed) <= set(INVALID)
    assert resumed.returncode == (1 if failed else 0), resumed.stderr
    await assert_exactly_the_valid_users(world)

    async with one_at_a_time:
        again = await cli_beside(world.environment(), "migrate", "--all", "--restart", "--batch-size", BATCH, "--json")
    summary = summary_of(again)
    assert (summary["migrated_count"], summary["skipped_count"]) == (0, USERS - len(INVALID)), summary
    assert summary["failed_user_ids"] == sorted(INVALID)
    await assert_exactly_the_valid_users(world)


# The live mode only: the offline mode's cuts are the ones this suite ran before the live mode
# existed, and its other interrupted runs below still run in both modes.
async def test_runs_cut_at_random_moments_and_resumed_hold_exactly_the_valid_users(world: World):
    """Several runs, each cut at a random byte of its DynamoDB or PostgreSQL traffic (seeded).

    They are cut side by side, each on tables and proxies of its own: a run cut inside a hold leaves
    its lease to expire (`HOLD_LEASE_SECONDS`) before the resumed run can take it, and waiting for those one after
    the other would take minutes (the leases expire meanwhile; the resumed runs then take turns).
    """
    world.seed(source())
    with contextlib.ExitStack() as stack:
        # A clean run first: how many bytes a whole run moves through each proxy.
        clean = await fresh_world(world, stack)
        # In this process (tests.cli_runner); the interrupted runs side by side below are processes (one
        # environment each: an in-process run sets the test process's own), their resumptions are not.
        result = await cli_beside(clean.environment(), "migrate", "--all", "--batch-size", BATCH, "--json")
        assert result.returncode == 1, result.stderr
        await assert_exactly_the_valid_users(clean)
        total = {"dynamodb": clean.dynamodb_proxy.bytes_forwarded, "postgres": clean.postgres_proxy.bytes_forwarded}

        cases = [("dynamodb", 1), ("dynamodb", 2), ("dynamodb", 3), ("postgres", 4)]
        worlds = [await fresh_world(world, stack) for _ in cases]
        cuts = [random.Random(seed).randrange(1, total[server]) for server, seed in cases]
        cut_envs = [cut_environment(each) for each in worlds]
        one_at_a_time = asyncio.Lock()
        async with asyncio.timeout(240):
            outcomes = await asyncio.gather(
                *(
                    cut_and_resume(each, server, cut, cut_env, one_at_a_time)
                    for each, (server, _), cut, cut_env in zip(worlds, cases, cuts, cut_envs, strict=True)
                ),
                return_exceptions=True,
            )
    failures = [
        f"{server} cut at byte {cut} of {total[server]}: {type(outcome).__name__}: {outcome}"
        for (server, _), cut, outcome in zip(cases, cuts, outcomes, strict=True)
        if isinstance(outcome, BaseException)
    ]
    assert not failures, "\n".join(failures)


@both_write_modes
async def test_a_run_with_unprocessed_items_keeps_its_checkpoint_before_them_and_resume_writes_exactly_them(
    world: World,
):
    world.seed([valid_user(i, email="nope") if i == 17 else valid_user(i) for i in range(1, 31)])
    stuck = {7, 26}
    refuse_writes_of(world, stuck)  # on every attempt (offline: unprocessed; live: 500s)
    # Live, botocore retries each 500 (DYNAMODB_RETRIES, 3 by default, waiting up to 1 + 2 + 4 s): one
    # retry is enough to prove that users failing on every attempt are failed and the checkpoint kept.
    # In this process (tests.cli_runner): what the runs leave is the point, not a process of their own.
    first = await cli_beside(
        world.environment(DYNAMODB_RETRIES="1"), "migrate", "--all", "--batch-size", "10", "--json"
    )
    assert first.returncode == 1, first.stderr
    summary = summary_of(first)
    assert summary["failed_user_ids"] == [7, 17, 26]
    assert summary["migrated_count"] == 27
    assert summary["resume_from_user_id"] == 7
    assert resume_point(await run_leases(world.dynamodb, world.state_table)) == 7
    assert set(await world.items()) == set(range(1, 31)) - stuck - {17}
    assert await world.count_and_counter() == (27, 27)

    world.dynamodb_proxy.heal()
    resumed = await cli_beside(world.environment(), "migrate", "--all", "--resume", "--batch-size", "10", "--json")
    summary = summary_of(resumed)
    assert summary["migrated_count"] == 2, summary
    assert summary["failed_user_ids"] == [17]
    assert summary["skipped_count"] == len([i for i in range(7, 31) if i not in stuck and i != 17])
    await assert_exactly_the_valid_users(world)
    assert (world.dynamodb_proxy.puts[7], world.dynamodb_proxy.puts[26]) == (1, 1)


@both_write_modes
async def test_a_run_stopped_at_once_mid_write_by_a_second_sigterm_resumes_to_exactly_the_valid_users(world: World):
    """The first SIGTERM asks the run to stop after the pages in hand; a second one stops it at
    once — here while a page is being written to a slow DynamoDB."""
    world.seed(source())
    world.dynamodb_proxy.slow(world.write_operation, seconds=2.0)  # the writes land at once, answered 2 s later
    process = await asyncio.create_subprocess_exec(
        *cli_command("migrate", "--all", "--batch-size", BATCH, "--json"),
        env=process_environment(world.environment()),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(30):
            while world.dynamodb_proxy.operations[world.write_operation] == 0:
                assert process.returncode is None, await process.communicate()
                await asyncio.sleep(0.02)
        process.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.2)
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            _, err = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.communicate()
    world.dynamodb_proxy.heal()
    await assert_checkpoint_is_not_past_an_unwritten_user(world)
    items = await world.items()
    counter = (await world.progress()).migrated_users
    assert counter == len(items), f"counter {counter} for {len(items)} items after the second SIGTERM: {err.decode()}"
    # The documented exit for an interrupted run (cli.py): 130, a message, no traceback.
    assert (process.returncode, b"Traceback" in err) == (130, False), err.decode()

    # The resumed run in this process (tests.cli_runner): the signals were the point of the one above.
    resumed = await cli_beside(world.environment(), "migrate", "--all", "--resume", "--batch-size", BATCH, "--json")
    assert resumed.returncode == 1, resumed.stderr
    await assert_exactly_the_valid_users(world)


def _settle_with_done_mark(body: dict[str, Any]) -> bool:
    update = str(body.get("UpdateExpression", ""))
    return "migrated_users = :count" in update and "lease_counter" in update


@both_write_modes
async def test_a_lost_answer_to_a_segments_last_settle_with_its_done_mark_is_found_made_and_counted_once(
    world: World,
):
    """The settle that carries the segment's done mark applies, its answer is lost, botocore sends
    it again and that one fails its condition: the item read back shows both made."""
    world.seed([valid_user(i) for i in range(1, 61)])
    lost = world.dynamodb_proxy.lose_response("UpdateItem", times=1, when=_settle_with_done_mark)
    # One page of the whole segment, shorter than a batch: its settle carries the done mark.
    result = await cli_beside(world.environment(), "migrate", "--all", "--batch-size", "100", "--json")
    assert result.returncode == 0, result.stderr
    summary = summary_of(result)
    assert (summary["migrated_count"], summary["failed_count"]) == (60, 0), summary
    assert lost.hits == 1
    leases = await run_leases(world.dynamodb, world.state_table)
    assert all(lease.done and lease.owner is None for lease in leases)
    await assert_exactly_the_valid_users(world)
