"""Races: many requests over overlapping ranges, two service processes over the same tables, and
items written by someone else. Every valid user ends up written exactly once (the proxy counts
every PutRequest that reaches DynamoDB), the counter equals what the migration wrote, and an item
that someone else wrote is never overwritten. In both write modes: live, a PutItem counts in
`puts` only where its condition let it write; offline, every PutRequest of a BatchWriteItem does,
so "once" is shown by the holds and the existence check there, by DynamoDB's condition here."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from tests.factories import valid_user
from tests.faults.conftest import AUTH, USERS, World, both_write_modes, get, is_valid

INVALID: dict[int, dict[str, Any]] = {17: {"email": "nope"}, 60: {"username": None}, 113: {"status": "archived"}}
# 14 requests of 30 users over 120 (of 60 over 240 before: the same overlaps, each user in about three
# requests, at half the users), two of them over the same range at once.
STARTS = [1, 1, 11, 21, 21, 31, 41, 51, 61, 71, 81, 91, 101, 111]
REQUEST_USERS = 30


def source(count: int = 120) -> list:
    return [valid_user(i, **INVALID.get(i, {})) for i in range(1, count + 1)]


async def assert_each_valid_user_written_once(world: World, reports: list[dict[str, Any]]) -> None:
    valid = {user.id for user in source() if is_valid(user)}
    puts = world.dynamodb_proxy.puts
    twice = sorted(user_id for user_id, times in puts.items() if times > 1)
    assert not twice, f"users written more than once: {twice[:20]} (e.g. {puts[twice[0]]} times)"
    assert set(puts) == valid
    assert set(await world.items()) == valid
    assert sum(report["migrated_count"] for report in reports) == len(valid)
    assert await world.count_and_counter() == (len(valid), len(valid))


@both_write_modes
async def test_concurrent_overlapping_requests_on_one_service_write_each_user_once(world: World, app_client):
    world.seed(source())
    client = await app_client()
    world.dynamodb_proxy.delay(0.05)  # widen every window a little
    async with asyncio.timeout(90):
        answers = await asyncio.gather(
            *(get(client, batch_size=REQUEST_USERS, start_user_id=start) for start in STARTS)
        )
    assert all(status == 200 for status, _ in answers), answers
    await assert_each_valid_user_written_once(world, [report for _, report in answers])


@both_write_modes
async def test_two_service_processes_over_the_same_tables_write_each_user_once(world: World, serve_process):
    world.seed(source())
    servers = [serve_process(world.environment()) for _ in range(2)]
    for server in servers:
        server.wait_until_listening()
    world.dynamodb_proxy.delay(0.05)

    async def migrate(session: aiohttp.ClientSession, url: str, start: int) -> tuple[int, Any]:
        async with session.get(
            f"{url}{USERS}", params={"batch_size": str(REQUEST_USERS), "start_user_id": str(start)}
        ) as answer:
            return answer.status, await answer.json()

    async with aiohttp.ClientSession(headers=AUTH) as session, asyncio.timeout(120):
        # Every range goes to both processes at the same moment, and the ranges overlap.
        answers = await asyncio.gather(*(migrate(session, server.url, start) for start in STARTS for server in servers))
    assert all(status == 200 for status, _ in answers), answers
    for server in servers:
        server.terminate()
        assert server.wait(timeout=30) == 0, "".join(server.lines)
    await assert_each_valid_user_written_once(world, [report for _, report in answers])


def foreign_item(user_id: int) -> dict[str, Any]:
    """An item another service wrote for this user id: other content, other attributes."""
    return {
        "user_id": {"N": str(user_id)},
        "username": {"S": f"someone_else_{user_id}"},
        "owner": {"S": "another-service"},
        "score": {"N": "0.1000"},
        "tags": {"SS": ["x", "y"]},
    }


@both_write_modes
async def test_an_item_someone_else_wrote_before_the_migration_is_never_overwritten(world: World, app_client):
    world.seed([valid_user(i) for i in range(1, 21)])
    for user_id in (3, 8):
        await world.dynamodb.put_item(TableName=world.users_table, Item=foreign_item(user_id))
    client = await app_client()
    status, report = await get(client, batch_size=20)
    assert status == 200, report
    assert (report["migrated_count"], report["skipped_count"], report["failed_count"]) == (18, 2, 0)
    items = await world.items()
    assert items[3] == foreign_item(3)
    assert items[8] == foreign_item(8)
    assert world.dynamodb_proxy.puts[3] == world.dynamodb_proxy.puts[8] == 0
    assert len(items) == 20
    assert (await world.progress()).migrated_users == 18  # what the migration wrote

    status, report = await get(client, batch_size=20)  # and again: all skipped, nothing touched
    assert (report["migrated_count"], report["skipped_count"]) == (0, 20)
    assert (await world.items())[3] == foreign_item(3)
