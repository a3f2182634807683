"""What a migration run and the statistics tell their callers."""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from domain.validation import failure_text


@attrs.frozen
class BatchOutcome:
    """What happened to one group of users: counts, and every failed user with its reasons.

    `write_failed` holds the users that were valid but could not be written (DynamoDB refused or
    throttled): those may succeed on a retry without any change to their rows.
    """

    read: int = 0
    migrated: int = 0
    skipped: int = 0
    failures: Mapping[int, tuple[str, ...]] = attrs.field(factory=dict)
    write_failed: frozenset[int] = frozenset()

    def error_texts(self) -> list[str]:
        """`User <id>: <reason>[; <reason>...]`, in id order."""
        return [failure_text(user_id, list(self.failures[user_id])) for user_id in sorted(self.failures)]


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
