"""A DynamoDB that stops answering in the middle of `user-migration migrate --all`, said out loud.

A real CLI process (stderr a pipe: no terminal) migrates a table through the fault proxy; once it has
written some users, the proxy stops forwarding anything (`blackhole`: connections stay open, no answer
comes). Within 15 s stderr has a line naming DynamoDB, its endpoint, for how long, and what is retried
(said at STALL_NOTICE_SECONDS of silence: 10 s by default, a unit test of `StallNotices` holds that; 2 s
here, so that these tests do not wait out the default);
then either DynamoDB answers again and the run finishes with every user moved once and the counters exact,
or, with a short DEPENDENCY_PATIENCE_SECONDS, the command ends with exit 3 naming DynamoDB and its endpoint.
And /metrics counts the timeouts of each dependency; the service logs a stall as the CLI says it.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import pytest

from tests.cli_runner import cli_beside
from tests.factories import valid_user
from tests.faults.conftest import AUTH, STATS, World, cli_command, get, process_environment
from tests.faults.fault_proxy import FaultProxy
from user_migration.domain.observe.stall_watch import NOTICE_SECONDS
from user_migration.entrypoints.settings import ConfigurationError, load_settings

# 2 segments of 200 users (SEGMENT_MIN_USERS; 1,000 users in segments of 500 before, 3,000 and 1,500 before
# that: the users after the stall only cost time): at the stall (`STALL_AFTER` written) the run is in its
# first segment, with pages still to read from PostgreSQL and users still to write to DynamoDB.
USERS = 400
SEGMENT_USERS = 200
STALL_AFTER = 120  # users written before DynamoDB or PostgreSQL goes silent (300 of 1,000 before)
# A progress line of a command without a terminal (`entrypoints.cli.progress.StatusLine`).
PROGRESS_LINE = r"^(working for \d+:\d\d, no progress reported yet|[\d,]+ done \| migrated )"
# A stall is said after this many seconds of silence (STALL_NOTICE_SECONDS; 10 by default).
NOTICE = 2
# Short per-request timeouts, so that a retry comes every few seconds while DynamoDB is silent.
STALL_ENV = {
    "DYNAMODB_TIMEOUT_SECONDS": "2",
    "DYNAMODB_RETRIES": "1",
    "STALL_NOTICE_SECONDS": str(NOTICE),
    "SEGMENT_MIN_USERS": str(SEGMENT_USERS),
}
# Giving up this long after the stall began (DEPENDENCY_PATIENCE_SECONDS): well past the notice.
PATIENCE = 5


class Run:
    """A `migrate --all` process, its stderr lines kept with the time each arrived."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[tuple[float, str]] = []
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process.stderr is not None
        async for line in self.process.stderr:
            self.lines.append((time.monotonic(), line.decode()))

    async def first_line_with(self, text: str, since: float, within: float) -> tuple[float, str]:
        return await self.first_line_matching(re.escape(text), since, within)

    async def first_line_matching(self, pattern: str, since: float, within: float) -> tuple[float, str]:
        deadline = since + within
        while time.monotonic() < deadline:
            for at, line in self.lines:
                if at >= since and re.search(pattern, line):
                    return at, line
            assert self.process.returncode is None, self.stderr
            await asyncio.sleep(0.1)
        raise AssertionError(f"no line matching {pattern!r} within {within} s:\n{self.stderr}")

    async def finish(self, within: float) -> tuple[int, str]:
        async with asyncio.timeout(within):
            stdout = await self.process.stdout.read() if self.process.stdout is not None else b""
            await self.process.wait()
            await self._reader
        return self.process.returncode or 0, stdout.decode()

    @property
    def stderr(self) -> str:
        return "".join(line for _, line in self.lines)


@asynccontextmanager
async def migrate_all(world: World, **env: str) -> AsyncIterator[Run]:
    process = await asyncio.create_subprocess_exec(
        *cli_command("migrate", "--all", "--json"),
        env=process_environment(world.environment(**STALL_ENV, **env)),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    run = Run(process)
    try:
        yield run
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await asyncio.wait({run._reader}, timeout=5)


async def stop_answering_mid_run(world: World, run: Run, proxy: FaultProxy | None = None) -> float:
    """Wait for the run to write some users, then make DynamoDB (or `proxy`'s server) silent; returns when."""
    async with asyncio.timeout(60):
        while sum(world.dynamodb_proxy.puts.values()) < STALL_AFTER:
            assert run.process.returncode is None, run.stderr
            await asyncio.sleep(0.02)
    (proxy or world.dynamodb_proxy).blackhole()
    return time.monotonic()


async def test_a_silent_dynamodb_is_said_within_15_s_and_the_run_resumes_exactly_when_it_answers(world: World):
    world.seed([valid_user(i) for i in range(1, USERS + 1)])
    async with migrate_all(world, LOG_FORMAT="text") as run:
        silent_since = await stop_answering_mid_run(world, run)
        said_at, line = await run.first_line_with("has not answered", silent_since, within=15)
        assert said_at - silent_since < 15
        assert line.startswith("user-migration migrate: DynamoDB at " + world.dynamodb_proxy.url), line
        assert int(re.search(r"has not answered for (\d+) s", line)[1]) >= NOTICE, line
        assert "retrying (attempt" in line or "still waiting for its answer" in line, line
        assert sum(world.dynamodb_proxy.puts.values()) < USERS, "the run had finished before the stall"
        # Nothing moves, there is no terminal, and still the progress shows within 30 s.
        await run.first_line_matching(PROGRESS_LINE, silent_since, within=32)

        world.dynamodb_proxy.heal()
        healed_at = time.monotonic()
        await run.first_line_with(f"DynamoDB at {world.dynamodb_proxy.url} answers again", healed_at, within=30)
        code, stdout = await run.finish(within=120)

    assert code == 0, run.stderr
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary["failed_count"] == 0, summary
    assert "Traceback" not in run.stderr
    assert await world.count_and_counter() == (USERS, USERS)
    assert set(await world.items()) == set(range(1, USERS + 1))
    # Each user written once: no PutItem of any user was answered 200 twice (a resent one finds it there).
    assert max(world.dynamodb_proxy.puts.values()) == 1


async def test_a_dynamodb_silent_past_the_patience_ends_the_run_with_exit_3_naming_it(world: World):
    world.seed([valid_user(i) for i in range(1, USERS + 1)])
    async with migrate_all(world, LOG_FORMAT="json", DEPENDENCY_PATIENCE_SECONDS=str(PATIENCE)) as run:
        silent_since = await stop_answering_mid_run(world, run)
        said_at, line = await run.first_line_with('"dependency_stalled"', silent_since, within=15)
        stall = json.loads(line)
        assert (stall["level"], stall["dependency"], stall["endpoint"]) == (
            "warning",
            "DynamoDB",
            world.dynamodb_proxy.url,
        ), stall
        assert stall["silent_seconds"] >= NOTICE, stall
        assert stall["waiting_request"].startswith(("PutItem", "UpdateItem", "GetItem", "Query")), stall
        assert said_at - silent_since < 15
        code, stdout = await run.finish(within=60)
        ended_at = time.monotonic()

    assert code == 3, run.stderr
    assert ended_at - silent_since < PATIENCE + 15, "the patience was not kept to"
    error = json.loads(stdout.strip().splitlines()[-1])
    assert error["error"] == "target_unavailable", error
    assert f"DynamoDB at {world.dynamodb_proxy.url} has not answered for" in error["message"], error
    assert f"DEPENDENCY_PATIENCE_SECONDS={PATIENCE}" in error["message"], error
    assert "Traceback" not in run.stderr

    # Ended as a crash would be: a later run settles what it left and carries on, exactly.
    world.dynamodb_proxy.heal()
    assert len(await world.items()) < USERS
    # In this process (tests.cli_runner): the run's own process was the point above, not here.
    again = await cli_beside(world.environment(**STALL_ENV), "migrate", "--all", "--json")
    assert again.returncode == 0, again.stderr
    assert await world.count_and_counter() == (USERS, USERS)
    assert set(await world.items()) == set(range(1, USERS + 1))
    assert max(world.dynamodb_proxy.puts.values()) == 1


async def test_a_silent_postgresql_is_said_and_its_reads_are_retried_until_it_answers(world: World):
    world.seed([valid_user(i) for i in range(1, USERS + 1)])
    # A query times out after 1 s, before the notice at 2 s (NOTICE): the notice then names its retry. With
    # 2 s both came at once, and a notice said first read "still waiting for its answer" (seen once).
    async with migrate_all(world, LOG_FORMAT="text", SOURCE_QUERY_TIMEOUT="1") as run:
        silent_since = await stop_answering_mid_run(world, run, world.postgres_proxy)
        _, line = await run.first_line_with("has not answered", silent_since, within=15)
        assert int(re.search(r"has not answered for (\d+) s", line)[1]) >= NOTICE, line
        assert line.startswith(f"user-migration migrate: PostgreSQL at 127.0.0.1:{world.postgres_proxy.port}/"), line
        # "(and N more request(s))" follows the query when other reads wait too (pages read ahead).
        assert f"a query on {world.source_table}" in line, line
        assert "retrying (attempt " in line, line
        assert "secret" not in run.stderr

        world.postgres_proxy.heal()
        code, stdout = await run.finish(within=120)

    assert code == 0, run.stderr
    assert json.loads(stdout.strip().splitlines()[-1])["failed_count"] == 0
    assert await world.count_and_counter() == (USERS, USERS)
    assert set(await world.items()) == set(range(1, USERS + 1))
    assert max(world.dynamodb_proxy.puts.values()) == 1


def test_the_notice_is_said_at_ten_seconds_unless_set_and_a_setting_out_of_range_is_named():
    base = {"DATABASE_URL": "postgresql://u:p@db:5432/app", "MIGRATION_API_TOKENS": "t", "AWS_REGION": "eu-west-1"}
    assert load_settings(base).stall_notice_seconds == NOTICE_SECONDS == 10.0
    assert load_settings({**base, "STALL_NOTICE_SECONDS": "2.5"}).stall_notice_seconds == 2.5
    for wrong in ("0", "soon", "3601"):
        with pytest.raises(ConfigurationError) as raised:
            load_settings({**base, "STALL_NOTICE_SECONDS": wrong})
        problem = "STALL_NOTICE_SECONDS must be a number between 1 and 3600"
        assert any(found.startswith(problem) for found in raised.value.problems), raised.value.problems


def dependency_timeouts(metrics: str) -> dict[str, float]:
    prefix = "user_migration_dependency_timeouts_total{dependency="
    return {
        line[len(prefix) :].split('"')[1]: float(line.split()[-1])
        for line in metrics.splitlines()
        if line.startswith(prefix)
    }


async def test_metrics_count_the_timeouts_of_each_dependency(world: World, app_client):
    world.seed([valid_user(i) for i in range(1, 11)])
    client = await app_client(dynamodb_timeout_seconds=1.0, dynamodb_retries=0, source_query_timeout=1.0)
    status, body = await get(client, batch_size=10)  # both answer
    assert status == 200, body
    # Counted from here: on a loaded machine a 1 s request may already have come late once.
    before = dependency_timeouts(await (await client.get("/metrics", headers=AUTH)).text())

    world.dynamodb_proxy.blackhole()
    async with asyncio.timeout(30):
        status, body = await get(client, STATS)
    assert (status, body["error"]) == (503, "target_unavailable"), body
    assert f"DynamoDB is unavailable at {world.dynamodb_proxy.url} (" in body["message"], body
    world.dynamodb_proxy.heal()
    after_dynamodb = dependency_timeouts(await (await client.get("/metrics", headers=AUTH)).text())
    assert after_dynamodb["dynamodb"] > before["dynamodb"], (before, after_dynamodb)

    world.postgres_proxy.blackhole()
    async with asyncio.timeout(30):
        status, body = await get(client, batch_size=10, start_user_id=11)
    assert (status, body["error"]) == (503, "source_unavailable"), body
    assert f"at 127.0.0.1:{world.postgres_proxy.port}/" in body["message"], body
    world.postgres_proxy.heal()

    metrics = await (await client.get("/metrics", headers=AUTH)).text()
    after_postgresql = dependency_timeouts(metrics)
    assert after_postgresql["postgresql"] > after_dynamodb["postgresql"], metrics


async def test_the_service_logs_a_silent_dynamodb_as_a_json_line_within_15_s(world: World, serve_process):
    world.seed([valid_user(i) for i in range(1, 11)])
    server = serve_process(world.environment(DYNAMODB_TIMEOUT_SECONDS="3", STALL_NOTICE_SECONDS=str(NOTICE)))
    await asyncio.to_thread(server.wait_until_listening)
    async with aiohttp.ClientSession(server.url, headers=AUTH) as session:
        async with session.get(STATS) as response:
            assert response.status == 200, await response.text()
        world.dynamodb_proxy.blackhole()
        silent_since = time.monotonic()
        waiting = asyncio.create_task(session.get(STATS))
        try:
            stall = None
            while stall is None:
                assert time.monotonic() - silent_since < 15, "".join(server.lines)
                await asyncio.sleep(0.2)
                stall = next((json.loads(line) for line in server.lines if '"dependency_stalled"' in line), None)
            assert (stall["logger"], stall["dependency"], stall["endpoint"]) == (
                "user_migration.stalls",
                "DynamoDB",
                world.dynamodb_proxy.url,
            ), stall
            assert stall["silent_seconds"] >= NOTICE, stall
        finally:
            world.dynamodb_proxy.heal()
            async with asyncio.timeout(60):
                (await waiting).release()
