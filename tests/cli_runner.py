"""`user-migration` run in the test process: the CLI's entry function (`main`) with the given environment and
arguments, its stdout and stderr captured; the same shape as `subprocess.run` (exit code, stdout, stderr).

A CLI process costs about 0.8 s of CPU in imports alone; where the process itself is not what a test proves,
this runs the same code without it. Where the process is the point (signals, kill -9, `--workers`, which
starts worker processes, `serve`, `demo`), tests start a real one (`command`, `run_process`).

In an async test (a running event loop in this thread) the command runs in a thread of its own, as the CLI
runs its own loop (`asyncio.run`); the test waits for it, as it waited for the process. Off the main thread a
loop cannot take signals, so there the CLI's SIGINT/SIGTERM handlers are not installed (no signal reaches an
in-process command: the tests of signals use processes). The environment is the command's for the call and
restored after it; an `os._exit` (the CLI abandoning a command whose clean-up does not end) ends the call
with that exit code instead of the test process.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import io
import os
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from typing import Any
from unittest import mock

from user_migration.entrypoints.cli.main import main

# Settings of the test process's own environment that a command must not inherit: each test says its own.
NOT_INHERITED = ("DATABASE_", "DYNAMODB_", "SOURCE_", "MIGRATION_", "CDC_")
# Commands that serve until a signal: the in-process runner refuses them (tests start them as processes).
PROCESS_ONLY = ("serve", "demo")
TIMEOUT_SECONDS = 180


def command(*arguments: str) -> list[str]:
    """`user-migration ARGUMENTS` as a process's command line."""
    return [sys.executable, "-m", "user_migration.entrypoints.cli", *arguments]


def process_environment(env: Mapping[str, str], environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The test process's environment (`environ`) without its own settings, and `env`."""
    return {**{k: v for k, v in environ.items() if not k.startswith(NOT_INHERITED)}, **env}


def run_process(env: Mapping[str, str], *arguments: str) -> subprocess.CompletedProcess[str]:
    """`user-migration ARGUMENTS` as a real process; waits for it."""
    return subprocess.run(
        command(*arguments),
        env=process_environment(env),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        check=False,
    )


class _Exited(BaseException):
    """`os._exit(code)` called by the command."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def _exit(code: int) -> None:
    raise _Exited(code)


_add_signal_handler = asyncio.unix_events._UnixSelectorEventLoop.add_signal_handler
_remove_signal_handler = asyncio.unix_events._UnixSelectorEventLoop.remove_signal_handler


def _add_on_main_thread(loop: Any, signal_number: int, callback: Any, *args: Any) -> None:
    if threading.current_thread() is threading.main_thread():
        _add_signal_handler(loop, signal_number, callback, *args)


def _remove_on_main_thread(loop: Any, signal_number: int) -> bool:
    if threading.current_thread() is threading.main_thread():
        return bool(_remove_signal_handler(loop, signal_number))
    return False


@contextlib.contextmanager
def _environment(env: Mapping[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(process_environment(env, saved))
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextlib.contextmanager
def _collector_as_it_was() -> Iterator[None]:
    """The garbage collector as the test process had it: a CLI run freezes what it holds and collects
    the youngest generation less often (`entrypoints.heap`), which a process of its own keeps to itself."""
    thresholds = gc.get_threshold()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


def cli(env: Mapping[str, str], *arguments: str) -> subprocess.CompletedProcess[str]:
    """`user-migration ARGUMENTS` in this process, under `env` (and the test process's environment without its
    own settings); its exit code, stdout and stderr."""
    assert not arguments or arguments[0] not in PROCESS_ONLY, f"{arguments[0]} needs a real process: run_process"
    stdout, stderr = io.StringIO(), io.StringIO()
    outcome: dict[str, int | BaseException] = {}

    def run() -> None:
        try:
            outcome["code"] = main(list(arguments))
        except _Exited as exited:
            outcome["code"] = exited.code
        except SystemExit as exit_:  # argparse's usage errors
            outcome["code"] = exit_.code if isinstance(exit_.code, int) else 1
            if isinstance(exit_.code, str):
                print(exit_.code, file=sys.stderr)
        except BaseException as error:  # handed to the test
            outcome["error"] = error

    with (
        _environment(env),
        _collector_as_it_was(),
        contextlib.redirect_stdout(stdout),
        contextlib.redirect_stderr(stderr),
        mock.patch.object(os, "_exit", _exit),
        mock.patch.object(asyncio.unix_events._UnixSelectorEventLoop, "add_signal_handler", _add_on_main_thread),
        mock.patch.object(asyncio.unix_events._UnixSelectorEventLoop, "remove_signal_handler", _remove_on_main_thread),
    ):
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            run()
        else:
            thread = threading.Thread(target=run, name="user-migration", daemon=True)
            thread.start()
            thread.join(TIMEOUT_SECONDS)
            assert not thread.is_alive(), f"user-migration {' '.join(arguments)} did not end in {TIMEOUT_SECONDS} s"
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    code = int(outcome["code"])  # type: ignore[arg-type]
    return subprocess.CompletedProcess(["user-migration", *arguments], code, stdout.getvalue(), stderr.getvalue())


async def cli_beside(env: Mapping[str, str], *arguments: str) -> subprocess.CompletedProcess[str]:
    """`cli` in a thread while the test's event loop goes on (its tasks run meanwhile, as beside a process)."""
    return await asyncio.to_thread(cli, env, *arguments)
