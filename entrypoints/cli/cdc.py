"""The `cdc` command: set up and tear down the source's change data capture (a replication slot
with the `pgoutput` plugin and a publication of the users table)."""

from __future__ import annotations

import argparse
import json

from user_migration.adapters.postgres.pgoutput import lsn_text
from user_migration.entrypoints.cli.exit_codes import EXIT_OK, EXIT_USAGE
from user_migration.entrypoints.library import UserMigration


def add_cdc_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `user-migration cdc`."""
    parser.add_argument(
        "action",
        choices=("setup", "teardown", "check"),
        help="setup: create the publication and the slot; teardown: drop both; check: name what setup lacks",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


async def cdc(migration: UserMigration, arguments: argparse.Namespace) -> int:
    """Run `cdc` with its options; returns the exit code (a missing setting raises `SetupError`: 2)."""
    if arguments.action == "setup":
        setup = await migration.set_up_change_capture()
        result: dict[str, object] = {
            "created": list(setup.created),
            "already_there": list(setup.existing),
            "slot_position": lsn_text(setup.slot_position),
        }
        lines = [f"created {what}" for what in setup.created] + [f"{what}: already there" for what in setup.existing]
        lines.append(f"The slot keeps every change from {lsn_text(setup.slot_position)} on until a sync stores it.")
    elif arguments.action == "teardown":
        teardown = await migration.tear_down_change_capture()
        result = {"dropped": list(teardown.dropped), "absent": list(teardown.absent)}
        lines = [f"dropped {what}" for what in teardown.dropped] + [f"{what}: not there" for what in teardown.absent]
        lines.append("Checked: neither the slot nor the publication exists now.")
    else:
        problems = await migration.change_capture_problems()
        result = {"problems": problems}
        lines = [f"  - {problem}" for problem in problems] or ["Change capture can be set up (or is)."]
        if problems:
            lines.insert(0, "change capture cannot be set up:")
    if arguments.json:
        print(json.dumps(result))
    else:
        print("\n".join(lines))
    return EXIT_USAGE if arguments.action == "check" and result["problems"] else EXIT_OK
