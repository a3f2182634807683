"""DynamoDB servers that pytest-xdist's workers share: one DynamoDB Local JVM and one dynalite for the session,
not one per worker.

Each JVM started its own and compiled the same code again (about 20 CPU-s each over a run of the suite, on a
machine of 2 cores where the suite is bound by the CPU). Every test makes tables of its own names
(`tests.real_adapters.unique_name`) and none lists the tables, so the workers cannot see each other's. moto is
not shared: it answers one request at a time (`EmbeddedDynamoDb.serial`), and the workers would queue at it.

The controller makes a folder and names it in `TEST_SHARED_SERVERS_DIR`, which the workers inherit. The first
worker that needs a server starts it, under a lock, and writes its endpoint and process id there; the others
read them. The server outlives the worker that started it; the controller stops every server it finds there
once the session is over. Without xdist the session fixtures start and stop their servers as before.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from user_migration.entrypoints.demo.embedded import EmbeddedDynamoDb

SHARED_SERVERS_DIR = "TEST_SHARED_SERVERS_DIR"
# The shared servers this worker started, kept for its life: a server's process handle collected while the
# server runs would warn that it still does (an error in the tests). The controller stops them.
_STARTED_HERE: list[EmbeddedDynamoDb] = []


def _is_controller(config: pytest.Config) -> bool:
    """The xdist controller of a run on workers (not a worker, not a run without them)."""
    return getattr(config.option, "dist", "no") != "no" and not hasattr(config, "workerinput")


def start_sharing(config: pytest.Config) -> None:
    """In the controller: the folder the workers record their shared servers in."""
    if _is_controller(config) and not os.environ.get(SHARED_SERVERS_DIR):
        os.environ[SHARED_SERVERS_DIR] = tempfile.mkdtemp(prefix="user-migration-shared-servers-")


def stop_sharing(config: pytest.Config) -> None:
    """In the controller: stop every server the workers started, and remove the folder."""
    if not _is_controller(config):
        return
    folder = os.environ.pop(SHARED_SERVERS_DIR, None)
    if folder is None:
        return
    for record in Path(folder).glob("*.json"):
        _stop(json.loads(record.read_text())["pid"])
    shutil.rmtree(folder, ignore_errors=True)


def _stop(pid: int) -> None:
    """Terminate the process, then kill it if it still runs after 10 s."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while _running(pid):
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                return
            time.sleep(0.05)


def _running(pid: int) -> bool:
    """Whether the process runs: not gone, and not a zombie (its parent, the worker that started it, has
    exited, and whoever inherited it may reap it late or never)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # no /proc here: running, as far as the kernel says
        return True
    return stat.rpartition(")")[2].split()[0] != "Z"


@contextlib.contextmanager
def session_server(server: EmbeddedDynamoDb, shared_as: str | None) -> Iterator[str]:
    """The endpoint of `server` for this session: under xdist, when `shared_as` names it, the workers' shared
    one, started by the first worker asking; otherwise `server`, started now and stopped at the end."""
    folder = os.environ.get(SHARED_SERVERS_DIR)
    if not folder or shared_as is None:
        server.start()
        try:
            yield server.endpoint_url
        finally:
            server.stop()
        return
    record = Path(folder) / f"{shared_as}.json"
    with open(Path(folder) / f"{shared_as}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not record.exists():
            _STARTED_HERE.append(server.start())
            record.write_text(json.dumps({"pid": server.pid, "endpoint": server.endpoint_url}))
    yield json.loads(record.read_text())["endpoint"]
