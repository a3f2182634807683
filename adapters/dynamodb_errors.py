"""Turning botocore failures into the migration's own errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from botocore.exceptions import BotoCoreError, ClientError

from domain.errors import TargetThrottled, TargetUnavailable

THROTTLING_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "LimitExceededException",
        "TooManyRequestsException",
    }
)


def error_code(error: ClientError) -> str:
    """The AWS error code of a ClientError, e.g. `ResourceNotFoundException`."""
    return str(error.response.get("Error", {}).get("Code", ""))


def is_throttling(error: BaseException) -> bool:
    """Whether DynamoDB asked us to slow down (worth retrying after a pause)."""
    return isinstance(error, ClientError) and error_code(error) in THROTTLING_CODES


def describe(error: BaseException) -> str:
    """A short text for reports and logs: the error code and message, no request data."""
    if isinstance(error, ClientError):
        message = str(error.response.get("Error", {}).get("Message", ""))[:200]
        return f"{error_code(error)}: {message}" if message else error_code(error)
    return type(error).__name__


@asynccontextmanager
async def target_errors(action: str) -> AsyncIterator[None]:
    """Raise `TargetThrottled`/`TargetUnavailable` instead of botocore's exceptions."""
    try:
        yield
    except ClientError as error:
        if is_throttling(error):
            raise TargetThrottled(f"DynamoDB throttled {action}: {describe(error)}") from error
        raise TargetUnavailable(f"DynamoDB refused {action}: {describe(error)}") from error
    except (TimeoutError, BotoCoreError, OSError) as error:
        raise TargetUnavailable(f"DynamoDB is unavailable ({action}): {describe(error)}") from error
