"""The in-process library: the migration for other Python services, without HTTP.

    async with UserMigration.from_env() as migration:
        report = await migration.migrate_batch(batch_size=100)

It returns the same typed reports the API serializes.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType

from container import Container, build_container, resolve
from domain.migration import Migration
from domain.report import MigrationReport, MigrationStats
from domain.request import DEFAULT_BATCH_SIZE, BatchRequest, SingleUserRequest
from entrypoints.settings import load_settings


class UserMigration:
    """A wired migration; use it as an async context manager so its connections are closed."""

    def __init__(self, container: Container) -> None:
        self.container = container
        self._migration: Migration | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> UserMigration:
        """Configured from the environment (see README); raises `ConfigurationError` listing every problem."""
        settings = load_settings(environ, purpose="library")
        return cls(build_container(settings.container_config()))

    async def __aenter__(self) -> UserMigration:
        self._migration = await resolve(self.container.migration())
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._migration = None
        await resolve(self.container.shutdown_resources())

    @property
    def _use_case(self) -> Migration:
        if self._migration is None:
            raise RuntimeError("use `async with UserMigration...` before calling it")
        return self._migration

    async def migrate_batch(
        self, batch_size: int = DEFAULT_BATCH_SIZE, start_user_id: int = 0, dry_run: bool = False
    ) -> MigrationReport:
        """Migrate one page of users with ids from `start_user_id` upwards."""
        return await self._use_case.migrate_batch(BatchRequest(start_user_id, batch_size, dry_run))

    async def migrate_user(self, user_id: int, dry_run: bool = False) -> MigrationReport:
        """Migrate one user; raises `UserNotFound` when the source has no such user."""
        return await self._use_case.migrate_user(SingleUserRequest(user_id, dry_run))

    async def stats(self) -> MigrationStats:
        """The migration statistics."""
        return await self._use_case.statistics()
