"""Domain errors. Entry points map them to HTTP statuses or CLI exit codes."""

from __future__ import annotations


class MigrationError(Exception):
    """Base of every error the migration raises on purpose."""

    code = "migration_error"


class InvalidParameter(MigrationError):
    """A request parameter is missing its rules; `parameter` names which one."""

    code = "invalid_parameter"

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter
        self.message = message


class UserNotFound(MigrationError):
    """The single user asked for does not exist in the source."""

    code = "user_not_found"

    def __init__(self, user_id: int) -> None:
        super().__init__(f"User {user_id} does not exist in the source database")
        self.user_id = user_id


class DependencyUnavailable(MigrationError):
    """A system the migration depends on could not be used; nothing was half-done by the caller."""

    code = "dependency_unavailable"


class SourceUnavailable(DependencyUnavailable):
    """PostgreSQL could not be reached, or a query did not finish in time."""

    code = "source_unavailable"


class TargetUnavailable(DependencyUnavailable):
    """DynamoDB could not be reached or refused the request."""

    code = "target_unavailable"


class TargetThrottled(TargetUnavailable):
    """DynamoDB kept throttling the requests after every retry."""

    code = "target_throttled"
