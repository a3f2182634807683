"""A one-line progress display on stderr: done/total, counts, users per second, ETA.

On a terminal the line is redrawn in place; without one (CI, a container's log) it is printed as a line of
its own at least every `LOG_INTERVAL_SECONDS` (the last text again when nothing moved), and no more often.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Generic, TextIO, TypeVar

from user_migration.domain.migrate.run import RunProgress

_WIDTH = 24
P = TypeVar("P")
LOG_INTERVAL_SECONDS = 30.0


def duration_text(seconds: float) -> str:
    """`m:ss`, or `h:mm:ss` from an hour on."""
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


def bar_text(done: int, total: int, counts: str, elapsed_seconds: float) -> str:
    """A bar of `done` out of `total`, the counts, the rate and the time left."""
    fraction = min(done / total, 1.0) if total else 1.0
    filled = round(fraction * _WIDTH)
    rate = done / elapsed_seconds if elapsed_seconds > 0 else 0.0
    eta = duration_text((total - done) / rate) if rate > 0 and total > done else "0:00"
    return (
        f"[{'#' * filled}{'.' * (_WIDTH - filled)}] {done:,}/{total:,} {fraction:4.0%} | "
        f"{counts} | {rate:,.0f} users/s | ETA {eta}"
    )


def count_line(done: int, elapsed_seconds: float, counts: str) -> str:
    """The text of a count for work whose total is not known in advance."""
    rate = done / elapsed_seconds if elapsed_seconds > 0 else 0.0
    return f"{done:,} done | {counts} | {rate:,.0f}/s | {duration_text(elapsed_seconds)}"


def progress_line(progress: RunProgress, total: int) -> str:
    """The text of the bar for one moment of a run."""
    counts = f"migrated {progress.migrated:,} skipped {progress.skipped:,} failed {progress.failed:,}"
    if not total:  # not counted (no terminal), or a worker's share of a run: no bar to fill
        return count_line(progress.users_read, progress.elapsed_seconds, counts)
    return bar_text(progress.users_read, total, counts, progress.elapsed_seconds)


class StatusLine:
    """One line redrawn in place on a terminal; otherwise a line of its own every `interval_seconds`
    (as long as it is open, so that a log shows the command is alive even when nothing moves)."""

    def __init__(
        self,
        stream: TextIO,
        interval_seconds: float = LOG_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stream = stream
        self._enabled = stream.isatty()
        self._drawn = False
        self._interval_seconds = interval_seconds
        self._clock = clock
        self._started_at = self._logged_at = clock()
        self._text: str | None = None
        self._ticker: asyncio.Task[None] | None = None
        if not self._enabled:
            with contextlib.suppress(RuntimeError):  # no event loop: lines only when `show` is called
                self._ticker = asyncio.get_running_loop().create_task(self._tick_every_second())

    def show(self, text: str) -> None:
        """Replace the line with `text`."""
        if self._enabled:
            self._stream.write("\r\x1b[2K" + text)
            self._stream.flush()
            self._drawn = True
            return
        self._text = text
        self.tick()

    def tick(self) -> None:
        """Without a terminal: print the last text when the last line is `interval_seconds` old."""
        now = self._clock()
        if self._enabled or now - self._logged_at < self._interval_seconds:
            return
        text = self._text or f"working for {duration_text(now - self._started_at)}, no progress reported yet"
        self._stream.write(text + "\n")
        self._stream.flush()
        self._logged_at = now

    async def _tick_every_second(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self.tick()

    def close(self) -> None:
        """End the line so that what follows starts on a fresh one."""
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None
        if self._drawn:
            self._stream.write("\n")
            self._stream.flush()
            self._drawn = False


class ProgressBar(StatusLine, Generic[P]):
    """A progress out of `total`, as a bar whose text is `line`'s (`progress_line` for a whole run)."""

    def __init__(self, stream: TextIO, total: int, line: Callable[[P, int], str]) -> None:
        super().__init__(stream)
        self._total = total
        self._line = line

    def __call__(self, progress: P) -> None:
        self.show(self._line(progress, self._total))
