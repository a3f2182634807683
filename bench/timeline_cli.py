"""`bench.peak_rss_cli` with every DynamoDB request's start and end written out (the requests in
flight over the run: how long DynamoDB Local sits idle between the project's steps).

    BENCH_TIMELINE_FILE=/tmp/t.json BENCH_PEAK_RSS_FILE=/tmp/x python -m bench.timeline_cli migrate --all --json

Each request is timed around aiobotocore's `AioEndpoint._send` (the HTTP exchange, retries apart),
as `[operation, start, end]` in seconds from the call of `main`; the file also holds the end of
`main`. Counted in this process, so nothing sits between the client and the server. With
BENCH_PROFILE_FILE, `main` runs under cProfile (CPU timer) and its statistics are dumped there.
"""

from __future__ import annotations

import cProfile
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from aiobotocore.endpoint import AioEndpoint

from bench import peak_rss_cli

_T0 = time.perf_counter()
_SPANS: list[tuple[str, float, float]] = []
_send = AioEndpoint._send


async def _timed_send(self: AioEndpoint, request: Any) -> Any:
    started = time.perf_counter()
    try:
        return await _send(self, request)
    finally:
        target = request.headers.get("X-Amz-Target", b"")
        target = target.decode() if isinstance(target, bytes) else str(target)
        _SPANS.append((target.rpartition(".")[2], started - _T0, time.perf_counter() - _T0))


if __name__ == "__main__":
    AioEndpoint._send = _timed_send  # type: ignore[method-assign]
    cpu = time.process_time()
    _T0 = time.perf_counter()
    profile_file = os.environ.get("BENCH_PROFILE_FILE")
    profiler = cProfile.Profile(time.process_time) if profile_file else None
    try:
        code = profiler.runcall(peak_rss_cli.main, sys.argv[1:]) if profiler else peak_rss_cli.main(sys.argv[1:])
    finally:
        if profiler is not None and profile_file:
            profiler.dump_stats(profile_file)
        ended = time.perf_counter() - _T0
        Path(os.environ["BENCH_PEAK_RSS_FILE"]).write_text(str(peak_rss_cli.peak_rss_kb()))
        if os.environ.get("BENCH_CPU_FILE"):
            Path(os.environ["BENCH_CPU_FILE"]).write_text(str(time.process_time() - cpu))
        Path(os.environ["BENCH_TIMELINE_FILE"]).write_text(json.dumps({"end": ended, "spans": _SPANS}))
    sys.exit(code)
