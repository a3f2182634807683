"""The cyclic garbage collector, kept off what this process holds for its whole life."""

from __future__ import annotations

import gc


def freeze_long_lived_objects() -> None:
    """Move everything alive now (modules, botocore's service models, the wired container) where
    the collector no longer looks, so that its full collections during a run scan only what the
    run made: about 14% of the CPU of `migrate --all` on the benchmark (6.0 -> 5.2 s for 20,000
    users, medians of 5). Called by the CLI's commands before they wire the library (what was
    imported is then not scanned by the full collection that loading botocore's models sets off:
    ~55 ms), by `migrate --all` / `--retry-failed`, `verify` and `serve` once they are wired;
    never by the library: another service's collector is that service's business.

    No collection first: it cost ~60 ms a run, for some 30 objects found unreachable (a 10,000-user
    `migrate --all` on DynamoDB Local), which stay frozen instead."""
    gc.freeze()


# A whole run's youngest generation is collected every this many allocations (net of what was
# freed) instead of Python's 700: its users' dicts are freed by reference counting, and each young
# collection scans those still held (pages in flight, requests) again.
RUN_YOUNG_THRESHOLD = 10_000


def collect_young_less_often() -> None:
    """For a whole run (`migrate --all` / `--retry-failed`, `verify`), by the CLI only: a
    10,000-user live-safe `migrate --all` on DynamoDB Local made 535 young and 47 middle
    collections (~60 ms of CPU), 33 and 2 (~40 ms) with it."""
    _, middle, old = gc.get_threshold()
    gc.set_threshold(RUN_YOUNG_THRESHOLD, middle, old)
