"""DynamoDB unreachable, slow, losing answers, or refusing part of a batch, over HTTP on the real stack.

Whatever the fault: the request ends with 503 or with the affected users reported as failed,
every counted user is really in DynamoDB, and once the fault heals the same request writes
exactly the users that are missing. Each test runs in both write modes (see
tests/faults/conftest.py): the faults hit `world.write_operation`, the live mode's conditional
PutItems or the offline mode's BatchWriteItems.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from tests.factories import valid_user
from tests.faults.conftest import AUTH, STATS, World, both_write_modes, get, refuse_writes_of
from tests.faults.fault_proxy import request_user_ids
from tests.real_adapters import execute
from user_migration.adapters.dynamodb.codec import decode_item

INVALID_EMAIL = 17
# botocore retries a request that failed or got no answer DYNAMODB_RETRIES times (3 by default), waiting
# up to 1, 2, then 4 s between tries. Where a test proves that a request is sent again at all, or what
# is recorded once the retries are spent, not how many there are, one retry proves it in at most 1 s.
ONE_RETRY = {"dynamodb_retries": 1}


def once_per_user(only: Callable[[dict], bool] = lambda _: True):
    """A rule predicate that holds for the first request concerning each user (not its re-sends),
    among the requests for which `only` holds."""
    seen: set[int] = set()

    def first(document: dict) -> bool:
        if not only(document):
            return False
        user_ids = set(request_user_ids(document))
        new = user_ids - seen
        seen.update(user_ids)
        return bool(new)

    return first


def thirty_users() -> list:
    """Users 1..30; user 17 is invalid (never written, always reported)."""
    return [valid_user(i, email="nope") if i == INVALID_EMAIL else valid_user(i) for i in range(1, 31)]


async def assert_nothing_recorded(world: World) -> None:
    assert await world.items() == {}
    progress = await world.progress()
    assert (progress.migrated_users, progress.last_migrated_user_id, progress.resume_from_user_id) == (0, None, None)


# The live mode only: the fault stops the first request, before either mode's write path differs.
async def test_refused_dynamodb_is_503_with_nothing_recorded_and_the_same_request_writes_all_once_healed(
    world: World, app_client
):
    world.seed(thirty_users())
    client = await app_client(**ONE_RETRY)
    world.dynamodb_proxy.refuse()
    async with asyncio.timeout(30):
        for path in ("/m2/migration/users", STATS):
            status, body = await get(client, path, batch_size=30)
            assert (status, body["error"]) == (503, "target_unavailable"), body
    await assert_nothing_recorded(world)

    world.dynamodb_proxy.heal()
    status, report = await get(client, batch_size=30)
    assert status == 200, report
    assert (report["migrated_count"], report["skipped_count"], report["failed_user_ids"]) == (29, 0, [17])
    assert await world.count_and_counter() == (29, 29)
    assert all(world.dynamodb_proxy.puts[i] == 1 for i in range(1, 31) if i != INVALID_EMAIL)


@both_write_modes
async def test_connection_dropped_on_every_write_is_503_and_nothing_is_recorded(world: World, app_client):
    """DynamoDB goes away right before each write (the write never lands; offline: between the
    existence check and the write). Live, the SDK re-sends each put, then a read finds it absent."""
    world.seed(thirty_users())
    client = await app_client(**ONE_RETRY)
    world.dynamodb_proxy.hangup(world.write_operation)
    async with asyncio.timeout(30):
        status, body = await get(client, batch_size=30)
    assert (status, body["error"]) == (503, "target_unavailable"), body
    await assert_nothing_recorded(world)

    world.dynamodb_proxy.heal()
    status, report = await get(client, batch_size=30)
    assert (status, report["migrated_count"], report["skipped_count"]) == (200, 29, 0), report
    assert await world.count_and_counter() == (29, 29)


@both_write_modes
async def test_every_write_answered_500_is_503_and_nothing_is_recorded(world: World, app_client):
    """DynamoDB answers each write with an internal error (the SDK retries it, then gives up):
    the request is 503 target_unavailable, not a per-user 4xx-style failure."""
    world.seed(thirty_users())
    client = await app_client(**ONE_RETRY)
    errors = world.dynamodb_proxy.fail(world.write_operation)
    async with asyncio.timeout(40):
        status, body = await get(client, batch_size=30)
    assert (status, body["error"]) == (503, "target_unavailable"), body
    assert errors.hits >= 2  # every write was answered 500, at least one was re-sent
    await assert_nothing_recorded(world)

    world.dynamodb_proxy.heal()
    status, report = await get(client, batch_size=30)
    assert (status, report["migrated_count"], report["failed_user_ids"]) == (200, 29, [17]), report
    assert await world.count_and_counter() == (29, 29)


@both_write_modes
async def test_a_write_refused_with_a_4xx_fails_only_its_user(world: World, app_client):
    """DynamoDB refuses one user's item (400 ValidationException, not retried): 200, that user
    reported failed with DynamoDB's reason, every other user written and counted. Offline, the
    refused batch is written again one item at a time, so its other users are not failed with it."""
    world.seed(thirty_users())
    client = await app_client()
    world.dynamodb_proxy.fail(world.write_operation, status=400, code="ValidationException", user_ids={12})
    async with asyncio.timeout(30):
        status, report = await get(client, batch_size=30)
    assert status == 200, report
    assert (report["migrated_count"], report["failed_user_ids"]) == (28, [12, INVALID_EMAIL]), report
    assert "rejected by DynamoDB (ValidationException" in error_of(report, 12), report["errors"]
    assert set(await world.items()) == set(range(1, 31)) - {12, INVALID_EMAIL}
    assert await world.count_and_counter() == (28, 28)


@both_write_modes
async def test_lost_write_responses_still_count_exactly_what_landed(world: World, app_client):
    """Every write lands but its answer is lost, the SDK's re-sends too: a read then finds what
    landed (offline: one BatchGetItem; live: a GetItem of each user's item, which must be the one
    sent), and the users are counted once."""
    world.seed(thirty_users())
    client = await app_client(**ONE_RETRY)
    world.dynamodb_proxy.lose_response(world.write_operation)
    async with asyncio.timeout(40):
        status, report = await get(client, batch_size=30)
    assert status == 200, report
    assert (report["migrated_count"], report["failed_user_ids"]) == (29, [17])
    assert await world.count_and_counter() == (29, 29)

    world.dynamodb_proxy.heal()
    status, report = await get(client, batch_size=30)
    assert (report["migrated_count"], report["skipped_count"]) == (0, 29)
    assert await world.count_and_counter() == (29, 29)


@pytest.mark.parametrize("write_mode", ["live", "offline"], indirect=True)
async def test_a_lost_answer_whose_write_the_sdk_sends_again_is_counted_as_written(world: World, app_client):
    """The first answer of each write is lost and the SDK sends the same request again. Offline
    that is harmless (a batch put is idempotent). Live, the re-sent conditional put finds the item
    its first copy wrote and is refused: that user was still written by this request, once, and
    must be counted as migrated, not as skipped."""
    world.seed(thirty_users())
    client = await app_client()
    lost = world.dynamodb_proxy.lose_response(world.write_operation, when=once_per_user())
    async with asyncio.timeout(40):
        status, report = await get(client, batch_size=30)
    assert status == 200, report
    assert lost.hits >= 1
    assert (report["migrated_count"], report["skipped_count"], report["failed_user_ids"]) == (29, 0, [17]), report
    assert await world.count_and_counter() == (29, 29)
    # Live, the re-sent put wrote nothing; offline, every batch was written twice (the same items).
    times = 2 if world.offline else 1
    assert all(world.dynamodb_proxy.puts[i] == times for i in range(1, 31) if i != INVALID_EMAIL)


@both_write_modes
async def test_a_rewrite_whose_first_answer_is_lost_reports_the_users_rewritten(world: World, app_client):
    """A rewrite replaces the tool's own items with a PutItem conditional on the item being what
    it read (in both modes). When the first answer is lost and the SDK sends the put again, the
    re-sent copy finds the item it wrote itself: the user was rewritten, once, and must be
    reported so, not as "changed in DynamoDB while it was being rewritten"."""
    world.seed([valid_user(i) for i in range(1, 11)])
    client = await app_client()
    status, report = await get(client, batch_size=10)
    assert (status, report["migrated_count"]) == (200, 10), report
    execute(
        world.dsn,
        f"UPDATE {world.source_table} SET display_name = 'Fixed ' || id, updated_at = updated_at + interval '1 s'",
    )
    # Only the rewrite's puts (live, the backfill's `attribute_not_exists` puts come first: refused).
    rewrites = once_per_user(only=lambda body: "attribute_not_exists" not in body.get("ConditionExpression", ""))
    lost = world.dynamodb_proxy.lose_response("PutItem", when=rewrites)
    async with asyncio.timeout(40):
        status, report = await get(client, batch_size=10, rewrite="true")
    assert status == 200, report
    assert lost.hits == 10
    items = await world.items()
    assert all(decode_item(item)["display_name"] == f"Fixed {user_id}" for user_id, item in items.items())
    assert (report["rewritten_count"], report["not_rewritten_user_ids"]) == (10, []), report
    assert await world.count_and_counter() == (10, 10)


@both_write_modes
async def test_a_lost_answer_that_cannot_be_checked_is_counted_once_by_the_next_request(world: World, app_client):
    """Every write lands and its answer is lost, and so is the read that would find out (live: the
    GetItem of the item; offline: the second BatchGetItem, after the existence check). Nothing
    unsure is counted; the ids stay recorded as unsettled, and the next request over them finds
    the items and counts them, once."""
    world.seed(thirty_users())
    client = await app_client(**ONE_RETRY)
    proxy = world.dynamodb_proxy
    proxy.lose_response(world.write_operation)
    if world.offline:
        reads = iter(range(1_000))
        proxy.hangup("BatchGetItem", when=lambda _: next(reads) > 0)  # all but the existence check
    else:
        proxy.hangup("GetItem", user_ids=set(range(1, 31)))
    async with asyncio.timeout(40):
        status, body = await get(client, batch_size=30)
    assert (status, body.get("error")) == (503, "target_unavailable"), body
    assert len(await world.items()) == 29  # landed
    assert (await world.progress()).migrated_users == 0  # but not counted: nobody knew

    proxy.heal()
    status, report = await get(client, batch_size=30)
    assert status == 200, report
    assert report["migrated_count"] + report["skipped_count"] == 29, report
    assert await world.count_and_counter() == (29, 29)


# The live mode only: the fault stops the first request, before either mode's write path differs.
async def test_slow_dynamodb_is_waited_for(world: World, app_client):
    world.seed([valid_user(i) for i in range(1, 11)])
    client = await app_client()
    # Every answer from DynamoDB arrives this late, many times moto's own time to answer (half a second
    # made the request last 10 s on a loaded machine: the same waits, longer).
    late = 0.2
    world.dynamodb_proxy.delay(late)
    started = time.monotonic()
    async with asyncio.timeout(40):
        status, report = await get(client, batch_size=10)
    assert status == 200, report
    assert (report["migrated_count"], report["failed_count"]) == (10, 0)
    # At least two slow steps in a row (the hold, the existence check or the puts, the settle).
    assert time.monotonic() - started >= 2 * late
    assert await world.count_and_counter() == (10, 10)


def error_of(report: dict, user_id: int) -> str:
    return next(error for error in report["errors"] if error.startswith(f"User {user_id}: "))


@both_write_modes
async def test_items_left_unprocessed_are_reported_failed_and_written_once_healed(world: World, app_client):
    """Some users cannot be written on any attempt (offline: left unprocessed in their batch;
    live: their puts answered 500, see `refuse_writes_of`)."""
    world.seed(thirty_users())
    stuck = {7, 9, 26}
    client = await app_client(**ONE_RETRY)
    refuse_writes_of(world, stuck)
    async with asyncio.timeout(40):
        status, report = await get(client, batch_size=30)
    assert status == 200, report
    assert report["failed_user_ids"] == [7, 9, INVALID_EMAIL, 26]
    for user_id in stuck:
        assert error_of(report, user_id).startswith(f"User {user_id}: Write failed: "), report["errors"]
    assert report["migrated_count"] == 26
    items = await world.items()
    assert set(items) == set(range(1, 31)) - stuck - {INVALID_EMAIL}
    assert await world.count_and_counter() == (26, 26)

    world.dynamodb_proxy.heal()
    status, report = await get(client, batch_size=30)
    assert status == 200, report
    assert (report["migrated_count"], report["skipped_count"], report["failed_user_ids"]) == (3, 26, [17])
    assert await world.count_and_counter() == (29, 29)
    assert all(world.dynamodb_proxy.puts[i] == 1 for i in range(1, 31) if i != INVALID_EMAIL)


@both_write_modes
async def test_a_user_that_was_not_written_is_neither_counted_nor_lost(world: World, app_client):
    """`last_migrated_user_id` is, by the API's definition, the highest id written (here 30, with
    7 unwritten); what must not pass an unwritten user is the recorded *resume* progress, which
    test_interrupted_runs checks. Here: 7 is reported, not counted, and written by the re-run."""
    world.seed(thirty_users())
    client = await app_client(**ONE_RETRY)
    refuse_writes_of(world, {7})
    async with asyncio.timeout(40):
        status, report = await get(client, batch_size=30)
    assert (status, report["failed_user_ids"]) == (200, [7, INVALID_EMAIL]), report
    assert 7 not in await world.items()
    _, stats = await get(client, STATS)
    assert (stats["total_dynamo_users"], stats["last_migrated_user_id"]) == (28, 30)
    world.dynamodb_proxy.heal()
    status, report = await get(client, batch_size=30)
    assert (status, report["migrated_count"], report["skipped_count"]) == (200, 1, 28)
    assert await world.count_and_counter() == (29, 29)


@both_write_modes
async def test_throttling_on_some_requests_is_retried_and_succeeds(world: World, app_client):
    world.seed(thirty_users())
    client = await app_client()
    # botocore makes 4 attempts itself (max_attempts=3 means 3 retries); 5 throttles of the same
    # write (offline: the chunk of users 1-25; live: user 1's put) make the adapter retry it too.
    write_throttles = world.dynamodb_proxy.throttle(world.write_operation, times=5, user_ids={1})
    # The live mode makes no existence check (the conditional put is the check): nothing to throttle.
    check_throttles = world.dynamodb_proxy.throttle("BatchGetItem", times=2) if world.offline else None
    async with asyncio.timeout(60):
        status, report = await get(client, batch_size=30)
    assert status == 200, report
    assert (report["migrated_count"], report["failed_user_ids"]) == (29, [17])
    assert write_throttles.hits == 5
    assert check_throttles is None or check_throttles.hits == 2
    assert await world.count_and_counter() == (29, 29)
    assert all(world.dynamodb_proxy.puts[i] == 1 for i in range(1, 31) if i != INVALID_EMAIL)
    response = await client.get("/metrics", headers=AUTH)
    metrics = await response.text()
    throttles = [line for line in metrics.splitlines() if line.startswith("user_migration_dynamodb_throttles_total")]
    assert throttles, metrics
    assert float(throttles[0].split()[-1]) >= 1


@both_write_modes
async def test_throttled_on_every_attempt_fails_only_the_affected_users_or_answers_503(
    world: World, impatient_app_client
):
    """Two requests side by side:
    - a batch in which user 30's write is throttled on every attempt: offline, its whole write
      chunk (users 26-50) is reported failed; live, user 30 alone; the others are written and
      counted;
    - a single user throttled on every attempt (offline: its existence check; live: its put,
      the only one of the request): 503 target_throttled.
    The SDK client makes one attempt per call here (see `impatient_app_client`), so the adapter's
    own 8 attempts with backoff are what is exercised, in seconds instead of ~35 s.
    """
    far = 2**21  # another id bucket and range, so the two requests never wait on each other
    world.seed([*(valid_user(i) for i in range(1, 61)), valid_user(far)])  # write chunks 1-25, 26-50, 51-60
    client = await impatient_app_client()
    write_rule = world.dynamodb_proxy.throttle(world.write_operation, user_ids={30})
    check_rule = world.dynamodb_proxy.throttle("BatchGetItem" if world.offline else "PutItem", user_ids={far})
    async with asyncio.timeout(120):
        (status, report), (single_status, single) = await asyncio.gather(
            get(client, batch_size=60), get(client, user_id=far)
        )
    assert (single_status, single["error"]) == (503, "target_throttled"), single
    assert check_rule.hits == 8  # the adapter's attempts
    assert status == 200, report
    assert write_rule.hits == 8
    failed = list(range(26, 51)) if world.offline else [30]
    assert report["failed_user_ids"] == failed
    assert "throttled" in error_of(report, 30)
    items = await world.items()
    assert set(items) == set(range(1, 61)) - set(failed)
    assert await world.count_and_counter() == (60 - len(failed), 60 - len(failed))

    world.dynamodb_proxy.heal()
    status, report = await get(client, batch_size=60)
    assert (report["migrated_count"], report["skipped_count"], report["failed_count"]) == (
        len(failed),
        60 - len(failed),
        0,
    )
    status, report = await get(client, user_id=far)
    assert (status, report["migrated_count"]) == (200, 1)
    assert await world.count_and_counter() == (61, 61)


# The live mode only: the faults hit the state table, which both modes record to alike.
@pytest.mark.parametrize("fault", ["hangup", "lose_response"])
async def test_counters_equal_the_items_after_recording_progress_failed(world: World, app_client, fault):
    """The items are written, then the counter update fails (never applied / applied but its
    answer lost). The issue: counters equal the real item count once the fault heals."""
    world.seed([valid_user(i) for i in range(1, 11)])
    client = await app_client(**ONE_RETRY)
    getattr(world.dynamodb_proxy, fault)("UpdateItem", when=lambda body: "migrated_users" in str(body))
    async with asyncio.timeout(40):
        status, body = await get(client, batch_size=10)
    assert status in (200, 503), body
    world.dynamodb_proxy.heal()
    status, report = await get(client, batch_size=10)
    assert status == 200, report
    assert report["migrated_count"] + report["skipped_count"] == 10
    count, counter = await world.count_and_counter()
    assert count == 10
    assert counter == count, f"migrated_users counter is {counter} for {count} items after a {fault} fault"
