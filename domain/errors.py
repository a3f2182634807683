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

    def __init__(self, user_id: int | str) -> None:  # a `domain.keys.UserId` (which imports this module)
        super().__init__(f"User {user_id} does not exist in the source database")
        self.user_id = user_id


class DependencyUnavailable(MigrationError):
    """A system the migration depends on could not be used; nothing was half-done by the caller."""

    code = "dependency_unavailable"


class SourceUnavailable(DependencyUnavailable):
    """PostgreSQL could not be reached, or a query did not finish in time."""

    code = "source_unavailable"


class ChangeStreamInUse(SourceUnavailable):
    """Another process holds the change stream's replication slot: a stream that runs, or the
    server process of one that died and whose connection the server has not yet found dead. It
    lasts as long as that process: a stream waits and tries again. `holder` is its id, when known."""

    code = "change_stream_in_use"

    def __init__(self, message: str, holder: int | None = None) -> None:
        super().__init__(message)
        self.holder = holder


class TargetUnavailable(DependencyUnavailable):
    """DynamoDB could not be reached or refused the request."""

    code = "target_unavailable"


class TargetThrottled(TargetUnavailable):
    """DynamoDB kept throttling the requests after every retry."""

    code = "target_throttled"


class SetupError(MigrationError):
    """The operator's set-up does not fit what is there (a mapping that does not match the source,
    a DynamoDB table that is missing): nothing is wrong with the request, nor is anything down.
    The CLI exits 2; HTTP answers 409 naming what to fix."""

    code = "setup_error"

    def __init__(self, problems: list[str], summary: str = "the set-up does not fit") -> None:
        super().__init__(f"{summary}:\n" + "\n".join(f"  - {problem}" for problem in problems))
        self.problems = problems
        self.summary = summary


class MappingError(SetupError):
    """A mapping that is malformed, or that does not match the source table; every problem named."""

    code = "mapping_error"

    def __init__(self, problems: list[str], origin: str) -> None:
        super().__init__(problems, f"the mapping ({origin}) has {len(problems)} problem(s)")
        self.origin = origin


class TargetTableMissing(SetupError):
    """A DynamoDB table the migration needs does not exist."""

    code = "table_missing"

    def __init__(self, table: str) -> None:
        super().__init__(
            [f"DynamoDB table {table!r} does not exist: create it with `user-migration init-tables`"],
            "a DynamoDB table is missing",
        )
        self.table = table
