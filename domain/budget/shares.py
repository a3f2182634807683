"""How the processes that write one table split one write budget, as arithmetic.

Every PUBLISH_SECONDS each process reads what the others published, rescales its share, and
publishes the write units per second it expects to spend until its next publication: its new share
when it spent (nearly) all it was allowed, what it spent when it did not (it waits for something
else: PostgreSQL, another process's hold on an id range). Publishing what it spent before it cut its
share would make the others cut theirs again for an excess already gone, and publishing its share
while it does not use it would keep the others from using it. A rate older than LIVE_SECONDS is a
process that stopped (or cannot reach the state table) and counts no more.

The scaling is amazon-dynamodb-tools' bulk executor's: a process multiplies its share by
budget / (the sum of the expected rates), so that what all of them spend comes to the budget, and
what one leaves unused flows to the others. The differences, all for the budget to hold over a run:
a share that is too large is cut at once (too many units is what throttles the table, and what the
operator set the budget against), only growth is smoothed; a process that does not use its share
keeps at most an even part of the budget (room to start writing, no claim on what the others use);
and a process that joins takes an even part at once (one alone, the whole budget), where the bulk
executor starts every worker at a tenth and grows it over several rounds. A process that joins while
the others spend the whole budget makes them spend its part more until their next publication (5 s
at most): the cost of reading the others only every PUBLISH_SECONDS.

The times are the publishing processes' wall clocks (Unix seconds): processes on several machines
compare them, so their clocks must agree within a second or two (NTP does).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import attrs

PUBLISH_SECONDS = 5.0
# Between publications a process looks at its own spending this often (no I/O): when it went from spending
# all it may to idle, or back, it publishes at once instead of leaving the others to plan on stale news.
CHECK_SECONDS = 1.0
# The first publication comes sooner: processes started together see each other's rates within a
# second instead of five, so that they spend the budget several times over for one second at most.
FIRST_PUBLISH_SECONDS = 1.0
LIVE_SECONDS = 15.0
# How many processes can share one budget: the shares adapters keep this many places (bounded reads).
SHARING_PLACES = 32
# How far a share grows towards what the others leave unused, per publication (the bulk executor's is
# 0.4, on rates a whole interval old; these are the rates expected next, so growth need not lag as much).
GROWTH_SMOOTHING = 0.6
# A process that spent this much of what it was allowed is limited by the budget (it would spend more).
SATURATED = 0.8


@attrs.frozen
class PublishedRate:
    """What one process published: the units per second it spends (see the module's docstring)."""

    member: str
    units_per_second: float
    published_at: float  # the publisher's wall clock, Unix seconds


def is_live(rate: PublishedRate, now: float) -> bool:
    """Whether `rate` is recent enough to count (a later one from a clock slightly ahead counts too)."""
    return now - rate.published_at <= LIVE_SECONDS


def live_others(rates: Iterable[PublishedRate], member: str, now: float) -> list[float]:
    """The live rates of every process but `member`."""
    return [rate.units_per_second for rate in rates if rate.member != member and is_live(rate, now)]


def joining_share(budget: float, others: int) -> float:
    """The share of a process that joins `others` live processes: an even part (all of it, alone)."""
    return budget / (others + 1)


def is_saturated(my_rate: float, allowed: float) -> bool:
    """Whether a process that spent `my_rate` while allowed `allowed` per second was held back by the budget."""
    return my_rate >= SATURATED * allowed


def expected_rate(allowed: float, my_rate: float, saturated: bool) -> float:
    """What a process publishes: what it will spend until its next publication (see the module's docstring)."""
    return allowed if saturated else min(my_rate, allowed)


def next_share(share: float, budget: float, my_rate: float, others: Sequence[float], saturated: bool) -> float:
    """This process's share after a publication: `share` scaled by budget / (the sum of the expected rates).

    `my_rate` is what this process spent per second over its last interval, `saturated` whether that was
    all it was allowed (`is_saturated`), `others` the live rates the others published. Alone, the whole
    budget; so too when the others expect to spend nothing. Never above the budget.
    """
    if not any(others):  # alone, or the others expect to spend nothing
        return budget
    mine = share if saturated else my_rate
    total = mine + sum(others)
    even = joining_share(budget, len(others))
    target = min(share * budget / total, budget)
    if not saturated:
        target = min(target, max(even, my_rate))
    if target <= share:
        return target
    return share + GROWTH_SMOOTHING * (target - share)
