"""The DynamoDB client's requests reported to a `StallWatch`, through botocore's events: every call of every
adapter, with its operation, the adapter's action (`target_errors`) and each attempt that got no answer.

Also the retries of a DynamoDB that does not answer: botocore's own retries end after a few attempts (and its
retry quota runs dry when every request times out), after which `needs_retry` keeps trying a request that got no
answer at all (a timeout, a refused or dropped connection), with backoff, until the dependency has been silent
for the operator's patience. Only once DynamoDB has answered in this process: one that never did (a wrong
endpoint, a server not started) fails as fast as before. An answer, even an error, is left to botocore and the
adapters.
"""

from __future__ import annotations

import asyncio
import random
from contextvars import ContextVar
from typing import Any
from urllib.parse import urlsplit

from botocore.exceptions import (
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from user_migration.adapters.retry import waiter_alive
from user_migration.domain.observe.stall_watch import StallWatch

DYNAMODB = "DynamoDB"
# What the adapter is doing (set by `target_errors`), named with the operation in a stall line.
current_action: ContextVar[str | None] = ContextVar("current_dynamodb_action", default=None)
# The endpoint of the last request of this task: a failure without one of its own is named with it.
current_endpoint: ContextVar[str | None] = ContextVar("current_dynamodb_endpoint", default=None)

_TIMEOUTS = (ReadTimeoutError, ConnectTimeoutError, asyncio.TimeoutError)
_UNANSWERED = (*_TIMEOUTS, EndpointConnectionError, ConnectionClosedError)
_TOKEN = "user_migration_stall_token"
# Backoff of the retries after botocore's: up to 0.5 * 2**n seconds, at most 5.
_BASE_SECONDS = 0.5
_CAP_SECONDS = 5.0


def endpoint_text(url: str | None) -> str:
    """`scheme://host:port` of an endpoint URL, without anything else it may carry (user, password, path)."""
    if not url:
        return "the AWS endpoint of the region"
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}" if parts.scheme and host else url


class DynamoDbWatch:
    """The handlers registered on one client (`watch_client`)."""

    def __init__(self, watch: StallWatch, endpoint: str, patience_seconds: float) -> None:
        self._watch = watch
        self._endpoint = endpoint
        self._patience_seconds = patience_seconds
        watch.known(DYNAMODB, endpoint)

    def before_call(self, model: Any, context: dict[str, Any], **_: Any) -> None:
        action = current_action.get()
        what = f"{model.name} ({action})" if action else model.name
        context[_TOKEN] = self._watch.begin(DYNAMODB, self._endpoint, what, waiter_alive())
        current_endpoint.set(self._endpoint)

    def needs_retry(
        self,
        attempts: int,
        request_dict: dict[str, Any],
        caught_exception: BaseException | None = None,
        response: Any = None,
        **_: Any,
    ) -> float | None:
        token = request_dict.get("context", {}).get(_TOKEN)
        if caught_exception is None:
            if response is not None:
                self._watch.answer(DYNAMODB)
            return None
        if isinstance(caught_exception, _TIMEOUTS):
            self._watch.timed_out(DYNAMODB)
        if token is not None:
            self._watch.retrying(token, attempts, type(caught_exception).__name__)
        if not isinstance(caught_exception, _UNANSWERED) or self._watch.answered_at(DYNAMODB) is None:
            return None  # an error of DynamoDB's own, or one that never answered (a wrong endpoint): not waited for
        if self._watch.silent_seconds(DYNAMODB) >= self._patience_seconds:
            return None
        # Returned after botocore's own handler: used only once botocore itself would not retry.
        return random.uniform(0, min(_CAP_SECONDS, _BASE_SECONDS * 2**attempts))

    def after_call(self, context: dict[str, Any], **_: Any) -> None:
        token = context.pop(_TOKEN, None)
        if token is not None:
            self._watch.ended(token, answered=True)

    def after_call_error(self, exception: BaseException, context: dict[str, Any], **_: Any) -> None:
        token = context.pop(_TOKEN, None)
        if token is not None and isinstance(exception, _UNANSWERED):
            self._watch.failed(token, type(exception).__name__)
        elif token is not None:
            self._watch.ended(token, answered=False)


def watch_client(client: Any, watch: StallWatch, endpoint_url: str | None, patience_seconds: float) -> None:
    """Report every request of `client` to `watch`, and retry unanswered ones until DynamoDB has been silent
    for `patience_seconds` (0: botocore's retries only)."""
    handlers = DynamoDbWatch(watch, endpoint_text(endpoint_url or client.meta.endpoint_url), patience_seconds)
    events = client.meta.events
    events.register_first("before-call.dynamodb", handlers.before_call)
    events.register_last("needs-retry.dynamodb", handlers.needs_retry)
    events.register_last("after-call.dynamodb", handlers.after_call)
    events.register_last("after-call-error.dynamodb", handlers.after_call_error)
