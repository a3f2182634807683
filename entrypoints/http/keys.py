"""Typed application keys of the aiohttp app."""

from __future__ import annotations

import attrs
from aiohttp import web

from container import Container
from domain.migration import Migration
from domain.overview import MigrationOverview
from domain.statistics import Statistics
from domain.write_budget import TokenBucketBudget
from entrypoints.http.metrics import MigrationMetrics
from ports import MigrationState, UserSource, UserTarget
from ports.change_stream import ChangeStream
from ports.segment_leases import SegmentLeases


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
