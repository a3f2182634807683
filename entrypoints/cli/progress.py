"""A one-line progress bar on stderr: done/total, counts, users per second, ETA."""

from __future__ import annotations

from typing import TextIO

from domain.migration_run import RunProgress

_WIDTH = 24


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


def progress_line(progress: RunProgress, total: int) -> str:
    """The text of the bar for one moment of a run."""
    done = progress.users_read
    fraction = min(done / total, 1.0) if total else 1.0
    filled = round(fraction * _WIDTH)
    rate = done / progress.elapsed_seconds if progress.elapsed_seconds > 0 else 0.0
    eta = _duration((total - done) / rate) if rate > 0 and total > done else "0:00"
    return (
        f"[{'#' * filled}{'.' * (_WIDTH - filled)}] {done:,}/{total:,} {fraction:4.0%} | "
        f"migrated {progress.migrated:,} skipped {progress.skipped:,} failed {progress.failed:,} | "
        f"{rate:,.0f} users/s | ETA {eta}"
    )


class ProgressBar:
    """Redraws the progress line in place; shown only when the stream is a terminal."""

    def __init__(self, stream: TextIO, total: int) -> None:
        self._stream = stream
        self._total = total
        self._enabled = stream.isatty()
        self._drawn = False

    def __call__(self, progress: RunProgress) -> None:
        if self._enabled:
            self._stream.write("\r\x1b[2K" + progress_line(progress, self._total))
            self._stream.flush()
            self._drawn = True

    def close(self) -> None:
        """End the line so that what follows starts on a fresh one."""
        if self._drawn:
            self._stream.write("\n")
            self._stream.flush()
