"""The statistics: the source's count, as of a moment it states, against the migration's counters."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from user_migration.domain.errors import InvalidParameter
from user_migration.domain.migrate.report import MigrationStats
from user_migration.domain.model import MigrationProgress
from user_migration.domain.observe.source_count import CountMode, SourceCount, SourceCounter
from user_migration.ports.migration_state import MigrationState


def count_mode(text: str | CountMode | None, parameter: str = "postgres_count") -> CountMode | None:
    """`exact` or `estimate` (any case) as a `CountMode`; None stays None (the default applies);
    anything else is an `InvalidParameter` naming `parameter`."""
    if text is None or isinstance(text, CountMode):
        return text
    for mode in CountMode:
        if text.lower() == mode.value:
            return mode
    raise InvalidParameter(parameter, f"{parameter} must be one of {', '.join(mode.value for mode in CountMode)}")


def plan_statistics(query: Iterable[tuple[str, str]]) -> CountMode | None:
    """The query of `GET /m2/migration/stats`: `postgres_count`, or None for the default. It is
    checked as the other endpoints' parameters are (a bad or repeated one is an error); other
    parameters are left alone, as the endpoint always did: reading statistics changes nothing."""
    given = [value for name, value in query if name == "postgres_count"]
    if len(given) > 1:
        raise InvalidParameter("postgres_count", "parameter 'postgres_count' is given more than once")
    return count_mode(given[0]) if given else None


def statistics_of(count: SourceCount, progress: MigrationProgress) -> MigrationStats:
    """The statistics of a source count and the migration's counters."""
    return MigrationStats(
        total_postgres_users=count.users,
        total_dynamo_users=progress.migrated_users,
        pending_migration=max(count.users - progress.migrated_users, 0),
        last_migrated_user_id=progress.last_migrated_user_id,
        total_postgres_users_as_of=count.as_of,
        total_postgres_users_exact=count.exact,
        failed_users=progress.failed_users,
    )


class Statistics:
    """How far the migration has come: the source's count as `counter` keeps it (exact as of a
    stated moment, or the planner's estimate when asked for), and the counters of the state
    (exact, one read whatever the table holds)."""

    def __init__(self, counter: SourceCounter, state: MigrationState, default: CountMode = CountMode.EXACT) -> None:
        self._counter = counter
        self._state = state
        self._default = default

    async def read(self, mode: CountMode | None = None) -> MigrationStats:
        """The statistics, the source counted as `mode` asks (by default, as configured)."""
        stats, _ = await self.read_with_progress(mode)
        return stats

    async def read_with_progress(self, mode: CountMode | None = None) -> tuple[MigrationStats, MigrationProgress]:
        """The statistics and the counters they were made of (one reading of each)."""
        count, progress = await asyncio.gather(
            self._counter.current(mode if mode is not None else self._default), self._state.read_progress()
        )
        return statistics_of(count, progress), progress
