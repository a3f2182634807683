"""`user-migration mapping`: what the mapping makes of the source, before anything is migrated.

Every source column with the attribute and DynamoDB type it becomes, the columns left out, the
rules per attribute, and the outcome of preparing a sample of rows. A mapping that does not fit
the source is refused with every problem named (exit 2), as every other command refuses it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from user_migration.container import resolve
from user_migration.domain.convert.mapping import SourcePlan, UserMapping
from user_migration.domain.convert.rules import Rejection, UserPreparer, failure_text, reason_code
from user_migration.entrypoints.cli.exit_codes import EXIT_OK
from user_migration.entrypoints.library import UserMigration

SHOWN_REJECTIONS = 20


def add_mapping_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `user-migration mapping`."""
    parser.add_argument("--sample", type=int, default=100, metavar="N", help="rows to try the mapping on (default 100)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def _rules(mapping: UserMapping, plan: SourcePlan) -> dict[str, dict[str, Any]]:
    shown = {}
    for column in plan.columns:
        if column.attribute is None or column.role == "key":
            continue
        if rules := mapping.rules_for(column.attribute).as_dict():
            shown[column.attribute] = rules
    return shown


async def _sample(migration: UserMigration, preparer: UserPreparer, size: int) -> dict[str, Any]:
    source = await resolve(migration.container.user_source())
    users = await source.read_page(source.key_kind.first, size) if size > 0 else []
    now = datetime.now(UTC)
    rejections = [outcome for user in users if isinstance(outcome := preparer.prepare(user, now), Rejection)]
    by_reason = Counter(reason_code(reason) for rejection in rejections for reason in rejection.reasons)
    return {
        "read": len(users),
        "valid": len(users) - len(rejections),
        "rejected": len(rejections),
        "by_reason": dict(sorted(by_reason.items())),
        "errors": [failure_text(rejection.user_id, rejection.reasons) for rejection in rejections],
    }


def _print_text(result: dict[str, Any]) -> None:
    print(f"Mapping: {result['mapping']}")
    print(f"Source: {result['table']}, key column {result['key']!r} -> {result['key_attribute']} (N)")
    print()
    width = max([len(column["source"]) for column in result["columns"]] + [6])
    types = max([len(column["source_type"]) for column in result["columns"]] + [15])
    print(f"{'source':<{width}}  {'PostgreSQL type':<{types}}  {'role':<10}  attribute (DynamoDB type)")
    for column in result["columns"]:
        target = "-" if column["attribute"] is None else f"{column['attribute']} ({column['target_type'] or '?'})"
        print(f"{column['source']:<{width}}  {column['source_type']:<{types}}  {column['role']:<10}  {target}")
    if result["excluded"]:
        print(f"\nExcluded (never read): {', '.join(result['excluded'])}")
    print("\nRules:")
    for attribute, rules in result["rules"].items():
        print(f"  {attribute}: {', '.join(f'{name}={value!r}' for name, value in rules.items())}")
    if not result["rules"]:
        print("  (none: only what DynamoDB requires)")
    sample = result["sample"]
    print(f"\nSample of {sample['read']} rows: {sample['valid']} valid, {sample['rejected']} rejected.")
    for code, count in sample["by_reason"].items():
        print(f"  {code}: {count}")
    for text in sample["errors"][:SHOWN_REJECTIONS]:
        print(f"  {text}", file=sys.stderr)
    if sample["rejected"] > SHOWN_REJECTIONS:
        print(f"  ... and {sample['rejected'] - SHOWN_REJECTIONS} more", file=sys.stderr)


async def show_mapping(migration: UserMigration, arguments: argparse.Namespace) -> int:
    """Describe the mapping against the source and try it on a sample; returns the exit code."""
    plan = await migration.describe_source()
    mapping = migration.mapping
    result = {
        "mapping": mapping.origin,
        "table": plan.table,
        "key": plan.key,
        "key_attribute": mapping.key_attribute,
        "columns": [
            {
                "source": column.source,
                "source_type": column.source_type,
                "role": column.role,
                "attribute": column.attribute,
                "target_type": column.target_type,
            }
            for column in plan.columns
            if column.role != "excluded"
        ],
        "excluded": [column.source for column in plan.columns if column.role == "excluded"],
        "rules": _rules(mapping, plan),
        "sample": await _sample(migration, migration.preparer(), arguments.sample),
    }
    if arguments.json:
        print(json.dumps(result))
    else:
        _print_text(result)
    return EXIT_OK
