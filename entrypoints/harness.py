"""A fully wired migration on in-memory adapters, for other services' tests.

    harness = InMemoryHarness.with_users([User(id=1, username="alice", ...)])
    async with harness.library() as migration: ...        # the in-process library
    client = await aiohttp_client(await harness.app())     # the HTTP API (token: harness.token)

The same container, use cases and HTTP app as production; only the ports are swapped for
in-memory adapters, which the test can inspect (`harness.target.items`) or steer
(`harness.target.refuse[7] = "reason"`, `harness.source.put(fixed_user)`).
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs
from aiohttp import web
from dependency_injector import providers

from user_migration.adapters.dynamodb.item_size import Item
from user_migration.adapters.memory.budget import InMemoryBudgetShares
from user_migration.adapters.memory.changes import InMemoryChangeStream
from user_migration.adapters.memory.harness import InMemoryMigrationState, InMemoryUserSource, InMemoryUserTarget
from user_migration.adapters.memory.leases import InMemorySegmentLeases
from user_migration.adapters.memory.sync_passes import InMemorySyncPasses
from user_migration.adapters.memory.verify_results import InMemoryVerifyResults
from user_migration.container import Container
from user_migration.domain.convert.mapping import UserMapping
from user_migration.domain.model import SourceUser, User
from user_migration.domain.parallel.migrate_worker import boundaries_from
from user_migration.entrypoints.http.app import init_app
from user_migration.entrypoints.library import UserMigration
from user_migration.entrypoints.settings import Settings

HARNESS_TOKEN = "harness-token"


@attrs.define
class InMemoryHarness:
    """In-memory source, target and state, and a container whose ports are overridden with them."""

    source: InMemoryUserSource
    target: InMemoryUserTarget
    state: InMemoryMigrationState
    token: str = HARNESS_TOKEN
    leases: InMemorySegmentLeases = attrs.field(default=None)
    verify_leases: InMemorySegmentLeases = attrs.field(default=None)
    verify_results: InMemoryVerifyResults = attrs.field(default=None)
    sync_leases: InMemorySegmentLeases = attrs.field(default=None)
    sync_passes: InMemorySyncPasses = attrs.field(default=None)
    # The change stream of `sync --changes logical`: the test commits transactions on it.
    changes: InMemoryChangeStream = attrs.Factory(InMemoryChangeStream)

    def __attrs_post_init__(self) -> None:
        if self.leases is None:
            self.leases = InMemorySegmentLeases(boundaries_from(self.source), self.source.key_kind)
        if self.verify_leases is None:
            self.verify_leases = InMemorySegmentLeases(self.leases.boundaries, self.source.key_kind)
        if self.verify_results is None:
            self.verify_results = InMemoryVerifyResults(self.verify_leases)
        if self.sync_leases is None:
            self.sync_leases = InMemorySegmentLeases(self.leases.boundaries, self.source.key_kind)
        if self.sync_passes is None:
            self.sync_passes = InMemorySyncPasses(self.sync_leases)

    @classmethod
    def with_users(
        cls,
        users: Iterable[User | SourceUser] = (),
        existing_items: Iterable[Item] = (),
        token: str = HARNESS_TOKEN,
        mapping: UserMapping | None = None,
    ) -> InMemoryHarness:
        """A harness whose source holds `users` and whose target already holds `existing_items`.

        With a `mapping` (e.g. `entrypoints.mapping_file.read_mapping`'s), users are validated by
        its rules and written under its key attribute; give them as `SourceUser`s with the
        values the mapping would read (attribute name to value).
        """
        source = InMemoryUserSource(users, mapping)
        target = InMemoryUserTarget(existing_items, key_attribute=source.mapping.key_attribute)
        return cls(source, target, InMemoryMigrationState(), token)

    def container(self) -> Container:
        """A container wired to this harness's adapters."""
        container = Container()
        container.mapping.override(providers.Object(self.source.mapping))
        container.user_source.override(self.source)
        container.user_target.override(self.target)
        container.migration_state.override(self.state)
        # The write budget is unlimited here (no budget configured); should a test configure one, its shares
        # are kept in memory.
        container.budget_shares.override(InMemoryBudgetShares())
        container.segment_leases.override(self.leases)
        container.verify_leases.override(self.verify_leases)
        container.verify_results.override(self.verify_results)
        container.sync_leases.override(self.sync_leases)
        container.sync_passes.override(self.sync_passes)
        container.change_stream.override(self.changes)
        return container

    def library(self) -> UserMigration:
        """The in-process library on the in-memory adapters (use with `async with`)."""
        return UserMigration(self.container())

    async def app(self) -> web.Application:
        """The HTTP app on the in-memory adapters; authenticate with `Bearer <harness.token>`."""
        return await init_app(Settings(api_tokens=(self.token,)), self.container())
