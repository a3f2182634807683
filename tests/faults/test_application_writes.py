"""No overwrite of newer data while an application writes the same DynamoDB table (issue 13).

An "application" (a dual-writing service) puts newer versions of random users straight into
DynamoDB, not through the proxy, while a migration in the live (default) mode runs against the
same real PostgreSQL and moto, on each write path in turn (`WRITE_PATHS`). It writes each user at
most once, so an item of its that the migration replaced would stay replaced and be seen at the
end; once it has written its share of the source's users it signs new users up (ids the source
does not have) until it is stopped. Its items are of three kinds: in the tool's own format with a
`migration_version` greater than the row's (and a digest that fits), with a greater
`migration_version` but no digest, and with neither (an application that does not know the
attributes). After each run:

- every item the application wrote is still exactly that item (whole items compared);
- every other valid user is present and is the migration's item of its row, with its version;
- nothing else is stored (no invalid user, no stranger);
- the counters equal what the migration wrote: the proxy counts every PutItem that DynamoDB
  answered 200 (a conditional put whose condition failed wrote nothing), and the report, the
  progress counter and those puts must agree; a user the migration did not write is one the
  application wrote first.

It cannot pass for nothing: the application starts before the migration and stops after it, it
must have written during the run (its writes are timed against the run's start and end), and
both orders must have happened during the run: users it wrote before the migration reached them
(the migration must skip or keep them) and users it wrote after the migration had (the
application's write wins). Half of its writes go to users that the migration's latest requests
carried (the proxy's `seen_user_ids`): the users being checked or written at that moment, where
a check-then-write migration loses them; a quarter to users the migration has written in this
run (`put_order`), so that its write must win, and half its share waits for the first of those (so
that both orders happen on a slow server too). (Run against the offline mode instead, this test finds
replaced items on every creating path: 16 of 120, 10 of 75, 1 to 2 of ~200, 4 to 5 of ~33 in
two runs; with a rewrite that ignored ownership or versions, 42 of 71 and 11 of 68.)

The offline mode (`OFFLINE_WRITES=true`) does not claim this: the last test shows the window
deterministically, with the write injected between its existence check and its batch write.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest

from tests.factories import from_item, valid_user
from tests.faults.conftest import STATS, USERS, World, both_write_modes, get, is_valid, run_cli
from tests.faults.fault_proxy import HttpMessage, request_user_ids
from tests.real_adapters import execute
from user_migration.adapters.dynamodb.codec import encode_user
from user_migration.adapters.dynamodb.item_size import Item
from user_migration.domain.convert.mapping import MIGRATED_AT, MIGRATION_DIGEST, MIGRATION_VERSION
from user_migration.domain.convert.rules import prepare_user
from user_migration.domain.migrate.request import RunRequest
from user_migration.domain.model import PreparedUser, SourceUser, as_source_user
from user_migration.domain.sync.request import SyncRequest
from user_migration.domain.verify.request import VerifyRequest
from user_migration.entrypoints.library import UserMigration

# Every 41st user is invalid: never written by the migration, though the application may write it.
INVALID_EVERY = 41
# The application's pace (see `Application._next_user`): it overlaps the whole run without taking
# moto, which serves one request at a time, from the migration.
PAUSE_SECONDS = 0.01
SEEN_PER_WRITE = 5  # one source user written for every 5 user ids in the migration's requests
SHARE_OF_USERS = 0.3  # and at most this share of the source's users
# Seconds between two new users, in between (0.05 before: 20 puts a second straight to the server for the
# whole of every run; moto answers one request at a time, so the migration's requests waited behind them).
SIGNUP_EVERY = 0.25
WORKERS = 3  # puts in flight at once (each of its own user)
WRITES_BEFORE = 8  # written before the migration starts
WRITES_AFTER = 5  # and after it ends
MIN_WRITES_DURING = 10  # moto serves one request at a time: the migration keeps ~32 in its queue


def source(count: int) -> list:
    return [
        valid_user(i, email="nope") if i % INVALID_EVERY == 0 else valid_user(i, display_name=f"Row {i}")
        for i in range(1, count + 1)
    ]


# --------------------------------------------------------------------------------------------
# The application
# --------------------------------------------------------------------------------------------

KINDS = ("tool-format", "versioned", "unversioned")


def application_item(user_id: int, kind: str, serial: int) -> Item:
    """The full item an application writes for a user: other content, a version newer than any
    row's (the rows are from 2024), and the attributes of its kind (see the module docstring).
    Numbers are integers, so the item reads back the same on any endpoint."""
    now = datetime.now(UTC)
    user = valid_user(
        user_id,
        username=f"app_{user_id}_{serial}",
        email=f"app.{serial}.{user_id}@example.com",
        display_name="Written by the application",
        updated_at=now - timedelta(seconds=1),
        profile={"plan": "team", "writes": serial, "flags": [True, False]},
    )
    prepared = prepare_user(user, now)
    assert isinstance(prepared, PreparedUser), prepared
    item = encode_user(prepared, "user_id")
    if kind != "tool-format":
        del item[MIGRATION_DIGEST], item[MIGRATED_AT]
    if kind == "unversioned":
        del item[MIGRATION_VERSION]
    return item


@attrs.define
class Application:
    """Writes newer versions of random users straight into DynamoDB, each user at most once."""

    world: World
    user_ids: list[int]
    rng: random.Random
    written: dict[int, Item] = attrs.Factory(dict)
    log: list[tuple[float, int]] = attrs.Factory(list)  # (monotonic time its put was answered, user id)
    _stop: asyncio.Event = attrs.Factory(asyncio.Event)
    _task: asyncio.Task[None] | None = None
    _left: set[int] = attrs.field(init=False)  # source users it has not written yet
    _chosen: set[int] = attrs.Factory(set)
    _share: int = attrs.field(init=False)
    _signups: Iterator[int] = attrs.field(init=False)
    _last_signup: float = 0.0
    _seen_before: int = 0
    _puts_before: int = 0

    def __attrs_post_init__(self) -> None:
        self._left = set(self.user_ids)
        self._share = int(len(self._left) * SHARE_OF_USERS)
        self._signups = itertools.count(max(self.user_ids) + 1)

    def start(self) -> None:
        self._seen_before = len(self.world.dynamodb_proxy.seen_user_ids)
        self._puts_before = len(self.world.dynamodb_proxy.put_order)
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        assert self._task is not None
        self._stop.set()
        await self._task

    async def wait_for_writes(self, count: int) -> None:
        async with asyncio.timeout(20):
            while len(self.log) < count:
                assert self._task is not None
                if self._task.done():
                    await self._task  # raises what ended it
                await asyncio.sleep(PAUSE_SECONDS)

    def writes_between(self, started: float, ended: float) -> set[int]:
        return {user_id for moment, user_id in self.log if started <= moment <= ended}

    def _next_user(self) -> int | None:
        """The next user to write, None to wait a little. Source users at the pace of the
        migration (one for every few users its requests carry, so that they are spread over the
        whole run whatever the machine's speed); in between, now and then a new user (an id the
        source does not have), so that it goes on writing until it is stopped."""
        seen = self.world.dynamodb_proxy.seen_user_ids
        pace = WRITES_BEFORE + (len(seen) - self._seen_before) // SEEN_PER_WRITE
        # Half its share is kept until the migration's first write of this run has landed: its reads count
        # in the pace too, and a `--rewrite` on DynamoDB Local read every user two or three times (535 ids)
        # before its first batch landed, by when the whole share had gone to users it had not reached.
        share = self._share if len(self.world.dynamodb_proxy.put_order) > self._puts_before else self._share // 2
        if len(self._chosen) >= min(pace, share) or not self._left:
            if time.monotonic() - self._last_signup < SIGNUP_EVERY:
                return None
            self._last_signup = time.monotonic()
            return next(self._signups)
        recent = seen[-40:]
        near = sorted(set(recent) & self._left)
        landed = sorted(set(self.world.dynamodb_proxy.put_order[self._puts_before :]) & self._left)
        draw = self.rng.random()
        if near and draw < 0.5:
            # Half the time one of the users the migration's latest requests carried: the users it
            # is checking or writing right now, where a check-then-write migration would lose them.
            user_id = self.rng.choice(near)
        elif landed and draw < 0.75:
            # A quarter, one the migration has written in this run: its write must then win (on a slow
            # server the writes to users "right now" can all land before the migration's).
            user_id = self.rng.choice(landed)
        else:
            user_id = self.rng.choice(sorted(self._left))
        self._left.discard(user_id)
        self._chosen.add(user_id)
        return user_id

    async def _worker(self) -> None:
        while not self._stop.is_set():
            user_id = self._next_user()  # no await between choosing and claiming: each user once
            if user_id is None:
                await asyncio.sleep(PAUSE_SECONDS)
                continue
            # A new user (no row) is never in the tool's own format: an item whose digest fits
            # is the migration's by definition, and `sync` / `verify --repair` delete such an
            # item once its row is gone (docs/online-migration.md asks applications not to write the digest).
            kinds = KINDS if user_id in self._chosen else KINDS[1:]
            item = application_item(user_id, self.rng.choice(kinds), len(self._chosen))
            await self.world.dynamodb.put_item(TableName=self.world.users_table, Item=item)
            self.written[user_id] = item
            self.log.append((time.monotonic(), user_id))
            await asyncio.sleep(PAUSE_SECONDS)

    async def _run(self) -> None:
        async with asyncio.TaskGroup() as workers:
            for _ in range(WORKERS):
                workers.create_task(self._worker())


# --------------------------------------------------------------------------------------------
# The write paths
# --------------------------------------------------------------------------------------------


@attrs.frozen
class Outcome:
    """What a path's own report says it did (`rewritten`/`kept` only for a rewrite)."""

    migrated: int
    skipped: int
    failed: frozenset[int]
    rewritten: int = 0
    kept: frozenset[int] = frozenset()


@attrs.frozen
class Run:
    """What a path's run is given: the world, an HTTP client on an app behind the proxies, and
    what its `prepare` returned."""

    world: World
    client: Any
    earlier: Any


@attrs.frozen
class WritePath:
    """One way the migration writes users: what it needs before the application starts
    (`prepare`, e.g. an earlier run), then the run itself, returning its report's counts."""

    name: str
    users: int
    run: Callable[[Run], Awaitable[Outcome]]
    prepare: Callable[[World], Awaitable[Any]] | None = None
    rewrites: bool = False  # the run replaces the items of an earlier run instead of creating them
    creates: bool = True  # its writes create items (counted); False: it replaces items counted before
    # Its report counts exactly its own writes; False: a repair, whose "repaired" means "no longer
    # differs", which an application's write meanwhile may also have brought about.
    exact: bool = True
    moto_users: int | None = None  # its users on moto, where not `users`

    def users_on(self, dynamodb_server: str) -> int:
        return self.moto_users if dynamodb_server == "moto" and self.moto_users is not None else self.users


def summary_outcome(summary: dict[str, Any]) -> Outcome:
    return Outcome(
        summary["migrated_count"],
        summary["skipped_count"],
        frozenset(summary["failed_user_ids"]),
        summary.get("rewritten_count", 0),
        frozenset(summary.get("not_rewritten_user_ids", [])),
    )


def library_outcome(summary: Any) -> Outcome:
    failed = frozenset(summary.failures)
    return Outcome(summary.migrated, summary.skipped, failed, summary.rewritten, frozenset(summary.kept))


async def migrate_all_cli(run: Run) -> Outcome:
    """`user-migration migrate --all` in a process of its own (in this process, tests.cli_runner, the
    application's writes after the migration's were 4 on DynamoDB Local in one run, at 250 users)."""
    command = ("migrate", "--all", "--batch-size", "100", "--json")
    result = await asyncio.to_thread(run_cli, run.world.environment(), *command)
    assert result.returncode in (0, 1), result.stderr
    return summary_outcome(json.loads(result.stdout.strip().splitlines()[-1]))


async def batch_endpoint(run: Run) -> Outcome:
    """`GET /m2/migration/users?batch_size=100`, page after page."""
    migrated = skipped = 0
    failed: set[int] = set()
    start: int | None = 0
    while start is not None:
        status, report = await get(run.client, USERS, batch_size=100, start_user_id=start)
        assert status == 200, report
        migrated, skipped = migrated + report["migrated_count"], skipped + report["skipped_count"]
        failed.update(report["failed_user_ids"])
        start = report["next_start_user_id"]
    return Outcome(migrated, skipped, frozenset(failed))


async def single_user_endpoint(run: Run) -> Outcome:
    """`GET /m2/migration/users?user_id=N` for every user, eight requests at a time."""
    slots = asyncio.Semaphore(8)

    async def one(user_id: int) -> dict[str, Any]:
        async with slots:
            status, report = await get(run.client, USERS, user_id=user_id)
        assert status == 200, report
        return report

    rows = await run.world.source_users()
    reports = await asyncio.gather(*(one(user_id) for user_id in sorted(rows)))
    return Outcome(
        sum(report["migrated_count"] for report in reports),
        sum(report["skipped_count"] for report in reports),
        frozenset(user_id for report in reports for user_id in report["failed_user_ids"]),
    )


def before_the_application(world: World) -> dict[str, str]:
    """The environment of a run made before the application starts writing: the offline mode,
    as its documentation has it (nothing else writes the table yet), which is also faster."""
    return world.environment(OFFLINE_WRITES="true")


async def failed_by_an_earlier_run(world: World) -> list[int]:
    """An earlier run in which most users failed (an invalid email), then their rows fixed."""
    table = world.source_table
    execute(world.dsn, f"UPDATE {table} SET email = 'broken' WHERE mod(id, 5) <> 0 AND mod(id, {INVALID_EVERY}) <> 0")
    async with UserMigration.from_env(before_the_application(world)) as migration:
        summary = await migration.migrate_all(RunRequest(batch_size=100))
    execute(world.dsn, f"UPDATE {table} SET email = 'fixed' || id || '@example.com' WHERE email = 'broken'")
    return [user_id for user_id in summary.failures if user_id % INVALID_EVERY != 0]


async def retry_failed(run: Run) -> Outcome:
    """`--retry-failed`: the library's `retry_users` on the earlier run's failures."""
    async with UserMigration.from_env(run.world.environment()) as migration:
        return library_outcome(await migration.retry_users(run.earlier))


async def migrated_then_rows_changed(world: World) -> None:
    """An earlier run wrote every valid user; then every row changed (a newer `updated_at`)."""
    async with UserMigration.from_env(before_the_application(world)) as migration:
        await migration.migrate_all(RunRequest(batch_size=100))
    execute(
        world.dsn,
        f"UPDATE {world.source_table} SET display_name = 'Changed ' || id, updated_at = updated_at + interval '1 s'",
    )


async def rewrite(run: Run) -> Outcome:
    """`migrate --all --rewrite`, through the library."""
    async with UserMigration.from_env(run.world.environment()) as migration:
        return library_outcome(await migration.migrate_all(RunRequest(batch_size=100, rewrite=True)))


async def sync_once(run: Run) -> Outcome:
    """`sync --once` after every row changed: the library's `sync_once`."""
    async with UserMigration.from_env(run.world.environment()) as migration:
        summary = await migration.sync_once(SyncRequest(batch_size=100))
    assert summary.caught_up
    assert summary.deleted == 0
    return Outcome(summary.written, summary.skipped_newer + summary.unchanged, frozenset(summary.failures))


async def verify_repair(run: Run) -> Outcome:
    """`verify --repair` after every row changed: the library's `verify`."""
    repaired: set[int] = set()
    failed: set[int] = set()

    def on_difference(difference: Any) -> None:
        if difference.repaired is True and difference.problem.value in ("missing", "different"):
            repaired.add(difference.user_id)
        elif difference.repaired is False and difference.why and difference.why.startswith("Write failed"):
            failed.add(difference.user_id)

    async with UserMigration.from_env(run.world.environment()) as migration:
        summary = await migration.verify(VerifyRequest(batch_size=100, repair=True, on_difference=on_difference))
    return Outcome(len(repaired), summary.counts.checked - len(repaired), frozenset(failed))


# The write paths this file proves; the application and every check are the same for each.
# Users per path (`users` on DynamoDB Local; on moto, whose every request costs far more CPU, `moto_users`
# where given: 450, 400, 500, 300 and 300 there before). In runs of this file under load, the fewest
# application writes of one order during a run were 7 to 9 on moto (the single-user endpoint's 100 users,
# unchanged); at their sizes here the cut paths kept 12 or more of each order on moto (--retry-failed: 9
# written before the migration reached them at 300 users, so 400). On DynamoDB Local, where fewer users
# also left fewer writes after the migration's (batch endpoint 5 at 200 users, 29 at 400), every path keeps
# its size.
WRITE_PATHS = [
    WritePath("migrate --all", 450, migrate_all_cli, moto_users=300),
    WritePath("batch endpoint", 400, batch_endpoint, moto_users=250),
    WritePath("single-user endpoint", 100, single_user_endpoint),
    WritePath("--retry-failed", 500, retry_failed, prepare=failed_by_an_earlier_run, moto_users=400),
    WritePath("--rewrite", 200, rewrite, prepare=migrated_then_rows_changed, rewrites=True, creates=False),
    WritePath("sync --once", 300, sync_once, prepare=migrated_then_rows_changed, creates=False, moto_users=250),
    WritePath(
        "verify --repair",
        300,
        verify_repair,
        prepare=migrated_then_rows_changed,
        creates=False,
        exact=False,
        moto_users=200,
    ),
]
NEEDS_HTTP_CLIENT = {"batch endpoint", "single-user endpoint"}


# --------------------------------------------------------------------------------------------
# The checks
# --------------------------------------------------------------------------------------------


def is_the_migrations_item_of(item: Item, row: SourceUser) -> bool:
    return (
        as_source_user(from_item(item)) == row
        and item.get(MIGRATION_VERSION) == {"N": str(row.version)}
        and MIGRATION_DIGEST in item
    )


@pytest.mark.parametrize("write_mode", ["live"], indirect=True)  # the claim; offline: the last test
@pytest.mark.parametrize("path", WRITE_PATHS, ids=[path.name for path in WRITE_PATHS])
# moto: one conditional PutItem per user (it has no PartiQL batches that check conditions); DynamoDB
# Local: PartiQL batches (`adapters/dynamodb/batched.py`), the probe finds them.
@pytest.mark.parametrize("dynamodb_server", ["moto", "dynamodb-local"], indirect=True)
async def test_an_application_writing_meanwhile_keeps_every_item_it_wrote(
    world: World, app_client, path: WritePath, dynamodb_server: str
):
    """On every write path: see the module docstring."""
    users = path.users_on(dynamodb_server)
    world.seed(source(users))
    earlier = await path.prepare(world) if path.prepare is not None else None
    counted_before = (await world.progress()).migrated_users
    client = await app_client() if path.name in NEEDS_HTTP_CLIENT else None
    proxy = world.dynamodb_proxy
    puts_before = len(proxy.put_order)
    statements_before = len(proxy.statement_puts)
    application = Application(world, list(range(1, users + 1)), random.Random(f"{path.name}-13"))

    application.start()
    try:
        await application.wait_for_writes(WRITES_BEFORE)
        started = time.monotonic()
        async with asyncio.timeout(60):
            outcome = await path.run(Run(world, client, earlier))
        ended = time.monotonic()
        await application.wait_for_writes(len(application.log) + WRITES_AFTER)
    finally:
        await application.stop()

    rows = await world.source_users()
    valid = {user_id for user_id, row in rows.items() if is_valid(row)}
    processed = set(earlier) if path.name == "--retry-failed" else valid
    items = await world.items()
    puts = proxy.put_order[puts_before:]  # every item this run wrote (the application's go around the proxy)
    written = set(puts)

    # Not vacuous: the application wrote during the run (and, checked below, both before and
    # after the migration on some users).
    during = application.writes_between(started, ended)
    assert len(during) >= MIN_WRITES_DURING, f"{len(during)} application writes during {ended - started:.1f} s"

    # Every item the application wrote is still exactly its item.
    replaced = sorted(user_id for user_id, item in application.written.items() if items.get(user_id) != item)
    assert not replaced, f"{len(replaced)} of {len(application.written)} application items replaced: {replaced[:10]}"
    # Every other valid user is the migration's item of its row; nothing else is stored.
    others = sorted(valid - set(application.written))
    wrong = [user_id for user_id in others if not is_the_migrations_item_of(items.get(user_id, {}), rows[user_id])]
    assert not wrong, f"users missing or not their row's item: {wrong[:10]}"
    assert set(items) == valid | set(application.written)

    # The report and the counters equal what the migration wrote, each user once.
    assert len(puts) == len(written), "a user written twice by one run"
    assert written <= processed
    assert not outcome.failed & valid, sorted(outcome.failed & valid)[:10]
    skipped = processed - written
    assert skipped <= set(application.written), sorted(skipped - set(application.written))[:10]
    if path.exact:
        assert (outcome.migrated, outcome.skipped) == (len(written), len(skipped))
    else:
        assert len(written) <= outcome.migrated, (len(written), outcome.migrated)
    if path.rewrites:
        assert (outcome.rewritten, outcome.kept) == (len(written), skipped)
    # Replacing an item counted when it was first written counts nothing.
    counted = counted_before + len(written) if path.creates else counted_before
    assert (await world.progress()).migrated_users == counted
    if client is not None:
        _, stats = await get(client, STATS)
        assert stats["total_dynamo_users"] == counted

    # The path taken: on DynamoDB Local every user write went in PartiQL batches, on moto none did.
    by_statement = proxy.statement_puts[statements_before:]
    if dynamodb_server == "dynamodb-local":
        assert sorted(by_statement) == sorted(puts), "a user written by a PutItem, not a statement"
    else:
        assert not by_statement

    # Both orders happened during the run: the application wrote users before the migration
    # reached them (so the migration had to skip or keep them), and users it had written already.
    assert (during & processed) - written, "no application write reached a user before the migration did"
    assert during & written, "no application write came after the migration had written its user"


# --------------------------------------------------------------------------------------------
# The offline mode's window, shown rather than claimed
# --------------------------------------------------------------------------------------------


@both_write_modes
async def test_an_application_write_landing_just_before_the_migrations_write_is_kept_live_and_lost_offline(
    world: World, app_client
):
    """The application writes user 12 at the last moment: after the offline mode's existence
    check, right before the write that carries user 12 reaches DynamoDB (the proxy sends the
    application's PutItem first). Live, DynamoDB refuses the migration's conditional put and the
    application's item stays. Offline, the batch write replaces it: the documented reason the
    offline mode is only for a table nothing else writes (docs/guarantees.md, "The offline mode")."""
    world.seed([valid_user(i) for i in range(1, 31)])
    client = await app_client()
    theirs = application_item(12, "unversioned", 0)

    def application_put(request: HttpMessage) -> HttpMessage:
        return request.with_json({"TableName": world.users_table, "Item": theirs}, operation="PutItem")

    injected = world.dynamodb_proxy.inject_before(
        world.write_operation, application_put, when=lambda body: 12 in request_user_ids(body)
    )
    status, report = await get(client, batch_size=30)
    assert status == 200, report
    assert injected.hits == 1
    assert injected.injected[0].start_line.startswith("HTTP/1.1 200")  # the application's write landed
    items = await world.items()
    counter = (await world.progress()).migrated_users
    if world.offline:
        assert items[12] != theirs  # lost: the known window of the offline mode
        assert (report["migrated_count"], counter) == (30, 30)  # and counted as the migration's own
    else:
        assert items[12] == theirs
        assert (report["migrated_count"], report["skipped_count"], counter) == (29, 1, 29)
    assert len(items) == 30
