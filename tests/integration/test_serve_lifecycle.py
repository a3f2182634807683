"""`user-migration serve` as operators run it: JSON logs, request ids, graceful shutdown."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest

from tests.factories import valid_user
from tests.real_adapters import (
    execute,
    fresh_environment,
    insert_users,
    unique_name,
)
from tests.real_adapters import quote_table_name as quoted
from user_migration.entrypoints.demo.embedded import free_port

TOKEN = "lifecycle-token-3141592653"


class Server:
    def __init__(self, env: dict[str, str]) -> None:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "MIGRATION_", "LOG_"))}
        self.port = int(env["PORT"])
        self.process = subprocess.Popen(
            [sys.executable, "-m", "user_migration.entrypoints.cli", "serve"],
            env={**base, **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self.terminated = False
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line)

    def get(self, path: str, headers: dict[str, str] | None = None, timeout: float = 10) -> tuple[int, dict, dict]:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, dict(response.headers), json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), json.loads(error.read())

    def wait_until_listening(self) -> None:
        deadline = time.monotonic() + 30
        while True:
            try:
                self.get("/healthz")
                return
            except OSError:
                assert self.process.poll() is None, "".join(self.lines)
                assert time.monotonic() < deadline, "serve did not listen within 30 s"
                time.sleep(0.1)

    def records(self) -> list[dict]:
        return [json.loads(line) for line in self.lines if line.startswith("{")]

    def terminate(self) -> None:
        """SIGTERM, once: a second one while the process is exiting would kill it."""
        if not self.terminated and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.terminated = True

    def stop(self) -> int:
        self.terminate()
        code = self.process.wait(timeout=60)
        self._reader.join(timeout=5)
        if self.process.stderr is not None:
            self.process.stderr.close()
        return code


@pytest.fixture
async def env(postgres_dsn, dynamodb_endpoint, dynamodb) -> dict[str, str]:
    return {
        **await fresh_environment(postgres_dsn, dynamodb_endpoint, dynamodb),
        "MIGRATION_API_TOKENS": f"{TOKEN},another-token",
        "HOST": "127.0.0.1",
        "PORT": str(free_port()),
        "LOG_FORMAT": "json",
    }


def test_json_logs_carry_request_ids_and_no_secrets(env):
    insert_users(
        env["DATABASE_URL"], env["SOURCE_TABLE"], [valid_user(i) for i in range(1, 4)] + [valid_user(4, email="x")]
    )
    server = Server({**env, "DATABASE_URL": env["DATABASE_URL"]})
    try:
        server.wait_until_listening()
        status, headers, report = server.get(
            "/m2/migration/users?batch_size=10",
            headers={"Authorization": f"Bearer {TOKEN}", "X-Request-ID": "req-42"},
        )
        assert (status, headers["X-Request-ID"], report["migrated_count"]) == (200, "req-42", 3)
        assert server.get("/m2/migration/stats", headers={"Authorization": "Bearer wrong"})[0] == 401
    finally:
        assert server.stop() == 0
    records = server.records()
    starting = next(r for r in records if r["message"] == "starting")
    assert starting["configuration"]["api_tokens"] == "2 token(s)"
    assert starting["configuration"]["source_table"] == env["SOURCE_TABLE"]
    batch = next(r for r in records if r["message"] == "batch")
    assert batch["request_id"] == "req-42"
    assert (batch["migrated"], batch["failed"], batch["failed_user_ids"], batch["mode"]) == (3, 1, [4], "batch")
    access = [r for r in records if r["logger"] == "user_migration.access"]
    assert {(r["path"], r["status"]) for r in access} >= {("/m2/migration/users", 200), ("/m2/migration/stats", 401)}
    assert next(r for r in access if r["path"] == "/m2/migration/users")["request_id"] == "req-42"
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
    everything = "".join(server.lines)
    assert TOKEN not in everything
    assert "another-token" not in everything
    assert "user1@example.com" not in everything  # no PII beyond ids


def test_startup_log_hides_the_database_password(env):
    server = Server({**env, "DATABASE_URL": "postgresql://migrator:s3cret-pw@127.0.0.1:9/app"})
    try:
        server.wait_until_listening()
    finally:
        assert server.stop() == 0
    starting = next(r for r in server.records() if r["message"] == "starting")
    assert starting["configuration"]["database_url"] == "postgresql://migrator:***@127.0.0.1:9/app"
    assert "s3cret-pw" not in "".join(server.lines)


def test_text_log_format(env):
    server = Server({**env, "LOG_FORMAT": "text", "LOG_LEVEL": "debug"})
    try:
        server.wait_until_listening()
    finally:
        assert server.stop() == 0
    assert any(" INFO user_migration.serve starting" in line for line in server.lines)
    assert not server.records()


def test_sigterm_turns_readiness_503_first_and_lets_requests_in_flight_finish(env):
    insert_users(env["DATABASE_URL"], env["SOURCE_TABLE"], [valid_user(i) for i in range(1, 6)])
    slow = unique_name("slow_users")
    execute(
        env["DATABASE_URL"],
        f"CREATE VIEW {quoted(slow)} AS SELECT * FROM {quoted(env['SOURCE_TABLE'])} WHERE pg_sleep(0.4) IS NOT NULL",
    )
    server = Server({**env, "SOURCE_TABLE": slow, "SHUTDOWN_DRAIN_SECONDS": "1.5", "SHUTDOWN_GRACE_SECONDS": "20"})
    server.wait_until_listening()
    assert server.get("/readyz")[0] == 200
    in_flight: dict = {}

    def migrate() -> None:
        in_flight["result"] = server.get(
            "/m2/migration/users?batch_size=10", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
        )

    request = threading.Thread(target=migrate)
    request.start()
    time.sleep(0.3)  # the request is now waiting on PostgreSQL (5 rows x 0.4 s)
    server.terminate()
    time.sleep(0.3)
    status, _, body = server.get("/readyz")
    assert (status, body["status"]) == (503, "shutting_down")
    assert server.get("/healthz")[0] == 200
    request.join(timeout=30)
    status, _, report = in_flight["result"]
    assert (status, report["migrated_count"]) == (200, 5)
    assert server.stop() == 0
    messages = [r["message"] for r in server.records()]
    assert messages.index("shutting down") < messages.index("stopped")
