"""pgoutput messages decoded, and gathered into the users table's transactions."""

from __future__ import annotations

import struct
from datetime import UTC, datetime

import pytest

from user_migration.adapters.postgres.pgoutput import (
    UNCHANGED_TOAST,
    Begin,
    Commit,
    Delete,
    Ignored,
    Insert,
    PgoutputError,
    Relation,
    Truncate,
    Update,
    decode,
    lsn_of,
    lsn_text,
)
from user_migration.adapters.postgres.pgoutput_transactions import TransactionAssembler
from user_migration.domain.sync.row_changes import RowChange

USERS_OID = 16_385
OTHER_OID = 16_400
MOMENT = datetime(2026, 12, 3, 11, 0, tzinfo=UTC)
MOMENT_MICROS = int((MOMENT - datetime(2000, 1, 1, tzinfo=UTC)).total_seconds()) * 1_000_000


def text(value: str) -> bytes:
    return value.encode() + b"\0"


def tuple_data(*values: str | object | None) -> bytes:
    body = struct.pack("!h", len(values))
    for value in values:
        if value is None:
            body += b"n"
        elif value is UNCHANGED_TOAST:
            body += b"u"
        else:
            assert isinstance(value, str)
            encoded = value.encode()
            body += b"t" + struct.pack("!i", len(encoded)) + encoded
    return body


def begin(final_lsn: int, xid: int = 700) -> bytes:
    return b"B" + struct.pack("!QqI", final_lsn, MOMENT_MICROS, xid)


def commit(commit_lsn: int, end_lsn: int) -> bytes:
    return b"C" + struct.pack("!bQQq", 0, commit_lsn, end_lsn, MOMENT_MICROS)


def relation(oid: int, namespace: str, name: str, columns: list[tuple[str, int, bool]]) -> bytes:
    body = b"R" + struct.pack("!I", oid) + text(namespace) + text(name) + b"d" + struct.pack("!h", len(columns))
    for column, type_oid, key in columns:
        body += struct.pack("!b", 1 if key else 0) + text(column) + struct.pack("!Ii", type_oid, -1)
    return body


USERS_COLUMNS = [("id", 20, True), ("email", 25, False), ("profile", 3802, False)]


def insert(oid: int, *values: str | object | None) -> bytes:
    return b"I" + struct.pack("!I", oid) + b"N" + tuple_data(*values)


def update(oid: int, new: tuple[str | object | None, ...], old_key: tuple[str | None, ...] | None = None) -> bytes:
    body = b"U" + struct.pack("!I", oid)
    if old_key is not None:
        body += b"K" + tuple_data(*old_key)
    return body + b"N" + tuple_data(*new)


def delete(oid: int, *key: str | None) -> bytes:
    return b"D" + struct.pack("!I", oid) + b"K" + tuple_data(*key)


def test_begin_and_commit_carry_positions_and_time() -> None:
    assert decode(begin(0x1_0000_0010, xid=42)) == Begin(0x1_0000_0010, MOMENT, 42)
    assert decode(commit(0x1_0000_0010, 0x1_0000_0040)) == Commit(0x1_0000_0010, 0x1_0000_0040, MOMENT)


def test_relation_names_its_columns_and_key() -> None:
    decoded = decode(relation(USERS_OID, "public", "users", USERS_COLUMNS))
    assert isinstance(decoded, Relation)
    assert (decoded.oid, decoded.namespace, decoded.name) == (USERS_OID, "public", "users")
    assert [(column.name, column.type_oid, column.is_key) for column in decoded.columns] == USERS_COLUMNS
    assert decoded.index_of("profile") == 2
    assert decoded.index_of("missing") is None
    # An empty namespace is pg_catalog's.
    assert isinstance(catalog := decode(relation(1, "", "t", [])), Relation)
    assert catalog.namespace == "pg_catalog"


def test_tuples_tell_null_unchanged_toast_and_text_apart() -> None:
    assert decode(insert(USERS_OID, "7", None, '{"a": 1}')) == Insert(USERS_OID, ("7", None, '{"a": 1}'))
    assert decode(update(USERS_OID, ("7", "a@example.com", UNCHANGED_TOAST))) == Update(
        USERS_OID, ("7", "a@example.com", UNCHANGED_TOAST)
    )
    assert decode(update(USERS_OID, ("8", "x", None), old_key=("7", None, None))) == Update(
        USERS_OID, ("8", "x", None), ("7", None, None)
    )
    assert decode(delete(USERS_OID, "7", None, None)) == Delete(USERS_OID, ("7", None, None))


def test_truncate_and_messages_without_use() -> None:
    assert decode(b"T" + struct.pack("!ibII", 2, 0, USERS_OID, OTHER_OID)) == Truncate((USERS_OID, OTHER_OID))
    assert decode(b"O" + struct.pack("!Q", 5) + text("origin")) == Ignored("O")


@pytest.mark.parametrize(
    "data",
    [b"", b"Z", b"B\x00\x01", insert(USERS_OID, "7")[:-1], b"R" + struct.pack("!I", 1) + b"public"],
    ids=["empty", "unknown kind", "short begin", "short tuple", "unterminated string"],
)
def test_malformed_messages_are_refused(data: bytes) -> None:
    with pytest.raises(PgoutputError):
        decode(data)


def test_positions_read_and_written_as_postgresql_does() -> None:
    assert lsn_of("16/B374D848") == (0x16 << 32) | 0xB374D848
    assert lsn_text((0x16 << 32) | 0xB374D848) == "16/B374D848"
    with pytest.raises(PgoutputError):
        lsn_of("not/a position")


def assembled(*messages: bytes) -> list[object]:
    assembler = TransactionAssembler("public", "users", "id")
    results = [assembler.feed(decode(message)) for message in messages]
    return [result for result in results if result is not None]


def test_a_transaction_tells_each_row_change_by_key_at_its_end_position() -> None:
    (transaction,) = assembled(
        relation(USERS_OID, "public", "users", USERS_COLUMNS),
        begin(100),
        insert(USERS_OID, "1", "a@example.com", "{}"),
        update(USERS_OID, ("2", "b@example.com", UNCHANGED_TOAST)),
        delete(USERS_OID, "3", None, None),
        commit(100, 120),
    )
    assert transaction.position == 120  # the end of the commit record: past the commit itself
    assert transaction.committed_at == MOMENT
    assert transaction.transaction_id == 700  # the begin's xid
    assert transaction.changes == (RowChange(1), RowChange(2), RowChange(3, deleted=True))


def test_a_key_changed_by_an_update_deletes_the_old_user() -> None:
    (transaction,) = assembled(
        relation(USERS_OID, "public", "users", USERS_COLUMNS),
        begin(100),
        update(USERS_OID, ("9", "x", None), old_key=("4", None, None)),
        commit(100, 120),
    )
    assert transaction.changes == (RowChange(4, deleted=True), RowChange(9))


def test_other_tables_and_empty_transactions_give_nothing() -> None:
    assert (
        assembled(
            relation(OTHER_OID, "public", "orders", [("id", 20, True)]),
            relation(USERS_OID, "other_schema", "users", USERS_COLUMNS),
            begin(100),
            insert(OTHER_OID, "1"),
            insert(USERS_OID, "1", None, None),
            commit(100, 120),
            begin(130),
            commit(130, 140),
        )
        == []
    )


def test_truncating_the_users_table_is_refused_not_ignored() -> None:
    assembler = TransactionAssembler("public", "users", "id")
    assembler.feed(decode(relation(USERS_OID, "public", "users", USERS_COLUMNS)))
    assembler.feed(decode(begin(100)))
    assembler.feed(decode(b"T" + struct.pack("!ibI", 1, 0, OTHER_OID)))  # another table: fine
    with pytest.raises(PgoutputError, match="truncated"):
        assembler.feed(decode(b"T" + struct.pack("!ibI", 1, 0, USERS_OID)))


def test_a_users_table_without_the_key_column_is_refused() -> None:
    assembler = TransactionAssembler("public", "users", "user_id")
    with pytest.raises(PgoutputError, match="no column user_id"):
        assembler.feed(decode(relation(USERS_OID, "public", "users", USERS_COLUMNS)))
