"""Typed application keys of the aiohttp app."""

from __future__ import annotations

import attrs
from aiohttp import web

from user_migration.container import Container
from user_migration.domain.budget.bucket import TokenBucketBudget
from user_migration.domain.migrate.migration import Migration
from user_migration.domain.observe.overview import MigrationOverview
from user_migration.domain.observe.statistics import Statistics
from user_migration.entrypoints.http.metrics import MigrationMetrics
from user_migration.ports import MigrationState, UserSource, UserTarget
from user_migration.ports.change_stream import ChangeStream
from user_migration.ports.segment_leases import SegmentLeases


@attrs.define
class Readiness:
    """Whether the app should get traffic: it stops as soon as shutdown begins."""

    draining: bool = False


@attrs.frozen
class Dependencies:
    """The adapters behind the ports, for the readiness probe."""

    source: UserSource
    target: UserTarget
    state: MigrationState


CONTAINER = web.AppKey("container", Container)
MIGRATION = web.AppKey("migration", Migration)
STATISTICS = web.AppKey("statistics", Statistics)
DEPENDENCIES = web.AppKey("dependencies", Dependencies)
METRICS = web.AppKey("metrics", MigrationMetrics)
READINESS = web.AppKey("readiness", Readiness)
WRITE_BUDGET = web.AppKey("write_budget", TokenBucketBudget)
SEGMENT_LEASES = web.AppKey("segment_leases", SegmentLeases)
OVERVIEW = web.AppKey("overview", MigrationOverview)
CHANGE_STREAM = web.AppKey("change_stream", ChangeStream)
