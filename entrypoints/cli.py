"""The `user-migration` command."""

from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface and its subcommands."""
    parser = argparse.ArgumentParser(prog="user-migration", description=__doc__)
    parser.add_subparsers(dest="command", required=True)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    parser.parse_args(argv)
    return 2


if __name__ == "__main__":
    sys.exit(main())
