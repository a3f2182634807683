"""The `ChangeStream` port's contract, run against the in-memory stream and PostgreSQL's logical
replication (a real slot with pgoutput on the session's wal_level=logical server): whole
transactions in commit order, unacknowledged ones delivered again, acknowledged ones never."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence

import attrs
import pytest

from tests.real_adapters import create_source_table, execute, unique_name
from tests.real_adapters import quote_table_name as quoted
from user_migration.adapters.memory.changes import InMemoryChangeStream
from user_migration.adapters.postgres.cdc import CaptureNames, set_up_change_capture, tear_down_change_capture
from user_migration.adapters.postgres.replication import PostgresChangeStream
from user_migration.adapters.postgres.source import create_pool
from user_migration.domain.convert.mapping import default_mapping
from user_migration.domain.sync.row_changes import ChangeBatch, RowChange
from user_migration.ports.change_stream import ChangeStream

Commit = Callable[[Sequence[RowChange]], None]


@attrs.frozen
class Subject:
    stream: ChangeStream
    commit: Commit  # one transaction of these row changes, as the application would make it
    commit_elsewhere: Callable[[], None]  # a transaction that touches no user


@pytest.fixture(params=["memory", "postgres"])
async def subject(request: pytest.FixtureRequest) -> AsyncIterator[Subject]:
    if request.param == "memory":
        memory = InMemoryChangeStream()
        yield Subject(memory, lambda changes: memory.commit(changes), lambda: memory.commit_elsewhere() and None)
        return
    dsn = request.getfixturevalue("logical_postgres_dsn")
    table, other = unique_name("users"), unique_name("other")
    create_source_table(dsn, table)
    execute(dsn, f"CREATE TABLE {quoted(other)} (id bigint PRIMARY KEY)")
    names = CaptureNames(slot=unique_name("slot"), publication=unique_name("pub"))
    pool = await create_pool(dsn)

    async def no_mark() -> None:
        return None

    mapping = default_mapping(table)
    await set_up_change_capture(pool, mapping, names, no_mark)

    def commit(changes: Sequence[RowChange]) -> None:
        statements = []
        for change in changes:
            if change.deleted:
                statements.append(f"DELETE FROM {quoted(table)} WHERE id = {change.user_id}")
            else:
                statements.append(
                    f"INSERT INTO {quoted(table)} (id, username, email, created_at, updated_at, status) VALUES "
                    f"({change.user_id}, 'u{change.user_id}', 'u{change.user_id}@example.com', now(), now(), 'active') "
                    "ON CONFLICT (id) DO UPDATE SET email = 'again-' || excluded.email"
                )
        execute(dsn, "; ".join(statements))

    counter = iter(range(1, 10**6))
    stream = PostgresChangeStream(dsn, pool, mapping, names)
    yield Subject(stream, commit, lambda: execute(dsn, f"INSERT INTO {quoted(other)} VALUES ({next(counter)})"))
    await stream.close()
    await tear_down_change_capture(pool, names)
    pool.close()
    await pool.wait_closed()


async def read_all(stream: ChangeStream, transactions: int) -> ChangeBatch:
    """Batches read until `transactions` came (or a few empty reads), gathered into one."""
    taken: list = []
    through = 0
    for _ in range(40):
        batch = await stream.read(1_000, 0.25)
        taken.extend(batch.transactions)
        through = batch.delivered_through
        if len(taken) >= transactions:
            break
    return ChangeBatch(tuple(taken), through)


def changes_of(batch: ChangeBatch) -> list[tuple[RowChange, ...]]:
    return [transaction.changes for transaction in batch.transactions]


async def test_whole_transactions_come_in_commit_order_with_growing_positions(subject: Subject) -> None:
    await subject.stream.open()
    subject.commit([RowChange(1), RowChange(2)])
    subject.commit_elsewhere()
    subject.commit([RowChange(1), RowChange(2, deleted=True)])
    batch = await read_all(subject.stream, 2)
    assert changes_of(batch) == [(RowChange(1), RowChange(2)), (RowChange(1), RowChange(2, deleted=True))]
    positions = [transaction.position for transaction in batch.transactions]
    assert positions == sorted(positions)
    assert positions[0] < positions[1]
    assert batch.delivered_through >= positions[-1]


async def test_a_batch_never_splits_a_transaction_and_keeps_near_its_size(subject: Subject) -> None:
    await subject.stream.open()
    subject.commit([RowChange(i) for i in range(10, 15)])
    subject.commit([RowChange(20)])
    subject.commit([RowChange(21)])
    first = await subject.stream.read(2, 2.0)
    while not first.transactions:
        first = await subject.stream.read(2, 2.0)
    assert changes_of(first) == [tuple(RowChange(i) for i in range(10, 15))]  # whole, though over 2
    rest = await read_all(subject.stream, 2)
    assert changes_of(rest) == [(RowChange(20),), (RowChange(21),)]


async def test_unacknowledged_transactions_come_again_and_acknowledged_ones_never(subject: Subject) -> None:
    start = await subject.stream.confirmed_position()
    await subject.stream.open()
    subject.commit([RowChange(1)])
    subject.commit([RowChange(2)])
    batch = await read_all(subject.stream, 2)
    first, second = batch.transactions
    await subject.stream.acknowledge(first.position)
    await subject.stream.close()  # as a crash would, before the second one was stored

    await subject.stream.open()
    again = await read_all(subject.stream, 1)
    assert changes_of(again) == [(RowChange(2),)]
    assert again.transactions[0].position == second.position
    assert await subject.stream.confirmed_position() >= first.position > start
    await subject.stream.acknowledge(again.delivered_through)
    await subject.stream.close()

    await subject.stream.open()
    subject.commit([RowChange(3)])  # what comes first now is this, not the acknowledged ones
    assert changes_of(await read_all(subject.stream, 1)) == [(RowChange(3),)]


async def test_health_tells_the_retained_wal_and_the_lag(subject: Subject) -> None:
    await subject.stream.open()
    subject.commit([RowChange(1)])
    batch = await read_all(subject.stream, 1)
    behind = await subject.stream.health()
    assert behind.lag_bytes > 0  # delivered, not acknowledged
    assert behind.retained_wal_bytes >= behind.lag_bytes
    await subject.stream.acknowledge(batch.delivered_through)
    await subject.stream.close()
    # The server takes the last acknowledgment in on its own time (its walsender may still be reading
    # it when the connection closes): the slot's lag shrinks within seconds, not at once.
    for _ in range(100):  # 10 s at most
        after = await subject.stream.health()
        if after.lag_bytes < behind.lag_bytes:
            break
        await asyncio.sleep(0.1)
    assert after.lag_bytes < behind.lag_bytes
