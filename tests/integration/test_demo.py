"""`user-migration demo`, run as a real process: it serves the workflow on demo data, stops
everything it started on SIGTERM or SIGINT, and starts again cleanly on the same data folder."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from user_migration.domain.convert.rules import Rejection, prepare_user, user_problems
from user_migration.entrypoints.demo.data import demo_users
from user_migration.entrypoints.demo.embedded import free_port

USERS = 500
TOKEN_LINE = "Bearer token: "


class Demo:
    """One `user-migration demo` process, its stdout read on a thread (so a hang fails, not blocks)."""

    def __init__(self, data_dir: Path, port: int, env: dict[str, str] | None = None) -> None:
        base = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("DATABASE_", "MIGRATION_", "DYNAMODB_"))
        }
        self.data_dir = data_dir
        self.port = port
        self.stderr = (data_dir.parent / f"demo-{port}.err").open("w")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "user_migration.entrypoints.cli",
                "demo",
                "--users",
                str(USERS),
                "--port",
                str(port),
                "--data-dir",
                str(data_dir),
            ],
            env={**base, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def output(self) -> str:
        self.stderr.flush()
        return (
            "\n".join(self.lines) + "\n--- stderr ---\n" + (self.data_dir.parent / f"demo-{self.port}.err").read_text()
        )

    def token(self, timeout: float = 60) -> str:
        """The printed bearer token, once the demo has printed it."""
        deadline = time.monotonic() + timeout
        while True:
            for line in list(self.lines):
                if line.startswith(TOKEN_LINE):
                    return line.removeprefix(TOKEN_LINE).strip()
            assert self.process.poll() is None, f"demo exited with {self.process.returncode}:\n{self.output()}"
            assert time.monotonic() < deadline, f"no token line within {timeout:.0f} s:\n{self.output()}"
            time.sleep(0.1)

    def get(self, path: str, token: str) -> dict[str, Any]:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}", headers={"Authorization": f"Bearer {token}"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())  # type: ignore[no-any-return]

    def wait_until_serving(self, token: str, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.get("/m2/migration/stats", token)
            except OSError:
                assert self.process.poll() is None, f"demo exited with {self.process.returncode}:\n{self.output()}"
                assert time.monotonic() < deadline, f"the API did not answer within {timeout:.0f} s"
                time.sleep(0.2)

    def processes(self) -> list[psutil.Process]:
        """Everything the demo runs: its descendants, and PostgreSQL (detached by pg_ctl) with its own."""
        demo = psutil.Process(self.process.pid)
        found: list[psutil.Process] = list(demo.children(recursive=True))
        postmaster = psutil.Process(postmaster_pid(self.data_dir))
        assert postmaster.name() == "postgres"
        found += [postmaster, *postmaster.children(recursive=True)]
        return found

    def stop(self, signum: int, timeout: float = 30) -> int:
        self.process.send_signal(signum)
        try:
            return self.process.wait(timeout=timeout)
        finally:
            self._close()

    def _close(self) -> None:
        self._reader.join(timeout=5)
        if self.process.stdout is not None:
            self.process.stdout.close()
        if not self.stderr.closed:
            self.stderr.close()

    def kill(self) -> None:
        """Kill every process of this demo (a test's last resort; nothing is expected to be left)."""
        if self.process.poll() is None:
            for process in self.processes_if_any():
                process.kill()
            self.process.kill()
            self.process.wait()
        self._close()

    def processes_if_any(self) -> list[psutil.Process]:
        try:
            return self.processes()
        except (psutil.Error, OSError, ValueError, AssertionError):
            return []


def postmaster_pid(data_dir: Path) -> int:
    return int((data_dir / "postgres" / "postmaster.pid").read_text().split()[0])


def alive(process: psutil.Process) -> bool:
    try:
        # is_running() also compares the start time, so a reused pid does not count.
        return bool(process.is_running() and process.status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def wait_gone(processes: list[psutil.Process], timeout: float = 10) -> list[psutil.Process]:
    deadline = time.monotonic() + timeout
    while (left := [process for process in processes if alive(process)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def expected_failures() -> int:
    now = datetime.now(UTC)
    return sum(1 for user in demo_users(USERS) if isinstance(prepare_user(user, now), Rejection))


def test_demo_serves_the_workflow_stops_on_sigterm_and_sigint_and_restarts_cleanly(tmp_path):
    data_dir = tmp_path / "demo-data"

    # First run, on an empty folder: the whole workflow, then SIGTERM.
    demo = Demo(data_dir, free_port())
    try:
        token = demo.token()
        stats = demo.wait_until_serving(token)
        assert stats["total_postgres_users"] == USERS
        assert stats["total_dynamo_users"] == 0
        printed = "\n".join(demo.lines)
        assert f"curl -s -w '\\n' http://127.0.0.1:{demo.port}/m2/migration/stats" in printed
        assert f'-H "Authorization: Bearer {token}"' in printed
        assert "user_id=" in printed
        assert "Press Ctrl-C to stop" in printed

        migrated = failed = skipped = 0
        start: int | None = 0
        while start is not None:
            report = demo.get(f"/m2/migration/users?batch_size=100&start_user_id={start}", token)
            migrated += report["migrated_count"]
            failed += report["failed_count"]
            skipped += report["skipped_count"]
            start = report["next_start_user_id"]
        assert (migrated, skipped, failed) == (USERS - expected_failures(), 0, expected_failures())
        assert 0.005 * USERS <= failed <= 0.02 * USERS
        assert demo.get("/m2/migration/stats", token)["total_dynamo_users"] == migrated

        postmaster = postmaster_pid(data_dir)
        started = demo.processes()
        assert len(started) >= 2  # at least moto and the postmaster
        first_postmaster_file = (data_dir / "postgres" / "postmaster.pid").read_text()
        assert demo.stop(signal.SIGTERM) == 0, demo.output()
    finally:
        demo.kill()
    assert wait_gone(started) == [], f"left behind: {wait_gone(started)}"
    assert not (data_dir / "postgres" / "postmaster.pid").exists()
    assert demo.lines[-1] == "Stopped."

    # Leftovers of a killed run: a postmaster.pid whose pid now belongs to another live process
    # (this one), and pgserver's handle list still naming the dead demo.
    lines = first_postmaster_file.splitlines()
    (data_dir / "postgres" / "postmaster.pid").write_text("\n".join([str(os.getpid()), *lines[1:]]) + "\n")
    (data_dir / "postgres" / ".handle_pids.json").write_text(json.dumps([demo.process.pid]))

    # Second run on the same folder: starts cleanly, with fresh data, then SIGINT (Ctrl-C).
    second = Demo(data_dir, free_port(), env={"MIGRATION_API_TOKENS": "first-token, second-token"})
    try:
        assert second.token() == "first-token"
        stats = second.wait_until_serving("first-token")
        assert {name: stats[name] for name in list(stats)[:4]} == {
            "total_postgres_users": USERS,
            "total_dynamo_users": 0,
            "pending_migration": USERS,
            "last_migrated_user_id": None,
        }
        assert second.get("/m2/migration/users?batch_size=50", "second-token")["migrated_count"] >= 45
        started = second.processes()
        assert postmaster_pid(data_dir) != postmaster
        assert second.stop(signal.SIGINT) == 0, second.output()
    finally:
        second.kill()
    assert wait_gone(started) == [], f"left behind: {wait_gone(started)}"
    assert not (data_dir / "postgres" / "postmaster.pid").exists()


def test_demo_starts_cleanly_after_a_killed_run(tmp_path):
    data_dir = tmp_path / "demo-data"
    killed = Demo(data_dir, free_port())
    try:
        killed.wait_until_serving(killed.token())
        leftover_postmaster = psutil.Process(postmaster_pid(data_dir))
        orphans = psutil.Process(killed.process.pid).children(recursive=True)
        killed.process.kill()  # SIGKILL: no cleanup at all; PostgreSQL keeps running
        killed.process.wait()
        for orphan in orphans:  # moto's server is a plain child: only PostgreSQL is expected to stay
            orphan.kill()
        assert alive(leftover_postmaster)

        again = Demo(data_dir, free_port())
        try:
            stats = again.wait_until_serving(again.token())
            assert stats["total_postgres_users"] == USERS
            assert wait_gone([leftover_postmaster]) == []
            started = again.processes()
            assert again.stop(signal.SIGTERM) == 0, again.output()
        finally:
            again.kill()
        assert wait_gone(started) == [], f"left behind: {wait_gone(started)}"
    finally:
        killed.kill()
        if alive(leftover_postmaster):
            leftover_postmaster.kill()


def test_demo_users_are_deterministic_realistic_and_about_one_percent_invalid():
    users = demo_users(2000)
    assert users == demo_users(2000)
    assert users != demo_users(2000, seed=8)
    assert len(users) == 2000
    assert len(demo_users(0)) == 0
    assert len(demo_users(7)) == 7
    ids = [user.id for user in users]
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)

    invalid = [user for user in users if user_problems(user)]
    assert 0.005 * len(users) <= len(invalid) <= 0.02 * len(users)
    reasons = {reason.split(" at ")[0] for user in invalid for reason in user_problems(user)}
    for expected in (
        "Missing required field 'username'",
        "Invalid username format",
        "Missing required field 'email'",
        "Invalid email format",
        "Missing required field 'created_at'",
        "Invalid created_at: 'infinity' is not a point in time",
        "Invalid profile: must be a JSON object",
        "Invalid profile: empty key",
    ):
        assert expected in reasons
    assert any(reason.startswith("Invalid status '") for reason in reasons)
    assert any("significant digits (max 38)" in reason for reason in reasons)
    assert any("out of DynamoDB's range" in reason for reason in reasons)
    assert any("nesting deeper than 32 levels" in reason for reason in reasons)

    valid = [user for user in users if not user_problems(user)]
    assert {user.status for user in valid} == {"active", "suspended", "deleted"}
    assert any(user.display_name and not user.display_name.isascii() for user in valid)
    assert any(user.display_name is None for user in valid)
    assert any(isinstance(user.profile, dict) and "address" in user.profile for user in valid)
    assert len({user.username for user in valid}) == len(valid)
