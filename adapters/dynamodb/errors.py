"""Turning botocore failures into the migration's own errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
)

from user_migration.adapters.dynamodb.watch import current_action, current_endpoint, endpoint_text
from user_migration.domain.errors import SetupError, TargetTableMissing, TargetThrottled, TargetUnavailable

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


def was_resent(error: ClientError) -> bool:
    """Whether botocore sent this request more than once (the answer to an earlier copy was lost,
    or it failed on the way): a conditional request's failure may then be its own first copy's doing."""
    return int(error.response.get("ResponseMetadata", {}).get("RetryAttempts", 0) or 0) > 0


def describe(error: BaseException) -> str:
    """A short text for reports and logs: the error code and message, no request data."""
    if isinstance(error, ClientError):
        message = str(error.response.get("Error", {}).get("Message", ""))[:200]
        return f"{error_code(error)}: {message}" if message else error_code(error)
    return type(error).__name__


def failed_endpoint(error: BaseException) -> str:
    """Where DynamoDB was asked when `error` happened: the endpoint botocore names in its connection and
    timeout errors, else the one of the task's last request (`scheme://host:port`, nothing more)."""
    url = getattr(error, "kwargs", {}).get("endpoint_url") if isinstance(error, BotoCoreError) else None
    return endpoint_text(url) if url else current_endpoint.get() or "its endpoint"


AWS_SETUP_SUMMARY = "the AWS set-up is incomplete"


def aws_setup_error(error: BaseException) -> SetupError | None:
    """The `SetupError` naming what to set when botocore lacks a region or credentials; None for other errors.

    These are the operator's set-up, not an outage: retrying cannot help (CLI exit 2, not 3).
    """
    if isinstance(error, NoRegionError):
        problem = "no AWS region is set: set AWS_REGION to the region of the DynamoDB tables, e.g. AWS_REGION=eu-west-1"
    elif isinstance(error, NoCredentialsError):
        problem = (
            "no AWS credentials were found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN "
            "for temporary ones), or AWS_PROFILE, or run with an IAM role (ECS task role, EC2 instance profile)"
        )
    elif isinstance(error, PartialCredentialsError):
        problem = f"the AWS credentials are incomplete ({error}): set the missing one as well, or unset the others"
    elif isinstance(error, ProfileNotFound):
        problem = f"{error}: set AWS_PROFILE to a profile of the AWS config file, or unset it"
    else:
        return None
    return SetupError([problem], AWS_SETUP_SUMMARY)


@asynccontextmanager
async def target_errors(action: str, table: str | None = None) -> AsyncIterator[None]:
    """Raise the migration's errors instead of botocore's exceptions.

    `TargetTableMissing(table)` when the table does not exist (`table` names it; give it wherever the request
    is about one table), `SetupError` when botocore has no region or credentials, `TargetThrottled` when
    DynamoDB kept throttling, `TargetUnavailable` for everything else.
    """
    outer_action = current_action.set(action)
    try:
        yield
    except ClientError as error:
        if is_throttling(error):
            raise TargetThrottled(f"DynamoDB throttled {action}: {describe(error)}") from error
        if error_code(error) == "ResourceNotFoundException":
            if table is not None:
                raise TargetTableMissing(table) from error
            raise SetupError(
                [
                    f"DynamoDB has no such table ({action}: {describe(error)}): "
                    "create the tables with `user-migration init-tables`"
                ],
                "a DynamoDB table is missing",
            ) from error
        raise TargetUnavailable(f"DynamoDB at {failed_endpoint(error)} refused {action}: {describe(error)}") from error
    except (TimeoutError, BotoCoreError, OSError) as error:
        setup_error = aws_setup_error(error)
        if setup_error is not None:
            raise setup_error from error
        where = failed_endpoint(error)
        raise TargetUnavailable(f"DynamoDB is unavailable at {where} ({action}): {describe(error)}") from error
    finally:
        current_action.reset(outer_action)
