"""PostgreSQL's `pgoutput` logical replication messages (protocol version 1), decoded.

Pure: bytes in, values out (PostgreSQL docs, "Logical Replication Message Formats"). Only what
the change stream needs is kept: transaction boundaries with their positions, the relations'
columns, and each row change's tuples as text (`None` for NULL, `UNCHANGED_TOAST` for a large
value an UPDATE left out because it did not change).
"""

from __future__ import annotations

import struct
from datetime import UTC, datetime, timedelta

import attrs


class PgoutputError(ValueError):
    """A message that is not pgoutput protocol 1 as documented."""


# A TOASTed column an UPDATE did not change: pgoutput sends 'u' and no value.
UNCHANGED_TOAST = object()
# Commit timestamps count microseconds from 2000-01-01 UTC.
_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)

ColumnValue = str | None | object


@attrs.frozen
class Begin:
    final_lsn: int
    committed_at: datetime
    xid: int


@attrs.frozen
class Commit:
    commit_lsn: int
    end_lsn: int
    committed_at: datetime


@attrs.frozen
class Column:
    name: str
    type_oid: int
    is_key: bool


@attrs.frozen
class Relation:
    oid: int
    namespace: str
    name: str
    columns: tuple[Column, ...]

    def index_of(self, column: str) -> int | None:
        """Where `column` is in this relation's tuples; None when it has no such column."""
        for index, candidate in enumerate(self.columns):
            if candidate.name == column:
                return index
        return None


@attrs.frozen
class Insert:
    relation_oid: int
    new: tuple[ColumnValue, ...]


@attrs.frozen
class Update:
    relation_oid: int
    new: tuple[ColumnValue, ...]
    # The old key ('K', when the key changed) or the whole old row ('O', REPLICA IDENTITY FULL).
    old: tuple[ColumnValue, ...] | None = None


@attrs.frozen
class Delete:
    relation_oid: int
    old: tuple[ColumnValue, ...]


@attrs.frozen
class Truncate:
    relation_oids: tuple[int, ...]


@attrs.frozen
class Ignored:
    """A message the change stream has no use for (origin, type, logical message)."""

    kind: str


Message = Begin | Commit | Relation | Insert | Update | Delete | Truncate | Ignored


# The protocol's integers, in network byte order.
_INT16, _INT32, _UINT32, _INT64, _UINT64 = (struct.Struct(f"!{code}") for code in "hiIqQ")


class _Reader:
    def __init__(self, data: bytes) -> None:
        self._data = data
        self._at = 0

    def take(self, size: int) -> bytes:
        end = self._at + size
        if end > len(self._data):
            raise PgoutputError(f"message ends early: {size} bytes wanted at offset {self._at} of {len(self._data)}")
        chunk = self._data[self._at : end]
        self._at = end
        return chunk

    def int8(self) -> int:
        return int(self.take(1)[0])

    def int16(self) -> int:
        return self._integer(_INT16)

    def int32(self) -> int:
        return self._integer(_INT32)

    def uint32(self) -> int:
        return self._integer(_UINT32)

    def int64(self) -> int:
        return self._integer(_INT64)

    def uint64(self) -> int:
        return self._integer(_UINT64)

    def _integer(self, layout: struct.Struct) -> int:
        value: int = layout.unpack(self.take(layout.size))[0]
        return value

    def string(self) -> str:
        end = self._data.find(b"\0", self._at)
        if end < 0:
            raise PgoutputError("a string without its terminating zero byte")
        text = self._data[self._at : end].decode("utf-8")
        self._at = end + 1
        return text

    def moment(self) -> datetime:
        return _PG_EPOCH + timedelta(microseconds=self.int64())

    def tuple_data(self) -> tuple[ColumnValue, ...]:
        values: list[ColumnValue] = []
        for _ in range(self.int16()):
            kind = self.take(1)
            if kind == b"n":
                values.append(None)
            elif kind == b"u":
                values.append(UNCHANGED_TOAST)
            elif kind in (b"t", b"b"):
                values.append(self.take(self.int32()).decode("utf-8", errors="replace"))
            else:
                raise PgoutputError(f"unknown column kind {kind!r} in tuple data")
        return tuple(values)

    def tuple_after(self, marker: bytes) -> tuple[ColumnValue, ...]:
        found = self.take(1)
        if found != marker:
            raise PgoutputError(f"expected tuple marker {marker!r}, found {found!r}")
        return self.tuple_data()


def _relation(reader: _Reader) -> Relation:
    oid = reader.uint32()
    namespace = reader.string() or "pg_catalog"
    name = reader.string()
    reader.int8()  # replica identity setting
    columns = []
    for _ in range(reader.int16()):
        flags = reader.int8()
        column_name = reader.string()
        type_oid = reader.uint32()
        reader.int32()  # type modifier
        columns.append(Column(column_name, type_oid, bool(flags & 1)))
    return Relation(oid, namespace, name, tuple(columns))


def _update(reader: _Reader) -> Update:
    oid = reader.uint32()
    marker = reader.take(1)
    if marker in (b"K", b"O"):
        old = reader.tuple_data()
        return Update(oid, reader.tuple_after(b"N"), old)
    if marker != b"N":
        raise PgoutputError(f"unknown UPDATE tuple marker {marker!r}")
    return Update(oid, reader.tuple_data())


def _delete(reader: _Reader) -> Delete:
    oid = reader.uint32()
    marker = reader.take(1)
    if marker not in (b"K", b"O"):
        raise PgoutputError(f"unknown DELETE tuple marker {marker!r}")
    return Delete(oid, reader.tuple_data())


def decode(data: bytes) -> Message:
    """One pgoutput message; raises `PgoutputError` for one that is not as documented."""
    if not data:
        raise PgoutputError("an empty message")
    reader = _Reader(data)
    kind = reader.take(1)
    if kind == b"B":
        return Begin(reader.uint64(), reader.moment(), reader.uint32())
    if kind == b"C":
        reader.int8()  # flags, unused
        return Commit(reader.uint64(), reader.uint64(), reader.moment())
    if kind == b"R":
        return _relation(reader)
    if kind == b"I":
        oid = reader.uint32()
        return Insert(oid, reader.tuple_after(b"N"))
    if kind == b"U":
        return _update(reader)
    if kind == b"D":
        return _delete(reader)
    if kind == b"T":
        count = reader.int32()
        reader.int8()  # options (CASCADE, RESTART IDENTITY)
        return Truncate(tuple(reader.uint32() for _ in range(count)))
    if kind in (b"O", b"Y", b"M"):
        return Ignored(kind.decode())
    raise PgoutputError(f"unknown message kind {kind!r}")


def lsn_text(position: int) -> str:
    """A position as PostgreSQL writes it (`16/B374D848`)."""
    return f"{position >> 32:X}/{position & 0xFFFFFFFF:X}"


def lsn_of(text: str) -> int:
    """The position PostgreSQL writes as `16/B374D848`."""
    high, _, low = text.partition("/")
    try:
        return (int(high, 16) << 32) | int(low, 16)
    except ValueError:
        raise PgoutputError(f"not a WAL position: {text!r}") from None
