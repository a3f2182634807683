"""What a mapping file means, as pure data: which source table, which key, which attribute comes
from which column or SQL expression, the rules per attribute, and which other columns are carried.

Without a mapping file the documented layout is the mapping (`default_mapping`). A mapping file
is TOML; `parse_mapping` takes its parsed document and names every problem at once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import attrs

from user_migration.domain.errors import MappingError
from user_migration.domain.keys import KeyKind

DEFAULT_TABLE = "users"
DEFAULT_KEY = "id"
DEFAULT_KEY_ATTRIBUTE = "user_id"
# Written by the migration itself into every item; no mapped or carried attribute may take it.
MIGRATED_AT = "migrated_at"
# Kept by the DynamoDB adapter in every item it writes, to recognise its own items (`--rewrite`).
MIGRATION_DIGEST = "migration_digest"
# The source row's version (`[source] version`) as a number, kept in every item the migration
# writes: a write that must not overwrite newer data compares against it.
MIGRATION_VERSION = "migration_version"
RESERVED_ATTRIBUTES = frozenset({MIGRATED_AT, MIGRATION_DIGEST, MIGRATION_VERSION})
# What the digest adds to every item: its name and 32 hex digits.
DIGEST_BYTES = len(MIGRATION_DIGEST) + 32

# An [attributes] value that is exactly a name is a column; anything else is an SQL expression.
_COLUMN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
_RULE_KEYS = ("required", "pattern", "max_length", "allowed", "email", "json_object")
MAX_ATTRIBUTE_NAME_BYTES = 255  # DynamoDB's limit for a (non-key) attribute name


@attrs.frozen
class Rules:
    """The rules one attribute's value must meet. An empty string counts as absent for all of them."""

    required: bool = False
    pattern: str | None = None
    max_length: int | None = None
    allowed: tuple[str, ...] | None = None
    email: bool = False
    json_object: bool = False

    def merged(self, changes: Mapping[str, Any]) -> Rules:
        """These rules with the given keys replaced (the keys already checked)."""
        values = dict(changes)
        if "allowed" in values and values["allowed"] is not None:
            values["allowed"] = tuple(values["allowed"])
        return attrs.evolve(self, **values)

    def as_dict(self) -> dict[str, Any]:
        """Only the rules in force, for display."""
        shown: dict[str, Any] = {}
        for name in _RULE_KEYS:
            value = getattr(self, name)
            if value not in (None, False):
                shown[name] = list(value) if isinstance(value, tuple) else value
        return shown


NO_RULES = Rules()
USERNAME_PATTERN = r"[A-Za-z0-9_.-]{3,32}"
ALLOWED_STATUSES = ("active", "suspended", "deleted")
# The documented rules: defaults for these attribute names in every mapping.
DOCUMENTED_RULES: Mapping[str, Rules] = {
    "username": Rules(required=True, pattern=USERNAME_PATTERN),
    "email": Rules(required=True, email=True),
    "created_at": Rules(required=True),
    "status": Rules(required=True, allowed=ALLOWED_STATUSES),
    "profile": Rules(json_object=True),
}


@attrs.frozen
class AttributeSource:
    """One target attribute and where its value comes from: a column, or an SQL expression."""

    name: str
    column: str | None = None
    expression: str | None = None

    @property
    def sql(self) -> str:
        """The column name or the expression, as written in the mapping."""
        return self.column if self.column is not None else str(self.expression)


@attrs.frozen
class UserMapping:
    """A whole mapping. `carry` brings every column not named elsewhere (nor excluded) along."""

    table: str = DEFAULT_TABLE
    key: str = DEFAULT_KEY
    version: str | None = None
    # `[source] key_type`: the key column's kind (integer, uuid or text), checked against the table.
    key_kind: KeyKind = KeyKind.INTEGER
    key_attribute: str = DEFAULT_KEY_ATTRIBUTE
    attributes: tuple[AttributeSource, ...] = ()
    rules: Mapping[str, Rules] = attrs.field(factory=dict)
    carry: bool = False
    exclude: frozenset[str] = frozenset()
    origin: str = "the documented layout"
    # What is wrong in the file itself (`read_mapping`): such a mapping holds only the parts that
    # were right, to be checked against the source for the rest; it is never read through.
    problems: tuple[str, ...] = ()

    def rules_for(self, attribute: str) -> Rules:
        """The rules of one attribute: the file's, over the documented defaults of its name when
        it is an [attributes] entry (a carried column has only the rules the file gives it)."""
        if attribute in self.rules:
            return self.rules[attribute]
        if any(source.name == attribute for source in self.attributes):
            return DOCUMENTED_RULES.get(attribute, NO_RULES)
        return NO_RULES

    @property
    def mapped_columns(self) -> frozenset[str]:
        """Columns that are the whole value of an attribute (they arrive under its name)."""
        return frozenset(source.column for source in self.attributes if source.column is not None)

    def carried_columns(self, columns: list[str]) -> list[str]:
        """Of the source's columns (in table order), those carried as attributes of their own name."""
        if not self.carry:
            return []
        named = self.mapped_columns | self.exclude | {self.key}
        return [column for column in columns if column not in named]


# In the order their reasons are reported.
_DOCUMENTED_ATTRIBUTES = ("username", "email", "display_name", "created_at", "updated_at", "status", "profile")


def default_mapping(table: str = DEFAULT_TABLE) -> UserMapping:
    """The documented layout: `users(id, username, email, display_name, status, created_at,
    updated_at, profile)`, nothing else carried."""
    return UserMapping(
        table=table,
        version="updated_at",
        attributes=tuple(AttributeSource(name, column=name) for name in _DOCUMENTED_ATTRIBUTES),
        rules={},
    )


def _text(problems: list[str], where: str, value: Any, default: str | None = None) -> str | None:
    if value is None:
        return default
    if not isinstance(value, str) or not value.strip():
        problems.append(f"{where} must be a non-empty string")
        return default
    return value.strip()


def _unknown_keys(problems: list[str], where: str, given: Mapping[str, Any], known: tuple[str, ...]) -> None:
    for key in given:
        if key not in known:
            problems.append(f"{where}: unknown key {key!r} (expected one of {', '.join(known)})")


def _table(problems: list[str], where: str, value: Any) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        problems.append(f"{where} must be a table")
        return {}
    return value


def _attribute_name_problem(name: str) -> str | None:
    if not name:
        return "an attribute name must not be empty"
    if len(name.encode("utf-8", "surrogatepass")) > MAX_ATTRIBUTE_NAME_BYTES:
        return f"attribute name {name[:40]!r}… is longer than {MAX_ATTRIBUTE_NAME_BYTES} bytes"
    return None


def _attributes(problems: list[str], given: Mapping[str, Any]) -> tuple[AttributeSource, ...]:
    attributes = []
    for name, value in given.items():
        if (problem := _attribute_name_problem(name)) is not None:
            problems.append(f"[attributes]: {problem}")
            continue
        if not isinstance(value, str) or not value.strip():
            problems.append(f"[attributes] {name}: must be a column name or an SQL expression (a non-empty string)")
            continue
        text = value.strip()
        if _COLUMN_NAME.fullmatch(text):
            attributes.append(AttributeSource(name, column=text))
        else:
            attributes.append(AttributeSource(name, expression=text))
    return tuple(attributes)


def _rule_problems(where: str, given: Mapping[str, Any]) -> list[str]:
    problems = []
    for key in ("required", "email", "json_object"):
        if key in given and not isinstance(given[key], bool):
            problems.append(f"{where}.{key} must be true or false")
    if "pattern" in given:
        pattern = given["pattern"]
        if not isinstance(pattern, str):
            problems.append(f"{where}.pattern must be a string (a regular expression)")
        else:
            try:
                re.compile(pattern)
            except re.error as error:
                problems.append(f"{where}.pattern is not a valid regular expression: {error}")
    if "max_length" in given:
        length = given["max_length"]
        if isinstance(length, bool) or not isinstance(length, int) or length < 1:
            problems.append(f"{where}.max_length must be a positive integer")
    if "allowed" in given:
        allowed = given["allowed"]
        if not isinstance(allowed, list) or not allowed or not all(isinstance(value, str) for value in allowed):
            problems.append(f"{where}.allowed must be a non-empty list of strings")
    return problems


def _rules(problems: list[str], given: Mapping[str, Any], mapped: set[str], carry: bool) -> dict[str, Rules]:
    rules: dict[str, Rules] = {}
    for attribute, changes in given.items():
        where = f"[rules.{attribute}]"
        if not isinstance(changes, Mapping):
            problems.append(f"{where} must be a table of rules")
            continue
        # Rules of carried columns can only be checked against the source: accept names for now.
        named = attribute in mapped or carry
        if not named:
            problems.append(f"{where}: no attribute {attribute!r} in [attributes] or the carried columns")
        _unknown_keys(problems, where, changes, _RULE_KEYS)
        found = _rule_problems(where, changes)
        problems.extend(found)
        if named:  # a rule with problems stays by its name (its name is still checked against the source)
            known = {key: value for key, value in changes.items() if key in _RULE_KEYS}
            base = DOCUMENTED_RULES.get(attribute, NO_RULES) if attribute in mapped else NO_RULES
            rules[attribute] = base if found else base.merged(known)
    return rules


def parse_mapping(document: Mapping[str, Any], origin: str, default_table: str = DEFAULT_TABLE) -> UserMapping:
    """The mapping a parsed TOML document describes; raises `MappingError` naming every problem.

    Rules may name carried columns too; whether those exist is only known against the source,
    so a rule on an unknown name is checked there (`adapters.postgres.plan`).
    """
    mapping = mapping_as_written(document, origin, default_table)
    if mapping.problems:
        raise MappingError(list(mapping.problems), origin)
    return mapping


def mapping_as_written(document: Mapping[str, Any], origin: str, default_table: str = DEFAULT_TABLE) -> UserMapping:
    """The mapping a parsed TOML document describes, with every problem of the document itself in
    `problems`: the parts that are wrong are left out (a default in their place), so that the rest
    can still be checked against the source table and every problem named in one run."""
    problems: list[str] = []
    _unknown_keys(problems, "mapping", document, ("source", "target", "attributes", "rules", "other_columns"))
    source = _table(problems, "[source]", document.get("source"))
    _unknown_keys(problems, "[source]", source, ("table", "key", "key_type", "version"))
    target = _table(problems, "[target]", document.get("target"))
    _unknown_keys(problems, "[target]", target, ("key_attribute",))
    other = _table(problems, "[other_columns]", document.get("other_columns"))
    _unknown_keys(problems, "[other_columns]", other, ("carry", "exclude"))

    table = _text(problems, "[source] table", source.get("table"), default_table) or default_table
    key = _text(problems, "[source] key", source.get("key"), DEFAULT_KEY) or DEFAULT_KEY
    version = _text(problems, "[source] version", source.get("version"))
    key_kind = KeyKind.INTEGER
    key_type = _text(problems, "[source] key_type", source.get("key_type"))
    if key_type is not None:
        try:
            key_kind = KeyKind.named(key_type)
        except ValueError:
            kinds = ", ".join(repr(kind.value) for kind in KeyKind)
            problems.append(f"[source] key_type: {key_type!r} is not a key type (expected one of {kinds})")
    key_attribute = (
        _text(problems, "[target] key_attribute", target.get("key_attribute"), DEFAULT_KEY_ATTRIBUTE)
        or DEFAULT_KEY_ATTRIBUTE
    )
    if (problem := _attribute_name_problem(key_attribute)) is not None:
        problems.append(f"[target] key_attribute: {problem}")
        key_attribute = DEFAULT_KEY_ATTRIBUTE
    attributes = _attributes(problems, _table(problems, "[attributes]", document.get("attributes")))

    carry = other.get("carry", True)
    if not isinstance(carry, bool):
        problems.append("[other_columns] carry must be true or false")
        carry = True
    exclude = other.get("exclude", [])
    if not isinstance(exclude, list) or not all(isinstance(column, str) for column in exclude):
        problems.append("[other_columns] exclude must be a list of column names")
        exclude = []

    names = [source.name for source in attributes]
    for name in sorted({name for name in names if names.count(name) > 1}):
        problems.append(f"[attributes]: attribute {name!r} is given more than once")
    kept: dict[str, AttributeSource] = {}
    for attribute in attributes:
        name = attribute.name
        if name == key_attribute:
            problems.append(f"[attributes] {name}: clashes with the key attribute {key_attribute!r}")
        elif name in RESERVED_ATTRIBUTES:
            problems.append(f"[attributes] {name}: the migration writes {name!r} itself; choose another name")
        else:
            kept.setdefault(name, attribute)  # the first of a repeated name, for the source check
    for column in exclude:
        if column == key:
            problems.append(f"[other_columns] exclude: {column!r} is the key column, which is always migrated")

    rules = _rules(problems, _table(problems, "[rules]", document.get("rules")), set(names), carry)
    dropped = set(names) - set(kept)  # their rules go with them (the source check would not find them)
    return UserMapping(
        table=table,
        key=key,
        version=version,
        key_kind=key_kind,
        key_attribute=key_attribute,
        attributes=tuple(kept.values()),
        rules={name: rule for name, rule in rules.items() if name not in dropped},
        carry=carry,
        exclude=frozenset(column for column in exclude if column != key),
        origin=origin,
        problems=tuple(problems),
    )


@attrs.frozen
class PlannedColumn:
    """One output of the source query, as `user-migration mapping` shows it.

    `role` is `key`, `mapped` (a column that is an attribute's whole value), `expression`,
    `carried` (a column arriving under its own name) or `excluded` (never read).
    """

    role: str
    source: str  # the column name, or the SQL expression
    source_type: str  # PostgreSQL's name of the type, e.g. `character varying`, `integer[]`
    attribute: str | None = None  # None for an excluded column
    target_type: str | None = None  # e.g. `N`, `S`, `BOOL`, `B`, `L`, `M/L/S/N/BOOL/NULL`


@attrs.frozen
class SourcePlan:
    """How the source's columns become attributes under a mapping (all checks passed)."""

    table: str
    key: str
    columns: tuple[PlannedColumn, ...]
