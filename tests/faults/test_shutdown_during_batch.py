"""SIGTERM while `user-migration serve` is in the middle of writing a batch to a slow DynamoDB.

The server stops accepting connections, finishes (or abandons) the batch cleanly within a bounded
time and exits 0; afterwards every user counted in the progress is really in DynamoDB and the
highest recorded id is one that was written. In both write modes: the batch's writes are 200
conditional PutItems (live) or 8 BatchWriteItems of 25 (offline), each answer delayed alike.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

from tests.factories import valid_user
from tests.faults.conftest import AUTH, World, get


def fire(url: str, result: dict[str, Any]) -> threading.Thread:
    """GET `url` in a thread; `result` gets ("status", body) or ("error", exception)."""

    def run() -> None:
        request = urllib.request.Request(url, headers=AUTH)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                result["response"] = (response.status, json.loads(response.read()))
        except urllib.error.HTTPError as error:
            result["response"] = (error.code, json.loads(error.read()))
            error.close()
        except OSError as error:
            result["error"] = error

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def refuses_connections(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return False
    except OSError:
        return True


# The live mode only: both modes' writes are shielded from the shutdown by the same mechanism
# (`WritesInFlight`); the offline one ran here before the live mode existed.
# A batch abandoned at shutdown leaves its hold for the next server to wait out (`HOLD_LEASE_SECONDS`,
# 10 s in `world`): 4 s when the grace is shorter than the batch, since how long is not what is proved.
@pytest.mark.parametrize(
    ("grace", "delay", "hold"),
    [(20.0, 0.5, "10"), (1.0, 2.0, "4")],
    ids=["grace-long-enough-to-finish", "grace-shorter-than-the-batch"],
)
async def test_sigterm_mid_batch_exits_in_bounded_time_with_counters_equal_to_the_items(
    world: World, serve_process, app_client, grace: float, delay: float, hold: str
):
    world.seed([valid_user(i) for i in range(1, 201)])  # offline: 8 write chunks of 25; live: 200 puts
    server = serve_process(
        world.environment(SHUTDOWN_GRACE_SECONDS=str(grace), SHUTDOWN_DRAIN_SECONDS="0", HOLD_LEASE_SECONDS=hold)
    )
    server.wait_until_listening()
    world.dynamodb_proxy.delay(delay)

    result: dict[str, Any] = {}
    request = fire(f"{server.url}/m2/migration/users?batch_size=200", result)
    deadline = time.monotonic() + 30
    while world.dynamodb_proxy.operations[world.write_operation] == 0:  # the batch is writing now
        assert time.monotonic() < deadline, "the batch never started writing"
        assert server.process.poll() is None, "".join(server.lines)
        await asyncio.sleep(0.02)
    signalled = time.monotonic()
    server.terminate()

    # It stops accepting at once, while the batch is still in flight.
    deadline = time.monotonic() + 3
    while not refuses_connections(server.port):
        assert time.monotonic() < deadline, "still accepting connections 3 s after SIGTERM"
        await asyncio.sleep(0.05)

    code = server.wait(timeout=grace + 15)
    took = time.monotonic() - signalled
    request.join(timeout=30)
    assert code == 0, "".join(server.lines)
    assert took < grace + 10, f"exited {took:.1f}s after SIGTERM (grace {grace}s)"
    assert "Traceback" not in "".join(server.lines), "".join(server.lines)

    world.dynamodb_proxy.heal()
    items = await world.items()
    progress = await world.progress()
    if grace > 20 * delay:  # plenty of time: the batch was finished and answered
        assert result.get("response", (None, None))[0] == 200, result
        assert result["response"][1]["migrated_count"] == 200
        assert len(items) == 200
    if grace > 20 * delay:
        assert progress.migrated_users == len(items)
    else:
        # The write outlived the grace period and was abandoned: its intent stays recorded, so
        # nothing unwritten is counted now, and the next holder of these ids counts what landed.
        assert progress.migrated_users <= len(items), (
            f"{progress.migrated_users} users counted but {len(items)} items in DynamoDB after shutdown"
        )
    if progress.last_migrated_user_id is not None:
        assert progress.last_migrated_user_id in items

    # And whatever was abandoned, the same request later writes exactly the rest: to the service in this
    # process (the signalled process was the point above).
    later = await app_client()
    async with asyncio.timeout(60):
        status, report = await get(later, batch_size=200)
    assert status == 200, report
    assert (report["migrated_count"], report["skipped_count"]) == (200 - len(items), len(items))
    assert await world.count_and_counter() == (200, 200)
