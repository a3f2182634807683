"""The `user-migration` command: `serve` the API, `init-tables` in DynamoDB.

Exit codes: 0 all good, 2 usage or configuration error, 3 a dependency was unreachable.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from aiohttp import web

from adapters.dynamodb_client import dynamodb_client
from adapters.dynamodb_tables import ensure_tables
from domain.errors import DependencyUnavailable
from entrypoints.settings import ConfigurationError, Settings, load_settings
from entrypoints.web_app import init_app

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface and its subcommands."""
    parser = argparse.ArgumentParser(prog="user-migration", description="Move users from PostgreSQL to DynamoDB.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("serve", help="serve the HTTP API (configuration from the environment; see README)")
    commands.add_parser("init-tables", help="create the DynamoDB users and state tables if they do not exist")
    return parser


async def _init_tables(settings: Settings) -> list[str]:
    async with dynamodb_client(settings.dynamodb_endpoint_url, settings.aws_region) as client:
        return await ensure_tables(client, settings.dynamodb_table, settings.dynamodb_state_table)


def init_tables(settings: Settings) -> int:
    """Create both tables; says which were created and which were there already."""
    created = asyncio.run(_init_tables(settings))
    for table in (settings.dynamodb_table, settings.dynamodb_state_table):
        print(f"{table}: {'created' if table in created else 'already exists'}")
    return EXIT_OK


def serve(settings: Settings) -> int:
    """Serve the API until SIGINT/SIGTERM."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger(__name__).info("starting with %r", settings)
    web.run_app(init_app(settings), host=settings.host, port=settings.port, print=None)
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    arguments = build_parser().parse_args(argv)
    try:
        if arguments.command == "serve":
            return serve(load_settings(purpose="serve"))
        return init_tables(load_settings(purpose="tables"))
    except ConfigurationError as error:
        print(f"user-migration {arguments.command}: {error}", file=sys.stderr)
        return EXIT_USAGE
    except DependencyUnavailable as error:
        print(f"user-migration {arguments.command}: {error}", file=sys.stderr)
        return EXIT_UNAVAILABLE


if __name__ == "__main__":
    sys.exit(main())
