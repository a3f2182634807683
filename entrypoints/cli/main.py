"""The `user-migration` command.

Exit codes (`entrypoints.cli.exit_codes`): 0 all good, 1 some users failed validation or writing,
2 the operator's to fix (usage, configuration, a mapping that does not fit the source, a missing
table), 3 a dependency (PostgreSQL, DynamoDB) was unreachable, 130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import NoReturn

from user_migration.adapters.dynamodb.client import dynamodb_client
from user_migration.adapters.dynamodb.codec import key_attribute_type
from user_migration.adapters.dynamodb.tables import ensure_tables
from user_migration.container import build_container
from user_migration.domain.errors import DependencyUnavailable, InvalidParameter, SetupError
from user_migration.domain.observe.stall_watch import StallNotices
from user_migration.entrypoints.cli import cdc as cli_cdc
from user_migration.entrypoints.cli import mapping as cli_mapping
from user_migration.entrypoints.cli import migrate as cli_migrate
from user_migration.entrypoints.cli import stats as cli_stats
from user_migration.entrypoints.cli import sync as cli_sync
from user_migration.entrypoints.cli import verify as cli_verify
from user_migration.entrypoints.cli.exit_codes import EXIT_INTERRUPTED, EXIT_OK, EXIT_UNAVAILABLE, EXIT_USAGE
from user_migration.entrypoints.cli.stalls import watched
from user_migration.entrypoints.heap import freeze_long_lived_objects
from user_migration.entrypoints.library import UserMigration
from user_migration.entrypoints.logs import JsonLines
from user_migration.entrypoints.settings import (
    ConfigurationError,
    Settings,
    load_settings,
    parse_max_write_units,
    parse_write_capacity_percent,
)
from user_migration.entrypoints.stall_lines import StallPrinter

MAPPING_HELP = "the mapping file (TOML) of your source table; default: MAPPING_FILE, else the documented layout"
# The write budget's flags, and the settings each overrides (either flag replaces both variables).
BUDGET_FLAGS = {"max_write_units": "MAX_WRITE_UNITS", "write_capacity_percent": "WRITE_CAPACITY_PERCENT"}


def _checked_by(parse: Callable[[str], object]) -> Callable[[str], str]:
    """An argparse type that checks a value as its setting is checked (argparse names the flag in the error,
    exit 2) and keeps its text, to be handed on as that setting."""

    def check(text: str) -> str:
        try:
            parse(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None
        return text.strip()

    return check


def add_budget_arguments(parser: argparse.ArgumentParser) -> None:
    """--max-write-units and --write-capacity-percent: the write budget of a command that writes."""
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument(
        "--max-write-units",
        type=_checked_by(parse_max_write_units),
        metavar="N",
        help="write capacity units per second for all processes writing the table together (0: unlimited); "
        "default: MAX_WRITE_UNITS",
    )
    budget.add_argument(
        "--write-capacity-percent",
        type=_checked_by(parse_write_capacity_percent),
        metavar="P",
        help="P%% of the users table's write capacity (provisioned, or the on-demand maximum, else 4,000/s), "
        "for all processes together; default: WRITE_CAPACITY_PERCENT",
    )


def _with_budget_flags(arguments: argparse.Namespace, environ: dict[str, str]) -> None:
    """The budget flags given override the budget settings of the environment (both of them)."""
    for attribute, variable in BUDGET_FLAGS.items():
        value = getattr(arguments, attribute, None)
        if value is not None:
            for other in BUDGET_FLAGS.values():
                environ.pop(other, None)
            environ[variable] = value


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface and its subcommands."""
    parser = argparse.ArgumentParser(prog="user-migration", description="Move users from PostgreSQL to DynamoDB.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser(
        "serve", help="serve the HTTP API (configured from the environment: docs/configuration.md)"
    )
    tables = commands.add_parser("init-tables", help="create the DynamoDB users and state tables if missing")
    tables.add_argument("--json", action="store_true", help="print the result as JSON")
    mapping = commands.add_parser("mapping", help="show what the mapping makes of the source, and try it on a sample")
    cli_mapping.add_mapping_arguments(mapping)
    migrate = commands.add_parser("migrate", help="migrate the whole source, one user, or earlier failures")
    cli_migrate.add_migrate_arguments(migrate)
    sync = commands.add_parser(
        "sync", help="carry the changes committed in PostgreSQL since the backfill into DynamoDB"
    )
    cli_sync.add_sync_arguments(sync)
    cdc = commands.add_parser("cdc", help="set up or tear down change data capture (replication slot, publication)")
    cli_cdc.add_cdc_arguments(cdc)
    verify = commands.add_parser("verify", help="compare DynamoDB with PostgreSQL, user by user; --repair fixes")
    cli_verify.add_verify_arguments(verify)
    stats = commands.add_parser("stats", help="print the migration statistics")
    stats.add_argument("--json", action="store_true", help="print the statistics as JSON")
    for command in (serve, tables, mapping, migrate, sync, cdc, verify, stats):
        command.add_argument("--mapping", metavar="FILE", help=MAPPING_HELP)
    for command in (migrate, sync, verify):
        add_budget_arguments(command)
    demo = commands.add_parser("demo", help="run the service on an embedded PostgreSQL and DynamoDB with demo data")
    demo.add_argument("--users", type=int, default=10_000, help="demo users to create (default 10,000)")
    demo.add_argument("--host", default="127.0.0.1", help="where to listen (default 127.0.0.1)")
    demo.add_argument("--port", type=int, default=3000, help="port to listen on (default 3000)")
    demo.add_argument("--data-dir", type=Path, default=Path(".demo-data"), help="where the demo keeps its data")
    demo.add_argument(
        "--offline",
        action="store_true",
        help="unconditional batch writes (the offline mode; faster on the embedded moto)",
    )
    return parser


async def _init_tables(settings: Settings) -> list[str]:
    async with dynamodb_client(settings.dynamodb_endpoint_url, settings.aws_region) as client:
        mapping = settings.effective_mapping
        return await ensure_tables(
            client,
            settings.dynamodb_table,
            settings.dynamodb_state_table,
            mapping.key_attribute,
            key_attribute_type(mapping.key_kind),
        )


def init_tables(arguments: argparse.Namespace) -> int:
    """Create both tables; says which were created and which were there already."""
    settings = load_settings(purpose="tables", mapping_file=arguments.mapping)
    created = asyncio.run(_init_tables(settings))
    tables = {
        table: ("created" if table in created else "already exists")
        for table in (settings.dynamodb_table, settings.dynamodb_state_table)
    }
    if arguments.json:
        print(json.dumps({"tables": tables}))
    else:
        for table, what in tables.items():
            print(f"{table}: {what}")
    return EXIT_OK


def serve(arguments: argparse.Namespace) -> int:
    """Serve the API until SIGINT/SIGTERM, then shut down gracefully."""
    from user_migration.entrypoints.http.serve import serve as serve_api  # the web server, only for this command

    serve_api(load_settings(purpose="serve", mapping_file=arguments.mapping))
    return EXIT_OK


class _StderrLines(logging.Handler):
    """Each record as a line on the stderr of the moment (tests swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        sys.stderr.write(self.format(record) + "\n")
        sys.stderr.flush()


_WRITE_PATH_LINES = _StderrLines()


def say_write_path(command: str, json_lines: bool) -> None:
    """Print how live-safe writes go out (PartiQL batches or PutItems, probed at the first write), as
    the stall lines are printed: `user-migration COMMAND: ...`, or a JSON line."""
    _WRITE_PATH_LINES.setFormatter(
        JsonLines() if json_lines else logging.Formatter(f"user-migration {command}: %(message)s")
    )
    writes = logging.getLogger("user_migration.writes")
    if _WRITE_PATH_LINES not in writes.handlers:
        writes.addHandler(_WRITE_PATH_LINES)
    writes.setLevel(logging.INFO)
    writes.propagate = False


def _with_library(
    command: Callable[[UserMigration, argparse.Namespace], Awaitable[int]], check_tables: bool = True
) -> Callable[[argparse.Namespace], int]:
    def run(arguments: argparse.Namespace) -> int:
        freeze_long_lived_objects()  # what was imported: not scanned while the library is wired
        environ = dict(os.environ)
        if getattr(arguments, "offline", False):
            environ["OFFLINE_WRITES"] = "true"
        _with_budget_flags(arguments, environ)
        settings = load_settings(environ, purpose="library", mapping_file=arguments.mapping)
        # The CLI waits for a dependency that stops answering (retrying, out loud) up to the patience.
        config = {**settings.container_config(), "dependency_patience_seconds": settings.dependency_patience_seconds}
        library = UserMigration(build_container(config), check_tables)
        notices = StallNotices(
            library.container.stall_watch(),
            settings.dependency_patience_seconds,
            notice_seconds=settings.stall_notice_seconds,
        )
        json_lines = environ.get("LOG_FORMAT", "").strip().lower() == "json"
        say = StallPrinter(arguments.command, settings.dependency_patience_seconds, json_lines)
        say_write_path(arguments.command, json_lines)

        async def main() -> int:
            async with library as migration:
                return await command(migration, arguments)

        def abandon(error: DependencyUnavailable) -> NoReturn:
            _fail(arguments, error.code, str(error), EXIT_UNAVAILABLE)
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(EXIT_UNAVAILABLE)

        return asyncio.run(watched(main(), notices, say, abandon))

    return run


def _checked(
    check: Callable[[argparse.Namespace], str | None],
    command: Callable[[UserMigration, argparse.Namespace], Awaitable[int]],
) -> Callable[[argparse.Namespace], int]:
    """`command` with the library, once `check` found nothing wrong in the arguments' combination."""
    with_library = _with_library(command)

    def run(arguments: argparse.Namespace) -> int:
        problem = check(arguments)
        if problem is not None:
            raise InvalidParameter("arguments", problem)
        return with_library(arguments)

    return run


def _demo(arguments: argparse.Namespace) -> int:
    from user_migration.entrypoints.demo.run import run_demo  # the demo's extra packages load only for the demo

    return run_demo(
        users=arguments.users,
        host=arguments.host,
        port=arguments.port,
        data_dir=arguments.data_dir,
        offline=arguments.offline,
    )


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "serve": serve,
    "init-tables": init_tables,
    "mapping": _with_library(cli_mapping.show_mapping, check_tables=False),
    "migrate": _checked(cli_migrate.check_migrate_arguments, cli_migrate.migrate),
    "sync": _checked(cli_sync.check_sync_arguments, cli_sync.sync),
    "cdc": _with_library(cli_cdc.cdc),
    "verify": _checked(cli_verify.check_verify_arguments, cli_verify.verify),
    "stats": _with_library(cli_stats.stats),
    "demo": _demo,
}


def _fail(
    arguments: argparse.Namespace, code: str, message: str, exit_code: int, problems: list[str] | None = None
) -> int:
    print(f"user-migration {arguments.command}: {message}", file=sys.stderr)
    if getattr(arguments, "json", False):
        body: dict[str, object] = {"error": code, "message": message}
        if problems is not None:
            body["problems"] = problems
        print(json.dumps(body))
    return exit_code


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    arguments = build_parser().parse_args(argv)
    try:
        return COMMANDS[arguments.command](arguments)
    except ConfigurationError as error:
        return _fail(arguments, "configuration_error", str(error), EXIT_USAGE, error.problems)
    except SetupError as error:  # a mapping that does not fit the source, a missing table
        return _fail(arguments, error.code, str(error), EXIT_USAGE, error.problems)
    except InvalidParameter as error:
        return _fail(arguments, error.code, error.message, EXIT_USAGE)
    except ValueError as error:  # e.g. an unreadable --retry-failed file
        return _fail(arguments, "invalid_input", str(error), EXIT_USAGE)
    except DependencyUnavailable as error:
        return _fail(arguments, error.code, str(error), EXIT_UNAVAILABLE)
    except (KeyboardInterrupt, asyncio.CancelledError):
        message = "interrupted; progress so far is recorded (use --resume)"
        return _fail(arguments, "interrupted", message, EXIT_INTERRUPTED)


if __name__ == "__main__":
    sys.exit(main())
