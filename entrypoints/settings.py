"""Configuration, read from the environment in this one place."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Literal, TypeVar
from urllib.parse import urlparse

import attrs
import botocore.session
from botocore.exceptions import BotoCoreError

from user_migration.adapters.postgres.source import quote_table_name
from user_migration.domain.convert.mapping import UserMapping, default_mapping
from user_migration.domain.migrate.run import DEFAULT_PAGES_IN_FLIGHT, OFFLINE_SEGMENTS_IN_FLIGHT
from user_migration.domain.observe.source_count import DEFAULT_REFRESH_SECONDS
from user_migration.domain.observe.stall_watch import NOTICE_SECONDS
from user_migration.domain.parallel.segments import FEWEST_USERS_PER_SEGMENT
from user_migration.entrypoints.http.auth_rules import HASH_PREFIX, JwtRules
from user_migration.entrypoints.logs import LogFormat
from user_migration.entrypoints.mapping_file import read_mapping

_SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")

Purpose = Literal["serve", "library", "tables"]

_N = TypeVar("_N", int, float)


class ConfigurationError(Exception):
    """Something required is missing or malformed; `problems` lists every one of them."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid configuration:\n" + "\n".join(f"  - {problem}" for problem in problems))
        self.problems = problems


@attrs.frozen
class Settings:
    """Everything the service needs to know; secrets are kept out of `repr`."""

    database_url: str | None = attrs.field(default=None, repr=False)
    source_table: str = "users"
    dynamodb_table: str = "users"
    dynamodb_state_table: str = "user_migration_state"
    dynamodb_endpoint_url: str | None = None
    aws_region: str | None = None
    api_tokens: tuple[str, ...] = attrs.field(default=(), repr=False)
    jwt_rules: JwtRules | None = attrs.field(default=None, repr=False)
    host: str = "0.0.0.0"
    port: int = 3000
    source_query_timeout: float = 30.0
    # Each DynamoDB request's answer is awaited this long, then botocore retries it `dynamodb_retries` times.
    dynamodb_timeout_seconds: float = 10.0
    dynamodb_retries: int = 3
    # How long a dependency that answered before may stay silent before a CLI command gives up (exit 3); till
    # then its unanswered requests are retried (the CLI's container only: a library call or an HTTP request
    # gets botocore's retries alone).
    dependency_patience_seconds: float = 600.0
    # A CLI command (on stderr) and the service (in its log) say a dependency's silence once it has lasted this
    # long (the promise: within 15 s by default); settable so that the tests of the notice need not wait for it.
    stall_notice_seconds: float = NOTICE_SECONDS
    dynamodb_concurrency: int = 32
    pages_in_flight: int = DEFAULT_PAGES_IN_FLIGHT
    # The write budget (domain.write_budget): units per second for all processes together, or a percentage of
    # the users table's capacity; neither means unlimited.
    max_write_units: float | None = None
    write_capacity_percent: float | None = None
    log_level: str = "INFO"
    log_format: LogFormat = "json"
    metrics_public: bool = False
    # The offline mode: unconditional batch writes, safe only while nothing else writes the table.
    offline_writes: bool = False
    # Segments a `migrate --all` worker migrates side by side, each under its own lease (by default 1, and
    # OFFLINE_SEGMENTS_IN_FLIGHT in the offline mode, whose batched requests leave DynamoDB idle otherwise).
    segments_in_flight: int = 1
    # How live-safe writes go out: PartiQL batches where the endpoint runs them (probed), or always, or
    # one conditional PutItem per user (`adapters.dynamodb.partiql.WritePath`).
    dynamodb_write_path: Literal["auto", "partiql", "putitem"] = "auto"
    # How long a hold on an id range outlives its process: after a crash, the next run waits this long.
    hold_lease_seconds: float = 60.0
    # How long a worker's segment lease lasts without a renew (the KCL's failover time).
    segment_lease_seconds: float = 10.0
    # The fewest users a segment of a new plan gets (a source of fewer than 16 times this has fewer segments).
    segment_min_users: int = FEWEST_USERS_PER_SEGMENT
    shutdown_drain_seconds: float = 0.0
    shutdown_grace_seconds: float = 30.0
    # The statistics: how often the service counts the source again, and the count a request gets by default.
    stats_refresh_seconds: float = DEFAULT_REFRESH_SECONDS
    stats_postgres_count: Literal["exact", "estimate"] = "exact"
    # Change data capture (`cdc setup`, `sync --changes logical`): the replication slot and publication.
    cdc_slot: str = "user_migration"
    cdc_publication: str = "user_migration"
    mapping_file: str | None = None
    # None: the documented layout on `source_table`.
    mapping: UserMapping | None = attrs.field(default=None, repr=False)

    @property
    def effective_mapping(self) -> UserMapping:
        """The mapping file's mapping, or the documented layout on `source_table`."""
        return self.mapping if self.mapping is not None else default_mapping(self.source_table)

    def redacted(self) -> dict[str, object]:
        """The effective configuration for logs: the database password and the tokens hidden."""
        values = attrs.asdict(self)
        values.pop("mapping")
        if self.database_url is not None:
            parsed = urlparse(self.database_url)
            if parsed.password is not None:
                netloc = parsed.netloc.replace(f":{parsed.password}@", ":***@")
                values["database_url"] = parsed._replace(netloc=netloc).geturl()
        values["api_tokens"] = f"{len(self.api_tokens)} token(s)"
        values["jwt_rules"] = (
            None
            if self.jwt_rules is None
            else {
                "algorithm": self.jwt_rules.algorithm,
                "issuer": self.jwt_rules.issuer,
                "audience": self.jwt_rules.audience,
            }
        )
        return values

    def container_config(self) -> dict[str, object]:
        """The values the DI container is configured with."""
        return {
            "database_url": self.database_url,
            "source_table": self.source_table,
            "mapping": self.effective_mapping,
            "source_query_timeout": self.source_query_timeout,
            "dynamodb_table": self.dynamodb_table,
            "dynamodb_state_table": self.dynamodb_state_table,
            "dynamodb_endpoint_url": self.dynamodb_endpoint_url,
            "aws_region": self.aws_region,
            "dynamodb_concurrency": self.dynamodb_concurrency,
            "dynamodb_timeout_seconds": self.dynamodb_timeout_seconds,
            "dynamodb_retries": self.dynamodb_retries,
            "pages_in_flight": self.pages_in_flight,
            "max_write_units": self.max_write_units,
            "write_capacity_percent": self.write_capacity_percent,
            "offline_writes": self.offline_writes,
            "segments_in_flight": self.segments_in_flight,
            "dynamodb_write_path": self.dynamodb_write_path,
            "hold_lease_seconds": self.hold_lease_seconds,
            "segment_lease_seconds": self.segment_lease_seconds,
            "segment_min_users": self.segment_min_users,
            "stats_refresh_seconds": self.stats_refresh_seconds,
            "stats_postgres_count": self.stats_postgres_count,
            "cdc_slot": self.cdc_slot,
            "cdc_publication": self.cdc_publication,
        }


def _number(
    environ: Mapping[str, str], name: str, default: float, lowest: float, highest: float, problems: list[str]
) -> float:
    kind = f"a number between {lowest:g} and {highest:g}"
    return _bounded(environ, name, default, (lowest, highest), _as_float, kind, problems)


def _integer(
    environ: Mapping[str, str], name: str, default: int, lowest: int, highest: int, problems: list[str]
) -> int:
    kind = f"an integer between {lowest} and {highest}"
    return _bounded(environ, name, default, (lowest, highest), _as_integer, kind, problems)


def _bounded(
    environ: Mapping[str, str],
    name: str,
    default: _N,
    bounds: tuple[_N, _N],
    parse: Callable[[str], _N | None],
    kind: str,
    problems: list[str],
) -> _N:
    """The setting `name` parsed and within `bounds`; its default when unset, or when not (said in `problems`)."""
    text = environ.get(name, "").strip()
    if not text:
        return default
    value = parse(text)
    if value is None or not bounds[0] <= value <= bounds[1]:
        problems.append(f"{name} must be {kind} (got {text!r})")
        return default
    return value


def _as_float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _as_integer(text: str) -> int | None:
    return int(text) if text.isascii() and text.isdigit() else None


MAX_WRITE_UNITS_LIMIT = 10_000_000
# A segment's floor above which even a plan's MIN_SEGMENTS would leave segments of 16 million users.
MOST_SEGMENT_MIN_USERS = 1_000_000


def parse_max_write_units(text: str) -> float | None:
    """MAX_WRITE_UNITS / --max-write-units: write units per second, 0 meaning unlimited (None); raises
    ValueError saying what is wrong."""
    text = text.strip()
    if not text.isascii() or not text.isdigit() or int(text) > MAX_WRITE_UNITS_LIMIT:
        raise ValueError(f"must be an integer between 0 (unlimited) and {MAX_WRITE_UNITS_LIMIT} (got {text!r})")
    return float(text) or None


def parse_write_capacity_percent(text: str) -> float:
    """WRITE_CAPACITY_PERCENT / --write-capacity-percent: a share of the table's write capacity, above 0 and
    at most 100; raises ValueError saying what is wrong."""
    try:
        value = float(text.strip())
    except ValueError:
        value = float("nan")
    if not 0 < value <= 100:
        raise ValueError(f"must be a number above 0 and at most 100 (got {text.strip()!r})")
    return value


def _write_budget(environ: Mapping[str, str], problems: list[str]) -> tuple[float | None, float | None]:
    """MAX_WRITE_UNITS and WRITE_CAPACITY_PERCENT (at most one of them)."""
    found: dict[str, float | None] = {}
    for name, parse in (
        ("MAX_WRITE_UNITS", parse_max_write_units),
        ("WRITE_CAPACITY_PERCENT", parse_write_capacity_percent),
    ):
        text = environ.get(name, "").strip()
        if not text:
            continue
        try:
            found[name] = parse(text)
        except ValueError as error:
            problems.append(f"{name} {error}")
    if len(found) == 2:
        problems.append("set either MAX_WRITE_UNITS or WRITE_CAPACITY_PERCENT, not both")
        return None, None
    return found.get("MAX_WRITE_UNITS"), found.get("WRITE_CAPACITY_PERCENT")


def parse_tokens(text: str) -> tuple[str, ...]:
    """The tokens of a comma-separated list (as in MIGRATION_API_TOKENS), blanks dropped."""
    return tuple(token.strip() for token in text.split(",") if token.strip())


def _choice(environ: Mapping[str, str], name: str, default: str, allowed: tuple[str, ...], problems: list[str]) -> str:
    text = environ.get(name, "").strip()
    if not text:
        return default
    for choice in allowed:
        if text.lower() == choice.lower():
            return choice
    problems.append(f"{name} must be one of {', '.join(allowed)} (got {text!r})")
    return default


def _write_path(environ: Mapping[str, str], problems: list[str]) -> Literal["auto", "partiql", "putitem"]:
    chosen = _choice(environ, "DYNAMODB_WRITE_PATH", "auto", ("auto", "partiql", "putitem"), problems)
    return "partiql" if chosen == "partiql" else "putitem" if chosen == "putitem" else "auto"


def _jwt_rules(environ: Mapping[str, str], problems: list[str]) -> JwtRules | None:
    secret = environ.get("JWT_HS256_SECRET", "")
    public_key = environ.get("JWT_RS256_PUBLIC_KEY", "").strip()
    key_file = environ.get("JWT_RS256_PUBLIC_KEY_FILE", "").strip()
    if key_file:
        try:
            public_key = Path(key_file).read_text()
        except OSError as error:
            problems.append(f"JWT_RS256_PUBLIC_KEY_FILE cannot be read ({error.strerror})")
            return None
    if secret and public_key:
        problems.append("configure either JWT_HS256_SECRET or an RS256 public key, not both")
        return None
    issuer = environ.get("JWT_ISSUER", "").strip() or None
    audience = environ.get("JWT_AUDIENCE", "").strip() or None
    if secret:
        if len(secret.encode()) < 32:
            problems.append("JWT_HS256_SECRET must be at least 32 bytes long")
            return None
        return JwtRules("HS256", secret, issuer, audience)
    if public_key:
        from cryptography.hazmat.primitives import serialization  # only where a key is configured

        try:
            serialization.load_pem_public_key(public_key.encode())
        except (ValueError, TypeError):
            problems.append("the RS256 public key is not a PEM public key")
            return None
        return JwtRules("RS256", public_key, issuer, audience)
    return None


def _table(environ: Mapping[str, str], name: str, default: str, problems: list[str]) -> str:
    value = environ.get(name, "").strip() or default
    try:
        quote_table_name(value)
    except ValueError:
        problems.append(f"{name} is not a valid table name (got {value!r})")
    return value


# PostgreSQL's rule for slot names; publications are held to it too (no quoting surprises).
_CAPTURE_NAME = re.compile(r"[a-z0-9_]{1,63}")


def _capture_name(environ: Mapping[str, str], name: str, problems: list[str]) -> str:
    value = environ.get(name, "").strip() or "user_migration"
    if not _CAPTURE_NAME.fullmatch(value):
        problems.append(f"{name} must be 1 to 63 lower-case letters, digits or underscores (got {value!r})")
    return value


_AWS_CONFIG_VARIABLES = ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_PROFILE", "AWS_DEFAULT_PROFILE")


def _aws_config_region(environ: Mapping[str, str], problems: list[str]) -> str | None:
    """The region of the AWS config (and credentials) file for the profile `environ` selects, as botocore finds it.

    Only what `environ` says is used: for a mapping other than `os.environ`, the files are read only when it
    names them or a profile (so neither the process's environment nor a developer's ~/.aws leaks in).
    """
    if environ is not os.environ and not any(environ.get(name, "").strip() for name in _AWS_CONFIG_VARIABLES):
        return None

    def given(*names: str) -> str | None:
        return next((environ[name].strip() for name in names if environ.get(name, "").strip()), None)

    # botocore's own lookup (profile, config file, credentials file), fed from `environ` instead of os.environ.
    session = botocore.session.Session(
        session_vars={
            "profile": (None, None, given("AWS_DEFAULT_PROFILE", "AWS_PROFILE"), None),
            "config_file": (None, None, given("AWS_CONFIG_FILE") or "~/.aws/config", None),
            "credentials_file": (None, None, given("AWS_SHARED_CREDENTIALS_FILE") or "~/.aws/credentials", None),
            "region": ("region", None, None, None),
        }
    )
    try:
        region = session.get_config_variable("region")
    except BotoCoreError as error:  # ProfileNotFound, ConfigParseError
        problems.append(f"the AWS config cannot be used: {error}")
        return None
    return (str(region).strip() or None) if region else None


def _region(environ: Mapping[str, str], endpoint: str | None, problems: list[str]) -> str | None:
    """AWS_REGION, else AWS_DEFAULT_REGION, else the AWS config's; a problem when there is none."""
    region = environ.get("AWS_REGION", "").strip() or environ.get("AWS_DEFAULT_REGION", "").strip() or None
    if region is not None:
        return region
    problems_before = len(problems)
    region = _aws_config_region(environ, problems)
    if region is None and len(problems) == problems_before:
        missing = "AWS_REGION is not set (nor AWS_DEFAULT_REGION, nor a region in the AWS config)"
        if endpoint is None:
            problems.append(f"{missing}: set the region of the DynamoDB tables, e.g. AWS_REGION=eu-west-1")
        else:
            problems.append(
                f"{missing}: botocore needs a region even with DYNAMODB_ENDPOINT_URL set; "
                "set the region the endpoint keeps the tables under, e.g. AWS_REGION=us-east-1"
            )
    return region


def load_settings(
    environ: Mapping[str, str] | None = None, purpose: Purpose = "serve", mapping_file: str | None = None
) -> Settings:
    """Read and check the configuration; raises `ConfigurationError` listing every problem.

    `serve` needs the database and the API tokens; `library` the database; `tables` only DynamoDB.
    Every purpose needs the AWS region: AWS_REGION, AWS_DEFAULT_REGION or the AWS config's (for a mapping other
    than `os.environ`, the AWS config is read only when it names the file, AWS_CONFIG_FILE, or a profile).
    `mapping_file` (the CLI's `--mapping`) overrides `MAPPING_FILE`. For `serve` and `library`, the
    problems of a mapping file that is valid TOML are left to the source check (see below).
    """
    environ = os.environ if environ is None else environ
    problems: list[str] = []

    database_url = environ.get("DATABASE_URL", "").strip() or None
    if purpose in ("serve", "library"):
        if database_url is None:
            problems.append("DATABASE_URL is required (a postgresql:// URL)")
        elif urlparse(database_url).scheme not in ("postgresql", "postgres"):
            problems.append("DATABASE_URL must be a postgresql:// URL")

    tokens = parse_tokens(environ.get("MIGRATION_API_TOKENS", ""))
    for token in tokens:
        if token.startswith(HASH_PREFIX) and not _SHA256_HEX.fullmatch(token[len(HASH_PREFIX) :]):
            problems.append("MIGRATION_API_TOKENS: a sha256: entry must be followed by 64 hex digits")
    jwt_rules = _jwt_rules(environ, problems)
    if purpose == "serve" and not tokens and jwt_rules is None:
        problems.append(
            "MIGRATION_API_TOKENS is required (comma-separated bearer tokens), "
            "unless JWTs are configured (JWT_HS256_SECRET or JWT_RS256_PUBLIC_KEY[_FILE])"
        )

    endpoint = environ.get("DYNAMODB_ENDPOINT_URL", "").strip() or None
    if endpoint is not None:
        parsed = urlparse(endpoint)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            problems.append(f"DYNAMODB_ENDPOINT_URL must be an http:// or https:// URL (got {endpoint!r})")

    region = _region(environ, endpoint, problems)

    source_table = _table(environ, "SOURCE_TABLE", "users", problems)
    mapping_file = mapping_file or environ.get("MAPPING_FILE", "").strip() or None
    mapping, mapping_problems = read_mapping(mapping_file, source_table)
    mapping_at = len(problems)
    if mapping_file is not None:
        try:
            quote_table_name(mapping.table)
        except ValueError:
            problems.append(
                f"mapping file {mapping_file}: [source] table is not a valid table name (got {mapping.table!r})"
            )

    max_write_units, write_capacity_percent = _write_budget(environ, problems)
    offline = _choice(environ, "OFFLINE_WRITES", "false", ("true", "false"), problems) == "true"
    settings = Settings(
        database_url=database_url,
        source_table=mapping.table,
        mapping_file=mapping_file,
        mapping=mapping if mapping_file is not None else None,
        dynamodb_table=_table(environ, "DYNAMODB_TABLE", "users", problems),
        dynamodb_state_table=_table(environ, "DYNAMODB_STATE_TABLE", "user_migration_state", problems),
        dynamodb_endpoint_url=endpoint,
        aws_region=region,
        api_tokens=tokens,
        jwt_rules=jwt_rules,
        host=environ.get("HOST", "").strip() or "0.0.0.0",
        port=_integer(environ, "PORT", 3000, 1, 65535, problems),
        source_query_timeout=_number(environ, "SOURCE_QUERY_TIMEOUT", 30.0, 0.1, 3600, problems),
        dynamodb_timeout_seconds=_number(environ, "DYNAMODB_TIMEOUT_SECONDS", 10.0, 1, 300, problems),
        dynamodb_retries=_integer(environ, "DYNAMODB_RETRIES", 3, 0, 10, problems),
        dependency_patience_seconds=_number(environ, "DEPENDENCY_PATIENCE_SECONDS", 600.0, 1, 86400, problems),
        stall_notice_seconds=_number(environ, "STALL_NOTICE_SECONDS", NOTICE_SECONDS, 1, 3600, problems),
        dynamodb_concurrency=_integer(environ, "DYNAMODB_CONCURRENCY", 32, 1, 256, problems),
        pages_in_flight=_integer(environ, "PAGES_IN_FLIGHT", DEFAULT_PAGES_IN_FLIGHT, 1, 16, problems),
        max_write_units=max_write_units,
        write_capacity_percent=write_capacity_percent,
        log_level=_choice(environ, "LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR"), problems),
        log_format="text" if _choice(environ, "LOG_FORMAT", "json", ("json", "text"), problems) == "text" else "json",
        metrics_public=_choice(environ, "METRICS_PUBLIC", "false", ("true", "false"), problems) == "true",
        offline_writes=offline,
        segments_in_flight=_integer(
            environ, "SEGMENTS_IN_FLIGHT", OFFLINE_SEGMENTS_IN_FLIGHT if offline else 1, 1, 16, problems
        ),
        dynamodb_write_path=_write_path(environ, problems),
        hold_lease_seconds=_number(environ, "HOLD_LEASE_SECONDS", 60.0, 1, 3600, problems),
        segment_lease_seconds=_number(environ, "SEGMENT_LEASE_SECONDS", 10.0, 1, 3600, problems),
        segment_min_users=_integer(
            environ, "SEGMENT_MIN_USERS", FEWEST_USERS_PER_SEGMENT, 1, MOST_SEGMENT_MIN_USERS, problems
        ),
        shutdown_drain_seconds=_number(environ, "SHUTDOWN_DRAIN_SECONDS", 0.0, 0, 300, problems),
        shutdown_grace_seconds=_number(environ, "SHUTDOWN_GRACE_SECONDS", 30.0, 0, 3600, problems),
        stats_refresh_seconds=_number(environ, "STATS_REFRESH_SECONDS", DEFAULT_REFRESH_SECONDS, 1, 3600, problems),
        cdc_slot=_capture_name(environ, "CDC_SLOT", problems),
        cdc_publication=_capture_name(environ, "CDC_PUBLICATION", problems),
        stats_postgres_count="estimate"
        if _choice(environ, "STATS_POSTGRES_COUNT", "exact", ("exact", "estimate"), problems) == "estimate"
        else "exact",
    )
    # The problems in a mapping file's content wait for the check against the source table when the
    # purpose reads it and nothing else is wrong: `PostgresUserSource` then refuses the mapping,
    # naming them with the table's own in one run (exit 2, HTTP 409).
    deferred = bool(mapping.problems) and purpose != "tables" and not problems
    if not deferred:
        problems[mapping_at:mapping_at] = mapping_problems
    if problems:
        raise ConfigurationError(problems)
    return settings
