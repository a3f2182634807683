"""The lines that say a dependency's stall (`domain.observe.stall_watch`): for a person (`user-migration COMMAND: ...`)
or one JSON object per line (LOG_FORMAT=json), with the same fields in the service's logs."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterator
from typing import Any, TextIO

from user_migration.domain.observe.stall_watch import NOTICE_SECONDS, Notice, NoticeKind, StallNotices, StallWatch
from user_migration.entrypoints.logs import JsonLines, fields

stall_log = logging.getLogger("user_migration.stalls")


def notice_fields(notice: Notice) -> dict[str, Any]:
    """The structured fields of a stall line."""
    stall = notice.stall
    return {
        "event": f"dependency_{notice.kind.value}",
        "dependency": stall.dependency,
        "endpoint": stall.endpoint,
        "silent_seconds": round(stall.seconds, 1),
        "waiting_request": stall.what,
        "waiting_requests": stall.waiting,
        "retrying": stall.retrying,
    }


class StallPrinter:
    """Prints notices on `stream`: `user-migration COMMAND: text`, or one JSON object per line."""

    def __init__(self, command: str, patience_seconds: float, json_lines: bool, stream: TextIO | None = None) -> None:
        self._command = command
        self._patience_seconds = patience_seconds
        self._json_lines = json_lines
        self._stream = stream

    def __call__(self, notice: Notice) -> None:
        stream = self._stream or sys.stderr
        text = notice.text(self._patience_seconds)
        if self._json_lines:
            record = logging.LogRecord(stall_log.name, level_of(notice), __file__, 0, text, None, None)
            record.fields = notice_fields(notice)
            line = JsonLines().format(record)
        else:
            line = f"user-migration {self._command}: {text}"
        # On a terminal a progress bar may be drawn on the current line: clear it (it is redrawn at its next move).
        start = "\r\x1b[2K" if stream.isatty() else ""
        stream.write(start + line + "\n")
        stream.flush()


def level_of(notice: Notice) -> int:
    """A stall and giving up are warnings; an end of one is news."""
    return logging.INFO if notice.kind is NoticeKind.ANSWERS_AGAIN else logging.WARNING


async def log_stalls(
    watch: StallWatch, notice_seconds: float = NOTICE_SECONDS, check_seconds: float = 1.0
) -> AsyncIterator[None]:
    """While the service runs: each stall of a dependency as a log line once it lasts `notice_seconds` (the
    requests waiting on it answer 503 when their own timeouts and retries are spent; the service never gives
    up)."""
    notices = StallNotices(watch, notice_seconds=notice_seconds)

    async def say() -> None:
        while True:
            await asyncio.sleep(check_seconds)
            for notice in notices.due():
                stall_log.log(level_of(notice), notice.text(0), extra=fields(**notice_fields(notice)))

    task = asyncio.create_task(say(), name="stall log")
    try:
        yield
    finally:
        task.cancel()
        await asyncio.wait([task])
