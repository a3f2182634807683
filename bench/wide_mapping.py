"""The `mapping_20_columns` scenario: a mapping file of 20 attributes of mixed PostgreSQL types,
with rules, and deterministic rows as the PostgreSQL adapter hands them over.

The source table it describes (never created: only the domain is measured with it)::

    bench_wide_users(id bigint, login varchar(32), city varchar(64), full_name text,
        contact_email text, tier text, login_count integer, external_ref bigint,
        balance numeric(12,2), credit_limit numeric(14,4), score double precision, ratio real,
        verified boolean, signed_up_at timestamptz, last_seen_at timestamptz, birth_date date,
        preferences jsonb, lucky_numbers integer[], labels text[], device_id uuid, avatar_sha bytea)

Each value has the Python type `adapters.postgres.types` gives that column: text, varchar and uuid
as str, integers as int, numeric as Decimal, real/double as float, boolean as bool, timestamptz as
an aware UTC datetime, date as its `YYYY-MM-DD` text, jsonb as `Json` (exact numbers), arrays as
lists, bytea as bytes; SQL NULL as None. Every row is valid, so every user is prepared.
"""

from __future__ import annotations

import hashlib
import random
import tomllib
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from user_migration.adapters.postgres.types import json_value
from user_migration.domain.convert.mapping import UserMapping, parse_mapping
from user_migration.domain.model import SourceUser

COLUMNS = 20
MAPPING_TOML = """
[source]
table = "bench_wide_users"
key = "id"
version = "last_seen_at"

[attributes]
login = "login"                   # varchar(32)
city = "city"                     # varchar(64)
full_name = "full_name"           # text
contact_email = "contact_email"   # text
tier = "tier"                     # text
login_count = "login_count"       # integer
external_ref = "external_ref"     # bigint
balance = "balance"               # numeric(12,2)
credit_limit = "credit_limit"     # numeric(14,4)
score = "score"                   # double precision
ratio = "ratio"                   # real
verified = "verified"             # boolean
signed_up_at = "signed_up_at"     # timestamptz
last_seen_at = "last_seen_at"     # timestamptz
birth_date = "birth_date"         # date
preferences = "preferences"       # jsonb
lucky_numbers = "lucky_numbers"   # integer[]
labels = "labels"                 # text[]
device_id = "device_id"           # uuid
avatar_sha = "avatar_sha"         # bytea

[rules.login]
required = true
pattern = "[a-z][a-z0-9_.]{2,31}"

[rules.city]
max_length = 64

[rules.full_name]
required = true

[rules.contact_email]
required = true
email = true

[rules.tier]
required = true
allowed = ["free", "pro", "team", "enterprise"]

[rules.signed_up_at]
required = true

[rules.preferences]
json_object = true

[other_columns]
carry = false
"""

_FIRST = ("ana", "jose", "zoe", "lukasz", "soren", "aisha", "mateo", "yuki", "olga", "chloe", "priya", "kwame")
_LAST = ("garcia", "muller", "nguyen", "obrien", "kowalski", "tanaka", "smith", "rossi", "silva", "chen", "patel")
_DISPLAY = {"ana": "Ana", "jose": "José", "zoe": "Zoë", "lukasz": "Łukasz", "soren": "Søren", "chloe": "Chloé"}
_CITIES = ("Berlin", "São Paulo", "Kraków", "Montréal", "London", "Tokyo", "Lagos", "Zürich", "Reykjavík")
_DOMAINS = ("example.com", "example.org", "mail.example.net", "corp.example.co.uk")
_TIERS = ("free", "free", "free", "pro", "pro", "team", "enterprise")
_LABELS = ("beta", "vip", "newsletter", "early-adopter", "support-priority", "partner")
_LOCALES = ("en-US", "en-GB", "de-DE", "fr-FR", "es-ES", "pt-BR", "ja-JP", "pl-PL")
_EPOCH = datetime(2015, 1, 1, tzinfo=UTC)
_SPAN_SECONDS = 10 * 365 * 24 * 3600


def wide_mapping() -> UserMapping:
    """The scenario's mapping, parsed from its TOML text as a mapping file is."""
    return parse_mapping(tomllib.loads(MAPPING_TOML), "bench/wide_mapping.py")


def _preferences(rng: random.Random) -> str:
    """A jsonb text (as PostgreSQL renders it), some settings and a nested object."""
    parts = [
        f'"locale": "{rng.choice(_LOCALES)}"',
        f'"theme": "{rng.choice(("light", "dark", "system"))}"',
        f'"notifications": {{"email": {"true" if rng.random() < 0.5 else "false"}, '
        f'"push": {"true" if rng.random() < 0.3 else "false"}}}',
        f'"page_size": {rng.choice((10, 25, 50, 100))}',
    ]
    if rng.random() < 0.5:
        parts.append(f'"discount": {rng.randrange(0, 5000) / 100:.2f}')
    return "{" + ", ".join(parts) + "}"


def _maybe(rng: random.Random, value: object, null_share: float = 0.1) -> object:
    return None if rng.random() < null_share else value


def rows(first_id: int, count: int, seed: int = 20) -> list[SourceUser]:
    """`count` rows with ids `first_id`.. as the PostgreSQL adapter hands them over (the same ids
    always give the same rows)."""
    rng = random.Random(seed * 1_000_003 + first_id)
    users = []
    for user_id in range(first_id, first_id + count):
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        signed_up = _EPOCH + timedelta(seconds=rng.randrange(_SPAN_SECONDS), microseconds=rng.randrange(1_000_000))
        last_seen = signed_up + timedelta(seconds=rng.randrange(50_000_000), microseconds=rng.randrange(1_000_000))
        born = datetime(1950, 1, 1) + timedelta(days=rng.randrange(365 * 55))
        values = {
            "login": f"{first}.{last}{user_id}",
            "city": _maybe(rng, rng.choice(_CITIES)),
            "full_name": f"{_DISPLAY.get(first, first.capitalize())} {last.capitalize()}",
            "contact_email": f"{first}.{last}{user_id}@{rng.choice(_DOMAINS)}",
            "tier": rng.choice(_TIERS),
            "login_count": rng.randrange(0, 20_000),
            "external_ref": rng.randrange(10**12, 10**18),
            "balance": Decimal(rng.randrange(0, 10**9)).scaleb(-2),
            "credit_limit": _maybe(rng, Decimal(rng.randrange(0, 10**10)).scaleb(-4), 0.3),
            "score": rng.random() * 100,
            "ratio": _maybe(rng, round(rng.random(), 6), 0.2),  # a real: fewer digits than a double
            "verified": rng.random() < 0.8,
            "signed_up_at": signed_up,
            "last_seen_at": _maybe(rng, last_seen),
            "birth_date": _maybe(rng, born.strftime("%Y-%m-%d"), 0.2),
            "preferences": _maybe(rng, json_value(_preferences(rng))),
            "lucky_numbers": [rng.randrange(1, 100) for _ in range(rng.randrange(0, 6))],
            "labels": rng.sample(_LABELS, rng.randrange(0, 4)),
            "device_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "avatar_sha": _maybe(rng, hashlib.sha256(user_id.to_bytes(8, "big")).digest(), 0.3),
        }
        assert len(values) == COLUMNS
        users.append(SourceUser(user_id, values))
    return users
