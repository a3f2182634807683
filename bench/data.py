"""Benchmark users: realistic, deterministic and all valid, seeded into PostgreSQL with COPY.

Every contender moves the same rows, so every one of them writes exactly the same number of items.
"""

from __future__ import annotations

import io
import json
import os
import random
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta

import psycopg2

from user_migration.adapters.postgres.source import parse_profile, quote_table_name
from user_migration.domain.model import User

_FIRST = ("ana", "jose", "zoe", "lukasz", "soren", "aisha", "mateo", "yuki", "olga", "chloe", "priya", "kwame")
_LAST = ("garcia", "muller", "nguyen", "obrien", "kowalski", "tanaka", "smith", "rossi", "silva", "chen", "patel")
_DISPLAY = {"ana": "Ana", "jose": "José", "zoe": "Zoë", "lukasz": "Łukasz", "soren": "Søren", "chloe": "Chloé"}
_DOMAINS = ("example.com", "example.org", "mail.example.net", "corp.example.co.uk")
_LOCALES = ("en-US", "en-GB", "de-DE", "fr-FR", "es-ES", "pt-BR", "ja-JP", "pl-PL")
_TIMEZONES = ("UTC", "Europe/Berlin", "Europe/London", "America/New_York", "Asia/Tokyo")
_PLANS = ("free", "free", "free", "pro", "pro", "team", "enterprise")
_TAGS = ("beta", "vip", "newsletter", "early-adopter", "support-priority", "partner")
_CITIES = (
    ("Berlin", "DE", "52.520008", "13.404954"),
    ("São Paulo", "BR", "-23.550520", "-46.633308"),
    ("Kraków", "PL", "50.064651", "19.944981"),
    ("Montréal", "CA", "45.501690", "-73.567253"),
)
_EPOCH = datetime(2015, 1, 1, tzinfo=UTC)
_SPAN_SECONDS = 10 * 365 * 24 * 3600

DDL = """CREATE TABLE {table} (
    id BIGINT PRIMARY KEY, username TEXT, email TEXT, display_name TEXT,
    status TEXT NOT NULL DEFAULT 'active', created_at TIMESTAMPTZ, updated_at TIMESTAMPTZ, profile JSONB
)"""


def _profile_json(rng: random.Random) -> str | None:
    """A profile like a product's users have: a few settings, often tags and an address."""
    if rng.random() < 0.1:
        return None
    parts = [
        f'"locale": "{rng.choice(_LOCALES)}"',
        f'"timezone": "{rng.choice(_TIMEZONES)}"',
        f'"plan": "{rng.choice(_PLANS)}"',
        f'"newsletter": {"true" if rng.random() < 0.4 else "false"}',
        f'"login_count": {rng.randrange(0, 5000)}',
    ]
    if rng.random() < 0.6:
        parts.append('"tags": ' + json.dumps(rng.sample(_TAGS, rng.randrange(1, 4))))
    if rng.random() < 0.5:
        parts.append(f'"balance": {rng.randrange(0, 5_000_000) / 100:.2f}')
    if rng.random() < 0.5:
        city, country, latitude, longitude = rng.choice(_CITIES)
        parts.append(
            f'"address": {{"city": {json.dumps(city)}, "country": "{country}", '
            f'"geo": {{"lat": {latitude}, "lon": {longitude}}}}}'
        )
    return "{" + ", ".join(parts) + "}"


Row = tuple[int, str, str, str | None, str, datetime, datetime | None, str | None]


def rows(first_id: int, count: int, seed: int = 6) -> Iterator[Row]:
    """`count` source rows with ids `first_id`.. (the same ids always give the same rows)."""
    rng = random.Random(seed * 1_000_003 + first_id)
    for user_id in range(first_id, first_id + count):
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        display = f"{_DISPLAY.get(first, first.capitalize())} {last.capitalize()}"
        created = _EPOCH + timedelta(seconds=rng.randrange(_SPAN_SECONDS), microseconds=rng.randrange(1_000_000))
        updated = created + timedelta(seconds=rng.randrange(10_000_000)) if rng.random() < 0.7 else None
        yield (
            user_id,
            f"{first}.{last}{user_id}",
            f"{first}.{last}{user_id}@{rng.choice(_DOMAINS)}",
            display if rng.random() < 0.9 else None,
            "active" if rng.random() < 0.9 else rng.choice(("suspended", "deleted")),
            created,
            updated,
            _profile_json(rng),
        )


def users(first_id: int, count: int) -> list[User]:
    """The same rows as the domain sees them after the PostgreSQL adapter read them."""
    return [
        User(
            id=user_id,
            username=username,
            email=email,
            display_name=display_name,
            status=status,
            created_at=created_at,
            updated_at=updated_at,
            profile=parse_profile(profile),
        )
        for user_id, username, email, display_name, status, created_at, updated_at, profile in rows(first_id, count)
    ]


def _copy_text(value: object) -> str:
    if value is None:
        return r"\N"
    text = value.isoformat() if isinstance(value, datetime) else str(value)
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


_COPY_COLUMNS = "id, username, email, display_name, status, created_at, updated_at, profile"


def _copy(cursor: psycopg2.extensions.cursor, quoted: str, source: Iterable[Row]) -> None:
    buffer = io.StringIO()
    for row in source:
        buffer.write("\t".join(_copy_text(value) for value in row) + "\n")
    buffer.seek(0)
    cursor.copy_expert(f"COPY {quoted} ({_COPY_COLUMNS}) FROM STDIN", buffer)


def seed_source(dsn: str, table: str, count: int, chunk: int = 20_000) -> None:
    """(Re)create `table` and fill it with users 1..count."""
    quoted = quote_table_name(table)
    connection = psycopg2.connect(dsn)
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {quoted}")
            cursor.execute(DDL.format(table=quoted))
            for first in range(1, count + 1, chunk):
                _copy(cursor, quoted, rows(first, min(chunk, count + 1 - first)))
            cursor.execute(f"ANALYZE {quoted}")
    finally:
        connection.close()


# The documented layout's attributes, mapped from a copy of a table whose key is a uuid.
UUID_MAPPING = """[source]
table = "{table}"
key = "id"
key_type = "uuid"
version = "updated_at"

[attributes]
username = "username"
email = "email"
display_name = "display_name"
created_at = "created_at"
updated_at = "updated_at"
status = "status"
profile = "profile"

[other_columns]
carry = false
"""


def seed_uuid_copy(dsn: str, source: str, table: str) -> None:
    """(Re)create `table` as `source`'s users with a random uuid key (v4, the Supabase way) instead of
    their integer id: the same rows, so that only the key's kind differs."""
    quoted, copied = quote_table_name(table), quote_table_name(source)
    connection = psycopg2.connect(dsn)
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {quoted}")
            cursor.execute(
                f"CREATE TABLE {quoted} AS SELECT gen_random_uuid() AS id, username, email, display_name, status,"
                f" created_at, updated_at, profile FROM {copied}"
            )
            cursor.execute(f"ALTER TABLE {quoted} ADD PRIMARY KEY (id)")
            cursor.execute(f"ANALYZE {quoted}")
    finally:
        connection.close()


def change_source(dsn: str, table: str, count: int, percent: tuple[int, int, int] = (8, 1, 1)) -> dict[str, int]:
    """Change `table` (users 1..count) as an application would, in one transaction: update, insert
    and delete the given percentages of `count` rows. Updated rows get a new email and
    `updated_at = now()`, and are drawn from the rows that have an `updated_at`: a row without one
    has no version, so the item written from it carries none and `sync` keeps it as someone
    else's (counted `skipped_newer`) rather than replacing it. Inserted rows take the ids after
    `count`; deleted rows are drawn from the others. Returns how many rows of each kind changed."""
    updates, inserts, deletes = (count * share // 100 for share in percent)
    quoted = quote_table_name(table)
    connection = psycopg2.connect(dsn)
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute(f"SELECT id FROM {quoted} WHERE updated_at IS NOT NULL ORDER BY id")
            versioned = [int(row[0]) for row in cursor.fetchall()]
            rng = random.Random(13)
            updated = rng.sample(versioned, updates)
            others = sorted(set(range(1, count + 1)) - set(updated))
            deleted = rng.sample(others, deletes)
            cursor.execute(
                f"UPDATE {quoted} SET email = 'changed.' || email, updated_at = now() WHERE id = ANY(%s)",
                (updated,),
            )
            cursor.execute(f"DELETE FROM {quoted} WHERE id = ANY(%s)", (deleted,))
            _copy(cursor, quoted, rows(count + 1, inserts))
            cursor.execute(f"ANALYZE {quoted}")
    finally:
        connection.close()
    return {"updated": updates, "inserted": inserts, "deleted": deletes}


def fake_aws() -> None:
    """Fake credentials: the benchmark can never reach a real account."""
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_SESSION_TOKEN="testing",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_REGION="us-east-1",
    )
    for name in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        os.environ.pop(name, None)
