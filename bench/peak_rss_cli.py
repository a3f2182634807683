"""`user-migration` (entrypoints.cli) with its own peak resident memory written out when it ends.

    BENCH_PEAK_RSS_FILE=/tmp/x [BENCH_CPU_FILE=/tmp/y] python -m bench.peak_rss_cli migrate --all --json

The peak is the kernel's VmHWM of this process: the high-water mark of its memory since it started
the interpreter. (A parent's `ru_maxrss` of the child is no good here: Linux counts in it the
memory the child had before exec, i.e. the benchmark's own.)
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from user_migration.entrypoints.cli.main import main


def peak_rss_kb() -> int:
    """VmHWM of this process, in kB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


if __name__ == "__main__":
    cpu = time.process_time()
    try:
        code = main(sys.argv[1:])
    finally:
        Path(os.environ["BENCH_PEAK_RSS_FILE"]).write_text(str(peak_rss_kb()))
        # The command's own CPU (this process's, from the call of main: the interpreter's start and
        # the CLI's imports are left out, as a long run pays them once).
        if os.environ.get("BENCH_CPU_FILE"):
            Path(os.environ["BENCH_CPU_FILE"]).write_text(str(time.process_time() - cpu))
    sys.exit(code)
