"""pgoutput messages gathered into the users table's committed transactions (pure).

pgoutput (protocol 1) sends a transaction only once it committed, whole, between its Begin and
Commit; transactions come in commit order. Each row change is told by the key of the row: the
new key of an insert or update, the old key of a delete, and both when an update changed the
key (the old user is then deleted). The rows' other values are not taken from the message: the
stream's consumer reads the row again (see `domain.sync.stream`), which also covers a large
value an UPDATE left out as unchanged (`UNCHANGED_TOAST`).
"""

from __future__ import annotations

from datetime import datetime

from user_migration.adapters.postgres.pgoutput import (
    Begin,
    ColumnValue,
    Commit,
    Delete,
    Insert,
    Message,
    PgoutputError,
    Relation,
    Truncate,
    Update,
)
from user_migration.domain.errors import InvalidParameter
from user_migration.domain.keys import KeyKind, UserId
from user_migration.domain.sync.row_changes import CommittedChanges, RowChange


class TransactionAssembler:
    """Feeds on decoded messages; hands back each transaction of `schema.table` as it commits."""

    def __init__(self, schema: str, table: str, key_column: str, key_kind: KeyKind = KeyKind.INTEGER) -> None:
        self._schema = schema
        self._table = table
        self._key_column = key_column
        self._key_kind = key_kind
        self._key_index: dict[int, int] = {}  # relation oid -> where its key is in a tuple
        self._open: Begin | None = None
        self._changes: list[RowChange] = []

    @property
    def in_transaction(self) -> bool:
        """Whether a transaction began and has not committed yet."""
        return self._open is not None

    def feed(self, message: Message) -> CommittedChanges | None:
        """Take one message; a transaction that committed with changes to the table is returned."""
        if isinstance(message, Begin):
            self._open, self._changes = message, []
        elif isinstance(message, Relation):
            self._relation(message)
        elif isinstance(message, Insert):
            self._change(message.relation_oid, message.new, deleted=False)
        elif isinstance(message, Update):
            self._update(message)
        elif isinstance(message, Delete):
            self._change(message.relation_oid, message.old, deleted=True)
        elif isinstance(message, Truncate):
            if any(oid in self._key_index for oid in message.relation_oids):
                raise PgoutputError(
                    "the users table was truncated, which the stream cannot carry over: the publication "
                    "should not publish truncate (`cdc setup` creates it so)"
                )
        elif isinstance(message, Commit):
            return self._commit(message.end_lsn, message.committed_at)
        return None

    def _relation(self, relation: Relation) -> None:
        if (relation.namespace, relation.name) != (self._schema, self._table):
            self._key_index.pop(relation.oid, None)
            return
        index = relation.index_of(self._key_column)
        if index is None:
            raise PgoutputError(f"{relation.namespace}.{relation.name} has no column {self._key_column}")
        self._key_index[relation.oid] = index

    def _key(self, oid: int, values: tuple[ColumnValue, ...]) -> UserId:
        value = values[self._key_index[oid]]
        if not isinstance(value, str):
            raise PgoutputError(f"a change to the users table without its key {self._key_column}")
        # pgoutput sends a value in its text form: an integer's digits, a uuid's canonical text, a text as it is.
        try:
            return (
                self._key_kind.check(self._key_column, value) if self._key_kind is not KeyKind.INTEGER else int(value)
            )
        except (ValueError, InvalidParameter):
            raise PgoutputError(
                f"the key {self._key_column} is not of the mapping's key type {self._key_kind.value}: {value[:40]!r}"
            ) from None

    def _change(self, oid: int, values: tuple[ColumnValue, ...], deleted: bool) -> None:
        if oid not in self._key_index:
            return  # another table of the publication
        if self._open is None:
            raise PgoutputError("a row change outside a transaction")
        self._changes.append(RowChange(self._key(oid, values), deleted))

    def _update(self, update: Update) -> None:
        if update.relation_oid not in self._key_index:
            return
        new_key = self._key(update.relation_oid, update.new)
        if update.old is not None:
            old_key = self._key(update.relation_oid, update.old)
            if old_key != new_key:
                self._change(update.relation_oid, update.old, deleted=True)
        self._change(update.relation_oid, update.new, deleted=False)

    def _commit(self, end_lsn: int, committed_at: datetime) -> CommittedChanges | None:
        if self._open is None:
            raise PgoutputError("a commit without its begin")
        xid, changes, self._open, self._changes = self._open.xid, tuple(self._changes), None, []
        return CommittedChanges(end_lsn, committed_at, changes, xid) if changes else None
