"""Typed application keys of the aiohttp app."""

from __future__ import annotations

from aiohttp import web

from container import Container
from domain.migration import Migration

CONTAINER = web.AppKey("container", Container)
MIGRATION = web.AppKey("migration", Migration)
