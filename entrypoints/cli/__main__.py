"""`python -m user_migration.entrypoints.cli`."""

from user_migration.entrypoints.cli.command import run

run()
