"""Demo users for `user-migration demo`: realistic, deterministic, and about 1% invalid on purpose.

`demo_users` builds the users (no I/O); `seed_source` (re)creates the source table and inserts them.
The invalid users break the rules of `domain.convert.rules` in every way a PostgreSQL table can hold
(a missing or malformed username or email, a missing or unreadable created_at, an unknown status,
a profile that is not an object, numbers DynamoDB cannot store exactly, nesting too deep, an empty
key, an item larger than 400 KB, several problems at once), so the demo shows every kind of report.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from importlib import resources
from typing import Any

import attrs
import psycopg2
import psycopg2.extras

from user_migration.adapters.postgres.source import quote_table_name
from user_migration.domain.model import JsonValue, UnreadableValue, User

# (display form, ASCII form for usernames and emails)
_FIRST_NAMES = (
    ("Ana", "ana"),
    ("José", "jose"),
    ("Zoë", "zoe"),
    ("Łukasz", "lukasz"),
    ("Søren", "soren"),
    ("Aïsha", "aisha"),
    ("Mateo", "mateo"),
    ("Yuki", "yuki"),
    ("Olga", "olga"),
    ("Chloé", "chloe"),
    ("Björn", "bjorn"),
    ("Priya", "priya"),
    ("Kwame", "kwame"),
    ("Mei", "mei"),
    ("Noah", "noah"),
    ("Emma", "emma"),
    ("Liam", "liam"),
    ("Fatima", "fatima"),
    ("Diego", "diego"),
    ("Ingrid", "ingrid"),
    ("Hiroshi", "hiroshi"),
    ("Amélie", "amelie"),
    ("Nikolai", "nikolai"),
    ("Sofia", "sofia"),
    ("Oluwaseun", "oluwaseun"),
    ("Siobhán", "siobhan"),
)
_LAST_NAMES = (
    ("García", "garcia"),
    ("Müller", "muller"),
    ("Nguyễn", "nguyen"),
    ("O'Brien", "obrien"),
    ("Kowalski", "kowalski"),
    ("Andersen", "andersen"),
    ("Tanaka", "tanaka"),
    ("Smith", "smith"),
    ("Rossi", "rossi"),
    ("Dubois", "dubois"),
    ("Silva", "silva"),
    ("Ivanova", "ivanova"),
    ("Okafor", "okafor"),
    ("Chen", "chen"),
    ("Johansson", "johansson"),
    ("Patel", "patel"),
    ("Hernández", "hernandez"),
    ("Schmidt", "schmidt"),
    ("Kim", "kim"),
    ("van der Berg", "vanderberg"),
    ("Çelik", "celik"),
    ("Nakamura", "nakamura"),
)
# Display names written in their own script, with an ASCII first/last name for the login.
_NATIVE_NAMES = (
    ("李明", "li", "ming"),
    ("山田 太郎", "taro", "yamada"),
    ("Олег Смирнов", "oleg", "smirnov"),
    ("Γιώργος Παπαδόπουλος", "giorgos", "papadopoulos"),
    ("محمد علي", "mohamed", "ali"),
    ("김민준", "minjun", "kim"),
    ("Nguyễn Thị Hoa", "hoa", "nguyen"),
    ("דנה כהן", "dana", "cohen"),
)
_EMOJI = ("🌻", "🚀", "🎧", "☕", "🐙", "✨", "🏔️", "🎸", "🦊", "📚")
_DOMAINS = (
    "example.com",
    "example.org",
    "mail.example.net",
    "corp.example.co.uk",
    "bücher.example",
    "students.example.edu",
)
_LOCALES = ("en-US", "en-GB", "de-DE", "fr-FR", "es-ES", "pt-BR", "ja-JP", "pl-PL", "sv-SE", "zh-CN")
_TIMEZONES = ("UTC", "Europe/Berlin", "Europe/London", "America/New_York", "America/Sao_Paulo", "Asia/Tokyo")
_PLANS = ("free", "free", "free", "pro", "pro", "team", "enterprise")
_TAGS = ("beta", "vip", "newsletter", "early-adopter", "support-priority", "partner", "churn-risk")
_CITIES = (
    ("Berlin", "DE", Decimal("52.520008"), Decimal("13.404954")),
    ("São Paulo", "BR", Decimal("-23.550520"), Decimal("-46.633308")),
    ("Tōkyō", "JP", Decimal("35.689487"), Decimal("139.691711")),
    ("Kraków", "PL", Decimal("50.064651"), Decimal("19.944981")),
    ("Lagos", "NG", Decimal("6.524379"), Decimal("3.379206")),
    ("Montréal", "CA", Decimal("45.501690"), Decimal("-73.567253")),
    ("Reykjavík", "IS", Decimal("64.146582"), Decimal("-21.942635")),
)

_EPOCH = datetime(2015, 1, 1, tzinfo=UTC)
_NOW = datetime(2024, 12, 31, 23, 59, 59, tzinfo=UTC)
_SPAN_SECONDS = int((_NOW - _EPOCH).total_seconds())
# One user in each block of this many is made invalid (at a random place in the block).
_INVALID_EVERY = 100


def _moment(rng: random.Random, after: datetime = _EPOCH) -> datetime:
    span = int((_NOW - after).total_seconds())
    return after + timedelta(seconds=rng.randrange(max(span, 1)), microseconds=rng.randrange(1_000_000))


def _money(rng: random.Random) -> Decimal:
    return Decimal(rng.randrange(0, 5_000_000)).scaleb(-2)


def _profile(rng: random.Random) -> JsonValue:
    roll = rng.random()
    if roll < 0.08:
        return None
    if roll < 0.11:
        return {}
    profile: dict[str, JsonValue] = {
        "locale": rng.choice(_LOCALES),
        "timezone": rng.choice(_TIMEZONES),
        "plan": rng.choice(_PLANS),
        "newsletter": rng.random() < 0.4,
        "login_count": rng.randrange(0, 5000),
    }
    if rng.random() < 0.7:
        profile["tags"] = rng.sample(_TAGS, rng.randrange(0, 4))
    if rng.random() < 0.5:
        profile["balance"] = _money(rng)
    if rng.random() < 0.2:
        # Exact decimals that a float would mangle; 38 significant digits is DynamoDB's maximum.
        profile["score"] = rng.choice(
            (Decimal("0.1"), Decimal("99.99"), Decimal("1E-7"), Decimal("12345678901234567890123456789012345678"))
        )
    if rng.random() < 0.6:
        city, country, latitude, longitude = rng.choice(_CITIES)
        profile["address"] = {
            "city": city,
            "country": country,
            "geo": {"lat": latitude, "lon": longitude},
        }
    if rng.random() < 0.15:
        profile["preferences"] = {
            "theme": rng.choice(("light", "dark", "system")),
            "notifications": {"email": rng.random() < 0.7, "push": rng.random() < 0.3, "digest": None},
            "shortcuts": [rng.randrange(1, 10) for _ in range(rng.randrange(0, 4))],
        }
    if rng.random() < 0.05:
        profile["bio"] = rng.choice(
            ("Coffee first ☕", "Ich liebe Wandern 🏔️", "Développeuse, Lyon", "日本語を勉強しています", "")
        )
    return profile


def _valid_user(rng: random.Random, user_id: int, taken_usernames: set[str], taken_emails: set[str]) -> User:
    if rng.random() < 0.05:
        display_name, first, last = rng.choice(_NATIVE_NAMES)
    else:
        (first_display, first), (last_display, last) = rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES)
        display_name = f"{first_display} {last_display}"
        if rng.random() < 0.05:
            display_name += " " + rng.choice(_EMOJI)
    username = rng.choice(
        (
            f"{first}.{last}",
            f"{first}_{last}",
            f"{first[0]}{last}",
            f"{first.capitalize()}{last.capitalize()}",
            f"{last}-{first}",
            f"{first}{rng.randrange(1, 100)}",
        )
    )
    if username in taken_usernames:
        username = f"{username}{user_id}"
    taken_usernames.add(username)
    email_local = rng.choice((f"{first}.{last}", f"{first}{last[0]}", f"{first}+news", f"{last}.{first}"))
    email = f"{email_local}@{rng.choice(_DOMAINS)}"
    if email in taken_emails:
        local, domain = email.split("@")
        email = f"{local}{user_id}@{domain}"
    taken_emails.add(email)
    created_at = _moment(rng)
    roll = rng.random()
    status = "active" if roll < 0.85 else "suspended" if roll < 0.93 else "deleted"
    return User(
        id=user_id,
        username=username,
        email=email,
        display_name=None if rng.random() < 0.1 else display_name,
        status=status,
        created_at=created_at,
        updated_at=None if rng.random() < 0.15 else _moment(rng, after=created_at),
        profile=_profile(rng),
    )


def _nested(levels: int) -> JsonValue:
    value: JsonValue = {"leaf": True}
    for level in range(levels):
        value = {f"level{levels - level}": value}
    return value


def _with_profile(user: User, **extra: JsonValue) -> User:
    profile: dict[str, JsonValue] = dict(user.profile) if isinstance(user.profile, dict) else {"plan": "free"}
    profile.update(extra)
    return attrs.evolve(user, profile=profile)


_NOT_OBJECTS: tuple[JsonValue, ...] = (["pro", "beta"], "premium", Decimal(42), True)

# Each way to break a user: a function of (rng, valid user) → invalid user.
_BREAKAGES: tuple[Callable[[random.Random, User], User], ...] = (
    lambda rng, user: attrs.evolve(user, username=rng.choice((None, ""))),
    lambda rng, user: attrs.evolve(
        user, username=rng.choice(("john doe", "ab", "jürgen.weiß", "bad!name", "x" * 40, "@handle"))
    ),
    lambda rng, user: attrs.evolve(user, email=rng.choice((None, ""))),
    lambda rng, user: attrs.evolve(
        user,
        email=rng.choice(
            ("jane.doe.example.com", "jane@@example.com", "jane doe@example.com", "jane@localhost", "@example.com")
        ),
    ),
    lambda rng, user: attrs.evolve(user, created_at=None),
    lambda rng, user: attrs.evolve(
        user, created_at=UnreadableValue("infinity", "'infinity' is not a point in time"), updated_at=None
    ),
    lambda rng, user: attrs.evolve(user, status=rng.choice(("pending", "ACTIVE", "banned", "inactive", ""))),
    lambda rng, user: attrs.evolve(user, profile=rng.choice(_NOT_OBJECTS)),
    lambda rng, user: _with_profile(user, lifetime_value=Decimal("1234567890123456789012345678901234567890.5")),
    lambda rng, user: _with_profile(user, ratio=rng.choice((Decimal("1E+126"), Decimal("-2.5E-131")))),
    lambda rng, user: _with_profile(user, history=_nested(33)),
    lambda rng, user: _with_profile(user, labels={"": "unnamed", "team": "core"}),
    lambda rng, user: _with_profile(user, bio="Lorem ipsum dolor sit amet. " * 15_000),
    lambda rng, user: attrs.evolve(user, username="a b", email=None, status="unknown", profile=[1, 2, 3]),
)


def demo_users(count: int, seed: int = 7) -> list[User]:
    """`count` users with ascending, unique (not contiguous) ids; the same users for the same seed.

    About 1% break validation rules (one at a random place in every block of 100), each in one of
    the ways listed in `_BREAKAGES`, taken in a shuffled rotation so that every kind shows up.
    """
    if count < 0:
        raise ValueError("count must not be negative")
    rng = random.Random(seed)
    invalid_positions = {block + rng.randrange(_INVALID_EVERY) for block in range(0, count, _INVALID_EVERY)}
    breakages = list(_BREAKAGES)
    rng.shuffle(breakages)
    taken_usernames: set[str] = set()
    taken_emails: set[str] = set()
    users: list[User] = []
    user_id = 0
    broken = 0
    for position in range(count):
        # Mostly consecutive ids, with the gaps that deleted rows leave behind.
        user_id += 1 if rng.random() < 0.9 else rng.randrange(2, 6)
        user = _valid_user(rng, user_id, taken_usernames, taken_emails)
        if position in invalid_positions:
            user = breakages[broken % len(breakages)](rng, user)
            broken += 1
        users.append(user)
    return users


def json_text(value: JsonValue) -> str:
    """JSON text with Decimals written as their exact digits (json.dumps would refuse them)."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return (
            "{"
            + ",".join(f"{json.dumps(key, ensure_ascii=False)}:{json_text(item)}" for key, item in value.items())
            + "}"
        )
    if isinstance(value, list):
        return "[" + ",".join(json_text(item) for item in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def _column(value: Any) -> Any:
    # A value PostgreSQL holds but Python cannot (e.g. 'infinity') goes in as its text.
    return value.raw if isinstance(value, UnreadableValue) else value


def _row(user: User) -> tuple[Any, ...]:
    if isinstance(user.profile, UnreadableValue):
        profile: str | None = user.profile.raw
    else:
        profile = None if user.profile is None else json_text(user.profile)
    return (
        user.id,
        user.username,
        user.email,
        user.display_name,
        user.status,
        _column(user.created_at),
        _column(user.updated_at),
        profile,
    )


def seed_source(dsn: str, table: str, users: Iterable[User]) -> None:
    """Drop and recreate `table` from `adapters/sql/schema.sql`, then insert `users`, in one transaction."""
    quoted = quote_table_name(table)
    schema = resources.files("user_migration.adapters").joinpath("sql/schema.sql").read_text(encoding="utf-8")
    ddl = schema.replace("CREATE TABLE IF NOT EXISTS users", f"CREATE TABLE {quoted}", 1)
    if ddl == schema:
        raise RuntimeError("adapters/sql/schema.sql no longer starts with 'CREATE TABLE IF NOT EXISTS users'")
    connection = psycopg2.connect(dsn)
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {quoted}")
            cursor.execute(ddl)
            psycopg2.extras.execute_values(
                cursor,
                f"INSERT INTO {quoted} "
                "(id, username, email, display_name, status, created_at, updated_at, profile) VALUES %s",
                [_row(user) for user in users],
                template="(%s, %s, %s, %s, %s, %s::timestamptz, %s::timestamptz, %s::jsonb)",
                page_size=1000,
            )
    finally:
        connection.close()
