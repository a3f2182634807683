"""The `stats` command: the statistics of `GET /m2/migration/stats`, for people or as JSON."""

from __future__ import annotations

import argparse
import json

from user_migration.domain.migrate.report import MigrationStats
from user_migration.entrypoints.cli.exit_codes import EXIT_OK
from user_migration.entrypoints.library import UserMigration
from user_migration.entrypoints.views import view


def stats_lines(current: MigrationStats) -> list[str]:
    """One line per figure, the source's total with the moment it holds for (or that it is an
    estimate)."""
    shown = view(current)
    how = "exact" if current.total_postgres_users_exact else "estimated"
    moment = f"({how} as of {shown['total_postgres_users_as_of']})"
    lines = []
    for name in ("total_postgres_users", "total_dynamo_users", "pending_migration", "last_migrated_user_id"):
        value = shown[name]
        lines.append(f"{name:<24}{'-' if value is None else f'{value:,}'}")
    lines[0] += f" {moment}"
    lines.append(f"{'failed_users':<24}{current.failed_users:,}")
    return lines


async def stats(migration: UserMigration, arguments: argparse.Namespace) -> int:
    """Print the statistics as a table or JSON (the source counted exactly now, unless
    STATS_POSTGRES_COUNT=estimate)."""
    current = await migration.stats()
    if arguments.json:
        print(json.dumps(view(current)))
    else:
        print("\n".join(stats_lines(current)))
    return EXIT_OK
