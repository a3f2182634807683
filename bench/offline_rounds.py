"""The offline mode against the BatchWriteItem ceiling in alternating rounds, for
`bench.dynamodb_local`: one run of each is a few seconds of a JVM on a machine whose load moves,
and runs of the same code were seen from 0.45 to 1.02 of their round's ceiling within minutes
(docs/benchmark.md, "Fewer state requests, and the measure itself").

Each round measures the ceiling at every concurrency of its sweep (the best of them is the round's
ceiling: the best bare BatchWriteItem client, as in the single measure), then the project offline
into an empty table; the ratio of each round is the project's users/s over its own round's best
ceiling, and the median of the rounds' ratios is reported beside each round's figures.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from typing import Any

from bench.ceilings import Measured

RoundMeasure = Callable[[int], Measured]


def offline_rounds(
    rounds: int, sweep: Sequence[int], ceiling: RoundMeasure, project: Callable[[], Measured]
) -> dict[str, Any]:
    """`rounds` rounds of `ceiling(c)` for each c of `sweep`, then `project()`: each round's
    figures and ratio, and the median ratio."""
    measured = []
    for number in range(1, rounds + 1):
        ceilings = {concurrency: ceiling(concurrency) for concurrency in sweep}
        best_in_flight, best = max(ceilings.items(), key=lambda pair: pair[1].users_per_second)
        run = project()
        measured.append(
            {
                "round": number,
                "ceiling_in_flight": best_in_flight,
                "ceiling_users_per_second": round(best.users_per_second, 1),
                "ceiling_cpu_us_per_user": round(best.cpu_us_per_user, 1),
                "project_users_per_second": round(run.users_per_second, 1),
                "project_cpu_us_per_user": round(run.cpu_us_per_user, 1),
                "ratio": round(run.users_per_second / best.users_per_second, 3),
            }
        )
    return {"rounds": measured, "median_ratio": round(statistics.median(r["ratio"] for r in measured), 3)}
