"""Stalls said out loud by the command line: a command runs watched, and a dependency that stops answering
gets a line on stderr within `NOTICE_SECONDS` (a terminal or not; a JSON log line under LOG_FORMAT=json), again
every `REPEAT_SECONDS`, one when it answers again, and after DEPENDENCY_PATIENCE_SECONDS the command ends
with exit 3 naming the dependency and its endpoint."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, NoReturn

from user_migration.domain.errors import DependencyUnavailable, SourceUnavailable, TargetUnavailable
from user_migration.domain.observe.stall_watch import Notice, NoticeKind, StallNotices

# After giving up, the command's own clean-up (its leases, its clients) gets this long before the process ends
# without it (as a crash would: the next run settles what it left).
CLEANUP_GRACE_SECONDS = 5.0
_CHECK_SECONDS = 1.0


def unavailable(notice: Notice, patience_seconds: float) -> DependencyUnavailable:
    """The error a command ends with when it gave up on the dependency of `notice`."""
    kind = SourceUnavailable if notice.stall.dependency == "PostgreSQL" else TargetUnavailable
    return kind(notice.text(patience_seconds))


async def watched(
    work: Coroutine[Any, Any, int],
    notices: StallNotices,
    say: Callable[[Notice], None],
    abandon: Callable[[DependencyUnavailable], NoReturn],
    grace_seconds: float = CLEANUP_GRACE_SECONDS,
) -> int:
    """Run `work`, saying its dependencies' stalls; when one reaches the patience, `work` is cancelled and the
    command fails with `DependencyUnavailable` (or, when `work` does not end within `grace_seconds`, `abandon`
    ends the process with it)."""
    task = asyncio.ensure_future(work)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=_CHECK_SECONDS)
            if done:
                return task.result()
            for notice in notices.due():
                say(notice)
                if notice.kind is NoticeKind.GIVING_UP:
                    error = unavailable(notice, notices.patience_seconds)
                    task.cancel()
                    done, _ = await asyncio.wait({task}, timeout=grace_seconds)
                    if not done:
                        abandon(error)
                    if not task.cancelled():
                        task.exception()  # what its clean-up ran into: the error above says it better
                    raise error
    finally:
        if not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=grace_seconds)
