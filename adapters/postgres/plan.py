"""The source query a mapping makes, checked against the table itself before any row is read.

`resolve_plan` asks PostgreSQL for the table's columns and types, then has it check every
expression (`SELECT ... LIMIT 0`), and names every problem at once in one `MappingError`: a
missing table or column (with "did you mean" for a case-only difference), a key that is not of
the mapping's key type, an expression PostgreSQL refuses, attribute names that clash.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import attrs
import psycopg2
import psycopg2.errors

from user_migration.adapters.dynamodb.codec import key_attribute_type
from user_migration.adapters.postgres.types import (
    DATE,
    INTEGER_TYPES,
    TEXT,
    TIMESTAMP,
    TIMESTAMPTZ,
    TYPES_QUERY,
    UUID,
    VARCHAR,
    Conversion,
    PgType,
    base_type,
    conversion_for,
    needed_oids,
    type_rows,
)
from user_migration.domain.convert.mapping import RESERVED_ATTRIBUTES, PlannedColumn, SourcePlan, UserMapping
from user_migration.domain.errors import MappingError
from user_migration.domain.keys import KeyKind
from user_migration.domain.model import SourceUser

KEY_ALIAS = '"__user_migration_key"'
VERSION_ALIAS = '"__user_migration_version"'
_SHOWN_COLUMNS = 30


def quote_identifier(name: str) -> str:
    """Any name as one SQL identifier: in double quotes, a double quote inside it doubled."""
    return '"' + name.replace('"', '""') + '"'


def quote_table_name(name: str) -> str:
    """`users` → `"users"`, `app.users` → `"app"."users"`; quotes inside names are doubled."""
    parts = name.split(".", 1)
    if not name or any(part == "" for part in parts):
        raise ValueError(f"invalid table name {name!r}")
    return ".".join(quote_identifier(part) for part in parts)


def sql_text(sql: str) -> str:
    """SQL text for a statement run with bound parameters: `%` doubled, so that psycopg2 leaves
    an expression's `%` (modulo, LIKE patterns) and a name's `%` alone."""
    return sql.replace("%", "%%")


def first_line(error: BaseException) -> str:
    """The first line of an error's message (psycopg2's add hints and positions below)."""
    text = str(error).strip()
    return text.splitlines()[0].strip() if text else type(error).__name__


@attrs.frozen
class Output:
    """One value of every row: the attribute it arrives under, and where it comes from."""

    attribute: str
    role: str  # mapped, expression or carried
    source: str  # the column name or the expression
    sql: str  # the column quoted, or the expression in parentheses

    @property
    def where(self) -> str:
        """How a problem of this output is introduced."""
        return (
            f"[other_columns] carry: column {self.source!r}"
            if self.role == "carried"
            else f"[attributes] {self.attribute}"
        )


@attrs.frozen
class QueryPlan:
    """A checked mapping, as SQL: the select list (`%` escaped) and how each row becomes a user."""

    table: str  # quoted, `%` escaped
    key: str  # quoted, `%` escaped
    select_list: str
    names: tuple[str, ...]
    conversions: tuple[tuple[int, Callable[[Any], Any]], ...]  # (position in names, converter)
    source_plan: SourcePlan
    # The mapping's version column, quoted and `%` escaped (selected last, as a number); None without one.
    version: str | None = None
    key_kind: KeyKind = KeyKind.INTEGER

    def user(self, row: Sequence[Any]) -> SourceUser:
        """One row (the key first, then the values in `names` order, then the version when the
        mapping names one) as a source user."""
        if self.version is None:
            values, version = list(row[1:]), None
        else:
            values, version = list(row[1:-1]), row[-1]
        for index, convert in self.conversions:
            values[index] = convert(values[index])
        key = int(row[0]) if self.key_kind is KeyKind.INTEGER else str(row[0])
        return SourceUser(key, dict(zip(self.names, values, strict=True)), version)


def _column_list(columns: Sequence[str]) -> str:
    shown = ", ".join(columns[:_SHOWN_COLUMNS])
    return shown + (f", … ({len(columns)} in all)" if len(columns) > _SHOWN_COLUMNS else "")


def _missing_column(where: str, column: str, table: str, columns: Sequence[str]) -> str:
    text = f"{where}: no column {column!r} in {table} (columns: {_column_list(columns)})"
    close = [name for name in columns if name.lower() == column.lower()]
    if close:
        text += f"; did you mean {close[0]!r}?"
    return text


def _outputs(mapping: UserMapping, columns: Sequence[str]) -> list[Output]:
    outputs = []
    for source in mapping.attributes:
        if source.column is not None:
            outputs.append(Output(source.name, "mapped", source.column, quote_identifier(source.column)))
        else:
            outputs.append(Output(source.name, "expression", source.sql, f"({source.sql})"))
    for column in mapping.carried_columns(list(columns)):
        outputs.append(Output(column, "carried", column, quote_identifier(column)))
    return outputs


def _name_problems(mapping: UserMapping, columns: Sequence[str], outputs: Sequence[Output]) -> list[str]:
    problems = []
    present = set(columns)
    table = mapping.table

    def check(where: str, column: str | None) -> None:
        if column is not None and column not in present:
            problems.append(_missing_column(where, column, table, columns))

    check("[source] key", mapping.key)
    check("[source] version", mapping.version)
    for source in mapping.attributes:
        check(f"[attributes] {source.name}", source.column)
    for column in sorted(mapping.exclude):
        check("[other_columns] exclude", column)

    mapped = {source.name for source in mapping.attributes}
    carried = [output.attribute for output in outputs if output.role == "carried"]
    for column in carried:
        where = f"[other_columns] carry: column {column!r}"
        if column in mapped:
            problems.append(
                f"{where} would arrive as attribute {column!r}, which [attributes] maps already; "
                "exclude the column or rename the attribute"
            )
        if column == mapping.key_attribute:
            problems.append(
                f"{where} would arrive as attribute {column!r}, the key attribute; "
                "exclude the column or choose another [target] key_attribute"
            )
        if column in RESERVED_ATTRIBUTES:
            problems.append(f"{where}: the migration writes {column!r} itself; exclude the column")
    known = mapped | set(carried)
    for attribute in mapping.rules:
        if attribute not in known:
            problems.append(f"[rules.{attribute}]: no attribute {attribute!r} in [attributes] or the carried columns")
    return problems


async def _types(cursor: Any, oids: set[int]) -> dict[int, PgType]:
    types: dict[int, PgType] = {}
    wanted = set(oids)
    while needed := needed_oids(wanted | set(types), types) - set(types):
        await cursor.execute(TYPES_QUERY, (sorted(needed),))
        found = type_rows(await cursor.fetchall())
        if not found:
            break
        types.update(found)
    return types


async def _column_types(cursor: Any, table: str) -> dict[str, str]:
    # With their modifiers (`character varying(150)`) and domain names, unlike a result's types.
    await cursor.execute(
        "SELECT attname::text, format_type(atttypid, atttypmod) FROM pg_catalog.pg_attribute "
        "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
        (table,),
    )
    return {str(name): str(type_name) for name, type_name in await cursor.fetchall()}


async def _refused(cursor: Any, table: str, outputs: Sequence[Output]) -> list[str] | None:
    """The problems of the expressions PostgreSQL refuses, or None when it accepts them all."""
    select_list = ", ".join(output.sql for output in outputs) or "NULL"
    try:
        await cursor.execute(f"SELECT {sql_text(select_list)} FROM {table} LIMIT %s", (0,))
    except (psycopg2.ProgrammingError, psycopg2.DataError, psycopg2.IntegrityError) as combined:
        problems = []
        for output in outputs:
            if output.role != "expression":
                continue
            try:
                await cursor.execute(f"SELECT {sql_text(output.sql)} FROM {table} LIMIT %s", (0,))
            except (psycopg2.ProgrammingError, psycopg2.DataError, psycopg2.IntegrityError) as error:
                problems.append(
                    f"{output.where}: PostgreSQL refused the expression {output.source!r}: {first_line(error)}"
                )
        return problems or [f"PostgreSQL refused the source query: {first_line(combined)}"]
    return None


# Of a table (plain, partitioned or a materialized view): whether the key column may be NULL and
# whether a unique index (the primary key among them) covers exactly that column. Views are not
# checked: PostgreSQL keeps no such promise for them.
_KEY_QUERY = """
SELECT c.relkind::text,
       a.attnotnull,
       EXISTS (
           SELECT 1 FROM pg_index i
           WHERE i.indrelid = c.oid AND i.indisunique AND i.indpred IS NULL
             AND i.indnkeyatts = 1 AND i.indkey[0] = a.attnum
       )
FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
WHERE c.oid = %s::regclass AND a.attname = %s AND NOT a.attisdropped
"""


async def _key_problems(cursor: Any, table: str, key: str) -> list[str]:
    """Why paging by `key` could lose users: a key that repeats (a page boundary inside a run of
    equal keys skips rows) or that is NULL (such rows are never read)."""
    await cursor.execute(_KEY_QUERY, (table, key))
    row = await cursor.fetchone()
    if row is None or row[0] not in ("r", "p", "m"):
        return []
    _, not_null, unique = row
    problems = []
    if not unique:
        problems.append(
            f"[source] key: column {key!r} has no primary key or unique index; paging by a key that "
            "repeats would skip users: make it unique (or map a view whose key is)"
        )
    if not not_null:
        problems.append(
            f"[source] key: column {key!r} may be NULL; a user with a NULL key would never be read: "
            "make it NOT NULL (or map a view that leaves such rows out)"
        )
    return problems


def _version_select(column: str, base_oid: int) -> str | None:
    """The select of the version column as a number (`domain.convert.versions`); None for a type that
    cannot be one. A timestamp is microseconds since the epoch (one without time zone as UTC),
    an infinite one no version at all."""
    quoted = quote_identifier(column)
    if base_oid in INTEGER_TYPES:
        return f"{quoted}::bigint AS {VERSION_ALIAS}"
    if base_oid == TIMESTAMPTZ:
        moment = quoted
    elif base_oid == TIMESTAMP:
        moment = f"({quoted} AT TIME ZONE 'UTC')"
    elif base_oid == DATE:
        moment = f"({quoted}::timestamp AT TIME ZONE 'UTC')"
    else:
        return None
    return f"CASE WHEN isfinite({quoted}) THEN (extract(epoch FROM {moment}) * 1000000)::bigint END AS {VERSION_ALIAS}"


# The key column's base type, by the kind of key it is; any other type cannot be a key.
KEY_KINDS = {
    **dict.fromkeys(INTEGER_TYPES, KeyKind.INTEGER),
    UUID: KeyKind.UUID,
    TEXT: KeyKind.TEXT,
    VARCHAR: KeyKind.TEXT,
}


def _key_kind_problem(mapping: UserMapping, type_name: str, found: KeyKind | None) -> str:
    """Why the key column does not fit `[source] key_type` (integer unless the file says otherwise)."""
    where = f"[source] key: column {mapping.key!r} is of type {type_name}"
    if found is None:
        return f"{where}; the key must be an integer (smallint, integer, bigint), uuid or text (text, varchar) column"
    said = "the default" if mapping.key_kind is KeyKind.INTEGER else "the mapping's"
    return (
        f"{where}, but [source] key_type is {mapping.key_kind.value!r} ({said}); "
        f'say key_type = "{found.value}" under [source]'
    )


async def resolve_plan(cursor: Any, mapping: UserMapping) -> QueryPlan:
    """The checked plan of `mapping` on its table; `MappingError` naming every problem otherwise,
    the file's own (`mapping.problems`) first.

    Connection failures and timeouts propagate as psycopg2 raised them.
    """
    table = quote_table_name(mapping.table)
    try:
        await cursor.execute(f"SELECT * FROM {sql_text(table)} LIMIT %s", (0,))
    except (psycopg2.errors.UndefinedTable, psycopg2.errors.InvalidSchemaName):
        raise MappingError(
            [*mapping.problems, f"source table {mapping.table!r} does not exist"], mapping.origin
        ) from None
    except psycopg2.ProgrammingError as error:
        raise MappingError(
            [*mapping.problems, f"source table {mapping.table!r} cannot be read: {first_line(error)}"], mapping.origin
        ) from None
    columns = [str(column.name) for column in cursor.description]
    column_oids = {str(column.name): int(column.type_code) for column in cursor.description}
    outputs = _outputs(mapping, columns)
    problems = [*mapping.problems, *_name_problems(mapping, columns, outputs)]
    present = set(columns)
    # Only what exists goes into the probe: each missing column is reported already.
    probed = [output for output in outputs if output.role == "expression" or output.source in present]
    refused = await _refused(cursor, sql_text(table), probed)
    if refused is not None:
        problems.extend(refused)
        raise MappingError(problems, mapping.origin)
    output_oids = [int(column.type_code) for column in cursor.description] if probed else []
    types = await _types(cursor, set(output_oids) | set(column_oids.values()))
    key_oid = column_oids.get(mapping.key)
    key_kind = KEY_KINDS.get(base_type(key_oid, types)) if key_oid is not None else None
    if key_oid is not None and key_kind is not mapping.key_kind:
        type_name = types[key_oid].name if key_oid in types else f"oid {key_oid}"
        problems.append(_key_kind_problem(mapping, type_name, key_kind))
    elif key_oid is not None:
        problems.extend(await _key_problems(cursor, table, mapping.key))
    version_sql = None
    if mapping.version is not None and mapping.version in column_oids:
        version_sql = _version_select(mapping.version, base_type(column_oids[mapping.version], types))
        if version_sql is None:
            oid = column_oids[mapping.version]
            type_name = types[oid].name if oid in types else f"oid {oid}"
            problems.append(
                f"[source] version: column {mapping.version!r} is of type {type_name}; the version must be "
                "a timestamp, timestamptz, date or integer column that grows whenever the row changes"
            )
    if problems:
        raise MappingError(problems, mapping.origin)

    column_types = await _column_types(cursor, table)
    conversions: list[Conversion] = [conversion_for(oid, types) for oid in output_oids]
    key = quote_identifier(mapping.key)
    select_list = ", ".join(
        [f"{key} AS {KEY_ALIAS}"]
        + [conversion.select(output.sql) for output, conversion in zip(outputs, conversions, strict=True)]
        + ([version_sql] if version_sql is not None else [])
    )

    def type_of(output: Output, oid: int) -> str:
        if output.role != "expression" and output.source in column_types:
            return column_types[output.source]
        return types[oid].name if oid in types else f"oid {oid}"

    key_type = key_attribute_type(mapping.key_kind)
    planned = [PlannedColumn("key", mapping.key, column_types.get(mapping.key, ""), mapping.key_attribute, key_type)]
    planned += [
        PlannedColumn(output.role, output.source, type_of(output, oid), output.attribute, conversion.target_type)
        for output, oid, conversion in zip(outputs, output_oids, conversions, strict=True)
    ]
    excluded = [column for column in columns if column in mapping.exclude]
    planned += [PlannedColumn("excluded", column, column_types.get(column, "")) for column in excluded]
    plan = QueryPlan(
        table=sql_text(table),
        key=sql_text(key),
        select_list=sql_text(select_list),
        names=tuple(output.attribute for output in outputs),
        conversions=tuple(
            (index, convert)
            for index, conversion in enumerate(conversions)
            if (convert := conversion.convert) is not None
        ),
        source_plan=SourcePlan(mapping.table, mapping.key, tuple(planned)),
        version=sql_text(quote_identifier(mapping.version)) if version_sql is not None and mapping.version else None,
        key_kind=mapping.key_kind,
    )
    # The whole query once, as every read will run it (its casts included).
    try:
        await cursor.execute(f"SELECT {plan.select_list} FROM {sql_text(table)} LIMIT %s", (0,))
    except (psycopg2.ProgrammingError, psycopg2.DataError) as error:
        raise MappingError([f"PostgreSQL refused the source query: {first_line(error)}"], mapping.origin) from None
    return plan
