"""The process's one long-lived DynamoDB client (aioboto3)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aioboto3
from aiobotocore.config import AioConfig
from botocore.exceptions import BotoCoreError

from adapters.dynamodb_errors import aws_setup_error


@asynccontextmanager
async def dynamodb_client(
    endpoint_url: str | None = None,
    region_name: str | None = None,
    max_pool_connections: int = 32,
) -> AsyncIterator[Any]:
    """A DynamoDB client; region and credentials come from the standard AWS chain unless given.

    A missing region, missing or partial credentials or an unknown AWS_PROFILE raise `SetupError` naming what to
    set, whether botocore finds out when the client is created or at its first call.

    botocore's own retries are kept short (standard mode, max_attempts=3: up to 4 tries): the adapters retry
    unprocessed items and throttling themselves, per chunk, with jittered backoff.
    """
    config = AioConfig(
        max_pool_connections=max_pool_connections,
        retries={"mode": "standard", "max_attempts": 3},
        connect_timeout=5,
        read_timeout=30,
        # Items are built and checked by the domain; botocore's own check of every request
        # costs ~70 us per item (measured by the benchmark) and finds nothing new.
        parameter_validation=False,
    )
    async with _setup_errors():
        session = aioboto3.Session()
        async with session.client(
            "dynamodb", endpoint_url=endpoint_url, region_name=region_name, config=config
        ) as client:
            yield client


@asynccontextmanager
async def _setup_errors() -> AsyncIterator[None]:
    """botocore's missing region / credentials / profile (at client creation, or at the first call of the body
    when not already translated) as a `SetupError` naming what to set."""
    try:
        yield
    except BotoCoreError as error:
        setup_error = aws_setup_error(error)
        if setup_error is None:
            raise
        raise setup_error from error
