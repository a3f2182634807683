"""N worker processes on this machine (`--workers N`): each is the same command with
`--workers 1 --json`, as on N hosts; their summaries are read from the last line of their output.
They run in a session of their own, and a SIGINT or SIGTERM of this process is handed to each
of them once (a terminal's Ctrl-C reaches only this process), so each stops as it would alone."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from user_migration.entrypoints.cli.exit_codes import EXIT_OK

CLI = [sys.executable, "-c", "from user_migration.entrypoints.cli.command import run; run()"]


async def run_worker_processes(
    command: list[str], workers: int, out_option: str, out: Path | None = None
) -> tuple[list[dict[str, Any]], int]:
    """Run `workers` copies of `user-migration <command>` (each with `out_option <out>.<n>` when
    `out` is given, those parts joined into `out` after), wait for all of them; returns their
    summaries and the highest exit code."""
    parts = [Path(f"{out}.{n}") for n in range(workers)] if out is not None else []
    processes = [
        await asyncio.create_subprocess_exec(
            *CLI,
            *command,
            *([out_option, str(parts[n])] if parts else []),
            stdout=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
        for n in range(workers)
    ]

    def hand_on(signal_number: int) -> None:
        for process in processes:
            if process.returncode is None:
                process.send_signal(signal_number)

    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signal_number, hand_on, signal_number)
    try:
        results = await asyncio.gather(*(process.communicate() for process in processes))
    finally:
        for signal_number in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signal_number)
    summaries: list[dict[str, Any]] = []
    for process, (printed, _) in zip(processes, results, strict=True):
        lines = printed.decode().strip().splitlines()
        if lines:
            summaries.append(json.loads(lines[-1]))
        else:
            print(f"a worker ended with exit code {process.returncode} and no summary", file=sys.stderr)
    if out is not None and parts:
        join_parts(out, parts)
    return summaries, max([process.returncode or 0 for process in processes], default=0)


async def run_and_add_up(
    command: list[str],
    arguments: argparse.Namespace,
    added_up: Callable[[list[dict[str, Any]]], dict[str, Any]],
    print_human: Callable[[dict[str, Any]], None],
    out_option: str,
    out: Path | None = None,
    restart: Callable[[], Awaitable[object]] | None = None,
) -> int:
    """Run `arguments.workers` copies of a job's `--workers 1 --json` command (with the mapping file
    given), after `restart` here, once, when `--restart` is asked; add their summaries up and print
    the totals, as JSON with `--json`; the highest exit code."""
    if restart is not None and arguments.restart:
        await restart()
    if arguments.mapping:
        command = [*command, "--mapping", str(arguments.mapping)]
    summaries, exit_code = await run_worker_processes(command, arguments.workers, out_option, out)
    total = added_up(summaries)
    if arguments.json:
        print(json.dumps(total))
    else:
        print_human(total)
    return exit_code or EXIT_OK


def join_parts(path: Path, parts: list[Path]) -> None:
    """The workers' output files, as one (theirs removed)."""
    path.write_text("".join(part.read_text() for part in parts if part.exists()))
    for part in parts:
        part.unlink(missing_ok=True)
