"""The rate the migration moves at, and when it will be done, from readings of its counter over time."""

from __future__ import annotations

from collections import deque

import attrs

# The rate is measured over about this long: long enough to smooth a page's burst, short enough to
# follow a change of pace (a worker joining, the budget lowered).
WINDOW_SECONDS = 60.0
# Readings closer together than this tell no rate yet.
SHORTEST_SPAN_SECONDS = 1.0


@attrs.frozen
class Pace:
    """Users migrated per second over the last `window_seconds` (None until two readings are far
    enough apart), and the seconds left at that rate for `pending` users (None while the rate is
    unknown or not above 0)."""

    users_per_second: float | None
    window_seconds: float
    eta_seconds: int | None


class ProgressRate:
    """Readings of the migrated-users counter (`observe`), the oldest dropped past the window."""

    def __init__(self, window_seconds: float = WINDOW_SECONDS) -> None:
        self._window = window_seconds
        self._readings: deque[tuple[float, int]] = deque()

    def observe(self, now: float, migrated: int, pending: int) -> Pace:
        """Note `migrated` users at `now` (monotonic seconds); the pace over the window."""
        readings = self._readings
        readings.append((now, migrated))
        # The newest reading older than the window stays as the far end of the span.
        while len(readings) > 2 and readings[1][0] <= now - self._window:
            readings.popleft()
        first_at, first_count = readings[0]
        span = now - first_at
        if span < SHORTEST_SPAN_SECONDS:
            return Pace(None, round(span, 1), None)
        rate = round((migrated - first_count) / span, 1)
        eta = round(pending / rate) if rate > 0 else None
        return Pace(rate, round(span, 1), eta)
