"""PostgreSQL types as Python values, exactly: which SQL cast each output column needs and how its
value is converted after psycopg2 parsed it.

psycopg2 parses integers, numeric, floats, booleans and bytea (and arrays of them) natively and
exactly, and hands text, varchar, char(n) (padded) and inet over in their output form; everything
else is selected in PostgreSQL's own text form (`::text`, or `::text[]` for arrays) and converted
here: JSON with exact numbers, timestamps as aware UTC datetimes, dates as `YYYY-MM-DD`. A value
Python cannot hold (a timestamp of 'infinity', a date BC) arrives as an `UnreadableValue`, for
validation to report against its one user.

The session settings these texts rely on (timezone UTC, datestyle ISO, intervalstyle postgres)
are set by `adapters.postgres.source.create_pool`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import attrs

from user_migration.domain.model import Json, JsonValue, SourceValue, UnreadableValue

# Type OIDs fixed by PostgreSQL itself (pg_type.dat): the same on every server.
INT2, INT4, INT8 = 21, 23, 20
NUMERIC = 1700
FLOAT4, FLOAT8 = 700, 701
BOOL = 16
BYTEA = 17
TEXT, VARCHAR = 25, 1043
UUID = 2950
BPCHAR = 1042  # char(n)
INET, CIDR, MACADDR = 869, 650, 829
JSON, JSONB = 114, 3802
TIMESTAMP, TIMESTAMPTZ = 1114, 1184
DATE = 1082
INTEGER_TYPES = frozenset({INT2, INT4, INT8})

# Types psycopg2 parses into the right Python value by itself, with their SQL names (to cast a
# domain's array to its base array) and the DynamoDB type they become.
_NATIVE: Mapping[int, tuple[str, str]] = {
    INT2: ("smallint", "N"),
    INT4: ("integer", "N"),
    INT8: ("bigint", "N"),
    NUMERIC: ("numeric", "N"),
    FLOAT4: ("real", "N"),
    FLOAT8: ("double precision", "N"),
    BOOL: ("boolean", "BOOL"),
    BYTEA: ("bytea", "B"),
}
# Their array types, which psycopg2 also parses natively (any dimension, NULL elements as None).
_NATIVE_ARRAYS: Mapping[int, int] = {
    1005: INT2,
    1007: INT4,
    1016: INT8,
    1231: NUMERIC,
    1021: FLOAT4,
    1022: FLOAT8,
    1000: BOOL,
    1001: BYTEA,
}
JSON_TARGET_TYPE = "M/L/S/N/BOOL/NULL"

Converter = Callable[[Any], SourceValue]


def _exact_int(text: str) -> int | Decimal:
    # Short ints are cheap to check and convert as int; long ones stay Decimal, so that a huge one
    # is still judged by its digits (int() refuses texts over 4300 digits), and "-0" keeps its sign.
    return int(text) if len(text) < 39 and text != "-0" else Decimal(text)


# One decoder for every row: json.loads with hooks builds a new one per call (~2 µs a profile).
_PROFILE_DECODER = json.JSONDecoder(parse_float=Decimal, parse_int=_exact_int)


def parse_profile(text: str | None) -> JsonValue | UnreadableValue:
    """A JSON text with exact numbers (int or Decimal); unreadable JSON is kept as such."""
    if text is None:
        return None
    try:
        value: JsonValue = _PROFILE_DECODER.decode(text)
    except RecursionError:
        return UnreadableValue(text[:80], "nested too deeply to read")
    except ValueError as error:
        return UnreadableValue(text[:80], f"not valid JSON ({error})")
    return value


def json_value(text: str | None) -> Json | UnreadableValue | None:
    """A json/jsonb value's text as `Json` (a JSON null is `Json(None)`, an SQL NULL is None)."""
    if text is None:
        return None
    value = parse_profile(text)
    return value if isinstance(value, UnreadableValue) else Json(value)


_OUT_OF_RANGE = "is outside the supported years 1..9999"


def timestamp_value(text: str | None) -> datetime | UnreadableValue | None:
    """A timestamp[tz]'s ISO text (rendered in UTC) as an aware UTC datetime.

    A timestamp without time zone carries no zone: the migration reads it as UTC.
    """
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        if text in ("infinity", "-infinity"):
            return UnreadableValue(text, f"{text!r} is not a point in time")
        # Years before 1 (`... BC`) or after 9999 (five digits): Python has no datetime for them.
        return UnreadableValue(text, f"{text!r} {_OUT_OF_RANGE}")
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    if moment.tzinfo is not UTC:
        try:
            return moment.astimezone(UTC)
        except OverflowError:
            return UnreadableValue(text, f"{text!r} {_OUT_OF_RANGE}")
    return moment


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def date_value(text: str | None) -> str | UnreadableValue | None:
    """A date's ISO text `YYYY-MM-DD`, when it is a calendar date of the years 1..9999."""
    if text is None:
        return None
    if _ISO_DATE.fullmatch(text):
        return text
    if text in ("infinity", "-infinity"):
        return UnreadableValue(text, f"{text!r} is not a calendar date")
    return UnreadableValue(text, f"{text!r} {_OUT_OF_RANGE}")


def bytes_value(value: Any) -> bytes | None:
    """A bytea as bytes (psycopg2 gives a memoryview)."""
    return None if value is None else bytes(value)


def _elements(convert: Converter) -> Converter:
    """The converter of an array whose elements convert by `convert` (any dimension)."""

    def each(value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, list):
            return [each(element) for element in value]
        return convert(value)

    return each


@attrs.frozen
class PgType:
    """One row of pg_type, as far as the conversion needs it."""

    oid: int
    name: str  # format_type(oid, NULL)
    category: str  # typcategory: 'A' array, 'S' string, 'N' numeric...
    element: int  # typelem (0 when none)
    array: int  # typarray: this type's array type (0 when none)
    kind: str  # typtype: 'b' base, 'd' domain, 'e' enum, 'c' composite, 'r' range...
    base: int  # typbasetype of a domain (0 otherwise)


TYPES_QUERY = (
    "SELECT oid::bigint, format_type(oid, NULL), typcategory::text, typelem::bigint, typarray::bigint, "
    "typtype::text, typbasetype::bigint FROM pg_catalog.pg_type WHERE oid = ANY(%s::oid[])"
)


def type_rows(rows: Collection[tuple[Any, ...]]) -> dict[int, PgType]:
    """The rows of `TYPES_QUERY` by oid."""
    types = {}
    for oid, name, category, element, array, kind, base in rows:
        types[int(oid)] = PgType(int(oid), str(name), str(category), int(element), int(array), str(kind), int(base))
    return types


def needed_oids(oids: Collection[int], types: Mapping[int, PgType]) -> set[int]:
    """The oids `conversion_for` will look at that are not in `types` yet (elements, bases)."""
    needed = {oid for oid in oids if oid not in types}
    for oid in oids:
        known = types.get(oid)
        if known is None:
            continue
        for other in (known.element, known.base):
            if other and other not in types:
                needed.add(other)
    return needed


def base_type(oid: int, types: Mapping[int, PgType]) -> int:
    """A domain's base type (through domains over domains); any other type itself."""
    seen = set()
    while oid in types and types[oid].kind == "d" and types[oid].base and oid not in seen:
        seen.add(oid)
        oid = types[oid].base
    return oid


def array_element(oid: int, types: Mapping[int, PgType]) -> int | None:
    """The element type of an array type, or None when `oid` is not an array type.

    (Some fixed-size types such as `point` have a typelem too; only true arrays are arrays.)
    """
    known = types.get(oid)
    if known is None or not known.element or known.category != "A":
        return None
    element = types.get(known.element)
    if element is None or element.array != oid:
        return None
    return known.element


@attrs.frozen
class Conversion:
    """How one output column is read: the SQL cast around it, and the Python conversion after."""

    cast: str | None  # e.g. `text`, `text[]`, `bigint[]`; None when selected as it is
    convert: Converter | None  # None when psycopg2's value is already the right one
    target_type: str  # the DynamoDB type it becomes: N, S, BOOL, B, L or JSON_TARGET_TYPE

    def select(self, sql: str) -> str:
        """The select-list entry for a column or an expression (already an SQL text)."""
        return sql if self.cast is None else f"({sql})::{self.cast}"


_TEXT = Conversion("text", None, "S")
_SCALARS: Mapping[int, Conversion] = {
    **{oid: Conversion(None, None, target) for oid, (_, target) in _NATIVE.items()},
    BYTEA: Conversion(None, bytes_value, "B"),
    TEXT: Conversion(None, None, "S"),
    VARCHAR: Conversion(None, None, "S"),
    # psycopg2 hands char(n) over in its output form, padded to n (`ab  `); bpchar::text would
    # drop the trailing spaces.
    BPCHAR: Conversion(None, None, "S"),
    # psycopg2 hands inet over in its output form (`10.0.0.1`); inet::text would add `/32`.
    INET: Conversion(None, None, "S"),
    JSON: Conversion("text", json_value, JSON_TARGET_TYPE),
    JSONB: Conversion("text", json_value, JSON_TARGET_TYPE),
    TIMESTAMP: Conversion("text", timestamp_value, "S"),
    TIMESTAMPTZ: Conversion("text", timestamp_value, "S"),
    DATE: Conversion("text", date_value, "S"),
}
_ELEMENT_CONVERTERS: Mapping[int, Converter] = {
    JSON: json_value,
    JSONB: json_value,
    TIMESTAMP: timestamp_value,
    TIMESTAMPTZ: timestamp_value,
    DATE: date_value,
}
_ARRAY_OF_NATIVE = {element: array for array, element in _NATIVE_ARRAYS.items()}
# Arrays psycopg2 parses into lists of the elements' output texts (inet[]::text[] would add `/32`,
# bpchar[]::text[] would drop char(n)'s padding).
_STRING_ARRAYS: Mapping[int, tuple[int, str]] = {
    INET: (1041, "inet"),
    CIDR: (651, "cidr"),
    MACADDR: (1040, "macaddr"),
    BPCHAR: (1014, "bpchar"),
}


def conversion_for(oid: int, types: Mapping[int, PgType]) -> Conversion:
    """The conversion of a column of type `oid` (`types` holds it, its element and its base)."""
    oid = base_type(oid, types)
    scalar = _SCALARS.get(oid)
    if scalar is not None:
        return scalar
    element = array_element(oid, types)
    if element is None:
        return _TEXT  # any other type: PostgreSQL's own text form
    element = base_type(element, types)
    if element in _NATIVE:
        # psycopg2 parses these arrays itself; an array of a domain is cast to its base array.
        cast = None if oid == _ARRAY_OF_NATIVE[element] else f"{_NATIVE[element][0]}[]"
        return Conversion(cast, _elements(bytes_value) if element == BYTEA else None, "L")
    if element in _STRING_ARRAYS:
        array, name = _STRING_ARRAYS[element]
        return Conversion(None if oid == array else f"{name}[]", None, "L")
    convert = _ELEMENT_CONVERTERS.get(element)
    return Conversion("text[]", None if convert is None else _elements(convert), "L")
