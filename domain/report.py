"""What a migration run and the statistics tell their callers."""

from __future__ import annotations

import attrs


@attrs.frozen
class MigrationReport:
    """The outcome of one migration request, as the API document describes it.

    `skipped_count` counts users already in DynamoDB, left untouched. In a dry run
    `migrated_count` is how many users would be written.
    """

    migrated_count: int
    skipped_count: int
    failed_count: int
    failed_user_ids: list[int]
    errors: list[str]
    next_start_user_id: int | None
    dry_run: bool
    processing_time_ms: int


@attrs.frozen
class MigrationStats:
    """How far the migration has come."""

    total_postgres_users: int
    total_dynamo_users: int
    pending_migration: int
    last_migrated_user_id: int | None
