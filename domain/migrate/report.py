"""What a migration run and the statistics tell their callers."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import attrs

from user_migration.domain.convert.rules import failure_text, reason_code
from user_migration.domain.keys import UserId


@attrs.frozen
class BatchOutcome:
    """What happened to one group of users: counts, and every failed user with its reasons.

    `write_failed` holds the users that were valid but could not be written (DynamoDB refused or
    throttled): those may succeed on a retry without any change to their rows.
    """

    read: int = 0
    migrated: int = 0
    skipped: int = 0
    failures: Mapping[UserId, tuple[str, ...]] = attrs.field(factory=dict)
    write_failed: frozenset[UserId] = frozenset()
    rewritten: int = 0
    kept: Mapping[UserId, str] = attrs.field(factory=dict)

    def error_texts(self) -> list[str]:
        """`User <id>: <reason>[; <reason>...]`, in id order."""
        return [failure_text(user_id, list(self.failures[user_id])) for user_id in sorted(self.failures)]

    def reason_codes(self) -> list[str]:
        """The code of every reason of every failed user (a user counts once per distinct code)."""
        return [code for reasons in self.failures.values() for code in sorted({reason_code(r) for r in reasons})]

    def kept_report(self) -> RewriteReport:
        """What a rewrite did, as the report shows it."""
        kept = sorted(self.kept)
        return RewriteReport(self.rewritten, kept, [failure_text(user_id, [self.kept[user_id]]) for user_id in kept])


@attrs.frozen
class ChangeOutcome:
    """What carrying a group of changed rows over did: items written (new, or replacing older
    ones, or `same_version_written`), items holding what their row converts to, items kept
    because they are newer or someone else's (with the reason), and every failed user with its
    reasons (`write_failed`: valid users that could not be written, to be tried again)."""

    read: int = 0
    written: int = 0
    unchanged: int = 0
    kept: Mapping[UserId, str] = attrs.field(factory=dict)
    failures: Mapping[UserId, tuple[str, ...]] = attrs.field(factory=dict)
    write_failed: frozenset[UserId] = frozenset()
    # Of `written`: the migration's own items of the row's version replaced because the row no
    # longer converts to what they hold (a change that did not move the version).
    same_version_written: int = 0


@attrs.frozen
class RewriteReport:
    """With `rewrite`: how many stored items were rewritten, and the stored items left as they
    were because someone else wrote or changed them (each with the reason)."""

    rewritten_count: int
    not_rewritten_user_ids: list[UserId]
    not_rewritten: list[str]


@attrs.frozen
class MigrationReport:
    """The outcome of one migration request, as the API document describes it.

    `skipped_count` counts users already in DynamoDB, left untouched. In a dry run
    `migrated_count` is how many users would be written.
    """

    migrated_count: int
    skipped_count: int
    failed_count: int
    failed_user_ids: list[UserId]
    errors: list[str]
    next_start_user_id: UserId | None
    dry_run: bool
    processing_time_ms: int
    # Only with `rewrite=true` (its fields are then part of the report); None otherwise.
    rewrite: RewriteReport | None = None
    # The codes of each failed user's reasons (`missing_email`, `write_failed`...), for metrics;
    # not part of the API's report.
    reason_codes: list[str] = attrs.field(factory=list)


@attrs.frozen
class MigrationStats:
    """How far the migration has come. `total_postgres_users` is exact as of
    `total_postgres_users_as_of` when `total_postgres_users_exact`, else the planner's estimate
    at that moment; the DynamoDB side is always exact. `failed_users`: users whose latest attempt
    failed validation or writing."""

    total_postgres_users: int
    total_dynamo_users: int
    pending_migration: int
    last_migrated_user_id: UserId | None
    total_postgres_users_as_of: datetime
    total_postgres_users_exact: bool
    failed_users: int
