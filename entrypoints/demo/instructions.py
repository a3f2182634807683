"""What the demo prints: where everything runs, the token, and the curl workflow to paste."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from user_migration.domain.convert.rules import Rejection
from user_migration.domain.model import User

DEMO_SOURCE_TABLE = "users"


def _retry_example(rejections: Sequence[Rejection]) -> Rejection | None:
    """A rejected user whose only problems are with its email (fixable with one UPDATE), if any."""
    for rejection in rejections:
        if all("email" in reason for reason in rejection.reasons):
            return rejection
    return rejections[0] if rejections else None


def _psql() -> Path | None:
    from pgserver._commands import POSTGRES_BIN_PATH

    executable = Path(POSTGRES_BIN_PATH) / "psql"
    return executable if executable.exists() else None


def instructions(
    users: Sequence[User],
    rejections: Sequence[Rejection],
    token: str,
    base_url: str,
    dsn: str,
    dynamodb_url: str,
    data_dir: Path,
    offline: bool = False,
) -> list[str]:
    auth = f'-H "Authorization: Bearer {token}"'
    curl = "curl -s -w '\\n'"  # -w: a newline after each JSON answer
    api = f"{base_url}/m2/migration"
    lines = [
        "",
        "user-migration demo",
        "===================",
        f"PostgreSQL  {dsn}",
        f"            table {DEMO_SOURCE_TABLE!r}: {len(users):,} demo users, "
        f"{len(rejections):,} of them invalid on purpose",
        f"            (data in {data_dir}; recreated at every start)",
        f"DynamoDB    {dynamodb_url} (moto), tables 'users' and 'user_migration_state'",
        (
            "Writes      offline mode: unconditional batch writes (nothing else writes this DynamoDB)"
            if offline
            else "Writes      live-safe: one conditional PutItem per user, never replacing an item written "
            "meanwhile (this moto serves ~250 a second; `make run DEMO_ARGS=--offline` batches them)"
        ),
        f"API         {base_url}",
        "",
        f"Bearer token: {token}",
        "",
        "Try the workflow from another terminal:",
        "",
        "# 1. Statistics",
        f"{curl} {api}/stats {auth}",
        "",
        "# 2. Dry run: reads, validates and checks the first 10 users, writes nothing",
        f'{curl} "{api}/users?batch_size=10&dry_run=true" {auth}',
        "",
        "# 3. Migrate in batches; each answer's next_start_user_id is where the next batch starts",
        f'{curl} "{api}/users?batch_size=100" {auth}',
    ]
    next_start = int(users[99].id) + 1 if len(users) > 100 else None
    if next_start is not None:
        lines.append(f'{curl} "{api}/users?batch_size=100&start_user_id={next_start}" {auth}')
        after = int(users[199].id) + 1 if len(users) > 200 else None
        if after is not None:
            summary = (
                "python3 -c 'import json,sys; r=json.load(sys.stdin); "
                'print({k: r.get(k) for k in ("migrated_count","skipped_count","failed_count","next_start_user_id")}'
                ', file=sys.stderr); print(r.get("next_start_user_id") or "")\''
            )
            lines += [
                "#    ...and all the rest, 1000 at a time:",
                f'next={after}; while [ -n "$next" ]; do next=$(curl -s '
                f'"{api}/users?batch_size=1000&start_user_id=$next" {auth} | {summary}); done',
            ]
    example = _retry_example(rejections)
    if example is not None:
        user_id, reasons = example.user_id, "; ".join(example.reasons)
        lines += ["", f"# 4. User {user_id} failed ({reasons}). Fix its row, then retry just that user:"]
        psql = _psql()
        if psql is not None and all("email" in reason for reason in example.reasons):
            lines.append(
                f'{psql} "{dsn}" -c "UPDATE {DEMO_SOURCE_TABLE} SET email = \'user{user_id}@example.com\' '
                f'WHERE id = {user_id}"'
            )
        lines.append(f'{curl} "{api}/users?user_id={user_id}" {auth}')
    lines += [
        "",
        f"# {5 if example is not None else 4}. Statistics again",
        f"{curl} {api}/stats {auth}",
        "",
        "Press Ctrl-C to stop.",
        "",
    ]
    return lines
