"""The process's one long-lived DynamoDB client (aioboto3)."""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import aioboto3
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError
from botocore.loaders import Loader, create_loader

from user_migration.adapters.dynamodb.errors import aws_setup_error
from user_migration.adapters.dynamodb.lean_body import lean_bodies
from user_migration.adapters.dynamodb.watch import watch_client
from user_migration.domain.observe.stall_watch import StallWatch

# A request's timeouts, in seconds (DYNAMODB_TIMEOUT_SECONDS): its answer is awaited this long, and a
# connection is awaited at most CONNECT_TIMEOUT_SECONDS of it; botocore then retries DYNAMODB_RETRIES times.
DEFAULT_TIMEOUT_SECONDS = 10.0
CONNECT_TIMEOUT_SECONDS = 5.0
DEFAULT_RETRIES = 3


@asynccontextmanager
async def dynamodb_client(
    endpoint_url: str | None = None,
    region_name: str | None = None,
    max_pool_connections: int = 32,
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    retries: int = DEFAULT_RETRIES,
    watch: StallWatch | None = None,
    patience_seconds: float = 0.0,
) -> AsyncIterator[Any]:
    """A DynamoDB client; region and credentials come from the standard AWS chain unless given.

    A missing region, missing or partial credentials or an unknown AWS_PROFILE raise `SetupError` naming what to
    set, whether botocore finds out when the client is created or at its first call.

    botocore's own retries are kept short (standard mode, `retries` retries: 3, up to 4 tries, by default): the
    adapters retry unprocessed items and throttling themselves, per chunk, with jittered backoff. Each try waits
    `timeout_seconds` for its answer. Its PartiQL batches' bodies are written by `json.dumps` (`lean_body`).

    With a `watch`, every request is reported to it (`adapters.dynamodb.watch`), and a request that gets no
    answer at all is retried after botocore's tries until DynamoDB has been silent for `patience_seconds`
    (0: not at all), so that a DynamoDB paused for a while is waited for, out loud.
    """
    config = AioConfig(
        max_pool_connections=max_pool_connections,
        retries={"mode": "standard", "max_attempts": retries},
        connect_timeout=min(CONNECT_TIMEOUT_SECONDS, timeout_seconds),
        read_timeout=timeout_seconds,
        # Items are built and checked by the domain; botocore's own check of every request
        # costs ~70 us per item (measured by the benchmark) and finds nothing new.
        parameter_validation=False,
    )
    async with _setup_errors():
        session = _session()
        async with session.client(
            "dynamodb",
            endpoint_url=endpoint_url,
            region_name=region_name,
            config=config,
            verify=False if _plain_http_on_this_machine(endpoint_url) else None,
        ) as client:
            lean_bodies(client)
            if watch is not None:
                watch_client(client, watch, endpoint_url, patience_seconds)
            yield client


def _plain_http_on_this_machine(endpoint_url: str | None) -> bool:
    """An `http://` endpoint on loopback (DynamoDB Local, moto, the demo's): no TLS to verify. botocore would still
    make an SSL context and load the CA bundle into it for each client's connections (about 20 ms of CPU)."""
    if endpoint_url is None:
        return False
    url = urlsplit(endpoint_url)
    if url.scheme.lower() != "http" or url.hostname is None:
        return False
    if url.hostname.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(url.hostname).is_loopback
    except ValueError:
        return False


# botocore reads its data files (DynamoDB's model, the endpoints and their rules: about 1 MB of JSON) into the
# loader of each session, and each client here has a session of its own (its credentials and region looked up
# afresh). The process's sessions share one loader per data path (AWS_DATA_PATH), whose cache keeps each file
# read once: a host making many clients, or the test suite, read them again for each (a sixth of the test
# workers' CPU).
_loaders: dict[str | None, Loader] = {}
_loaders_lock = threading.Lock()


def _session() -> aioboto3.Session:
    """A new aioboto3 session whose botocore session reads its data files through the process's shared loader."""
    botocore_session = get_session()
    data_path = botocore_session.get_config_variable("data_path")
    with _loaders_lock:
        loader = _loaders.get(data_path)
        if loader is None:
            loader = _loaders[data_path] = create_loader(data_path)
        botocore_session.register_component("data_loader", loader)
        searched = list(loader.search_paths)
        session = aioboto3.Session(botocore_session=botocore_session)
        # boto3 adds its own data folder to the loader of every session it makes: once is enough.
        loader.search_paths[len(searched) :] = [
            path for path in loader.search_paths[len(searched) :] if path not in searched
        ]
    return session


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
