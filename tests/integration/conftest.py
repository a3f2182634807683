"""Fixtures of the integration tier."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiopg
import pytest

from user_migration.adapters.postgres.source import create_pool


@pytest.fixture
async def pool(postgres_dsn: str) -> AsyncIterator[aiopg.Pool]:
    """A pool on the test PostgreSQL, closed after the test."""
    pool = await create_pool(postgres_dsn)
    try:
        yield pool
    finally:
        pool.close()
        await pool.wait_closed()
