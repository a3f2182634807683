"""The command line's exit codes, in one place (docs/command-line.md lists them)."""

EXIT_OK = 0
EXIT_USERS_FAILED = 1  # some users failed validation or writing (they are listed); or verify found differences
EXIT_USAGE = 2  # the operator's to fix: usage, configuration, a mapping that does not fit, a missing table
EXIT_UNAVAILABLE = 3  # PostgreSQL or DynamoDB unreachable, timing out or throttling: worth retrying later
EXIT_INTERRUPTED = 130  # stopped by SIGINT/SIGTERM; progress so far is recorded
