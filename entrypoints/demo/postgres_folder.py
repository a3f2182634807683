"""A reusable data folder for an embedded PostgreSQL (the demo's): whatever an earlier run left
behind — a server still running after its owner was killed, a stale postmaster.pid or socket
lock, pgserver's list of handles — never breaks the next start, and a stop always stops.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import time
from contextlib import suppress
from pathlib import Path
from typing import Any

from user_migration.entrypoints.demo.embedded import EmbeddedPostgres, EmbeddedServerError

_log = logging.getLogger(__name__)
_HANDLE_LIST = ".handle_pids.json"  # pgserver's list of the processes using a data folder


def live_process(pid: int) -> Any:
    """A live (not zombie) psutil process with this pid, or None."""
    import psutil

    try:
        process = psutil.Process(pid)
        return None if process.status() == psutil.STATUS_ZOMBIE else process
    except psutil.Error:
        return None


def _postmaster_lines(pgdata: Path) -> list[str]:
    try:
        return (pgdata / "postmaster.pid").read_text().splitlines()
    except OSError:
        return []


def postmaster_pid(pgdata: Path) -> int | None:
    lines = _postmaster_lines(pgdata)
    try:
        return int(lines[0])
    except (IndexError, ValueError):
        return None


def _is_postmaster_of(process: Any, pgdata: Path) -> bool:
    try:
        return bool(process.name() == "postgres" and str(pgdata) in process.cmdline())
    except Exception:  # psutil.Error: gone, or not ours to look at
        return False


def _alive(process: Any) -> bool:
    import psutil

    try:
        # is_running() also compares the start time: a reused pid is not the process we knew.
        return bool(process.is_running() and process.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def _wait_gone(process: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _alive(process):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _stop_postmaster(process: Any) -> None:
    """Fast shutdown (SIGINT) of a postmaster pg_ctl did not stop; SIGKILL if it hangs."""
    if not _alive(process):
        return
    with suppress(Exception):
        process.send_signal(signal.SIGINT)
    if not _wait_gone(process, 15):
        with suppress(Exception):
            process.kill()
        _wait_gone(process, 5)


def other_users(pgdata: Path) -> list[int]:
    """Live processes still registered in pgserver's handle list (a demo running right now)."""
    path = pgdata / _HANDLE_LIST
    try:
        pids = [int(pid) for pid in json.loads(path.read_text())]
        written = path.stat().st_mtime
    except (OSError, ValueError, TypeError):
        return []
    others = []
    for pid in pids:
        process = live_process(pid) if pid != os.getpid() else None
        # A process created after the list was written cannot be the one that wrote itself in.
        if process is not None and process.create_time() <= written + 1:
            others.append(pid)
    return others


def _clear_leftovers(pgdata: Path) -> None:
    """Stop a postmaster left running by a killed run; drop stale pid/lock files and handles."""
    # pgserver stops the server only when the handle list holds nothing but this process.
    (pgdata / _HANDLE_LIST).unlink(missing_ok=True)
    pid = postmaster_pid(pgdata)
    process = live_process(pid) if pid is not None else None
    if process is not None and _is_postmaster_of(process, pgdata):
        _log.info(f"Stopping a PostgreSQL server left running by an earlier run (pid {pid})…")
        _stop_postmaster(process)
    lines = _postmaster_lines(pgdata)  # a clean shutdown has removed the file
    if not lines:
        return
    survivor = live_process(pid) if pid is not None else None
    if survivor is not None and _is_postmaster_of(survivor, pgdata):
        return  # it would not stop: leave its files alone, pgserver will use it
    # The file names a pid that is dead or (after a reboot) belongs to another process: pgserver
    # would take that for a running server, PostgreSQL would refuse to start. Same for socket locks.
    socket_dirs = {pgdata, *([Path(lines[4].strip())] if len(lines) > 4 and lines[4].strip() else [])}
    (pgdata / "postmaster.pid").unlink(missing_ok=True)
    for folder in socket_dirs:
        for stale in folder.glob(".s.PGSQL.*"):
            with suppress(OSError):
                stale.unlink()


def _forget_pgserver_instance(pgdata: Path) -> None:
    # pgserver caches a server per folder, even one that failed to start; a retry needs a new one.
    from pgserver.postgres_server import PostgresServer

    with suppress(Exception):
        PostgresServer._instances.pop(pgdata.resolve(), None)


def start_postgres(pgdata: Path) -> EmbeddedPostgres:
    _clear_leftovers(pgdata)
    try:
        return EmbeddedPostgres(pgdata).start()
    except EmbeddedServerError as error:
        _log.info(f"PostgreSQL did not start on the existing data ({error}); starting over with an empty folder…")
    _forget_pgserver_instance(pgdata)
    leftover = postmaster_pid(pgdata)
    if leftover is not None and (process := live_process(leftover)) is not None and _is_postmaster_of(process, pgdata):
        _stop_postmaster(process)
    shutil.rmtree(pgdata, ignore_errors=True)
    return EmbeddedPostgres(pgdata).start()


def stop_postgres(server: EmbeddedPostgres | None, postmaster: Any, pgdata: Path) -> None:
    """Stop the server we started, even when its start was interrupted half-way."""
    if server is not None:
        try:
            server.stop()
        except Exception as error:  # still make sure the postmaster is gone
            _log.warning("pgserver could not stop PostgreSQL cleanly: %s", error)
    if postmaster is None:
        # Interrupted during the start: whatever runs on our folder now was started by us
        # (leftovers of earlier runs were stopped before).
        pid = postmaster_pid(pgdata)
        candidate = live_process(pid) if pid is not None else None
        postmaster = candidate if candidate is not None and _is_postmaster_of(candidate, pgdata) else None
    if postmaster is not None:
        _stop_postmaster(postmaster)
