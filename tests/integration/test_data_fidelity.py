"""Data fidelity through the real stack: PostgreSQL rows → Migration → DynamoDB items → users.

Every migrated item, read back and converted with `from_item`, must equal both the user the
source adapter reads for that id (through the documented mapping) and the user the test inserted.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import attrs
import psycopg2
import pytest

from tests.factories import from_item, to_item, valid_user
from tests.real_adapters import create_dynamodb_tables, create_source_table, execute, insert_users, unique_name
from user_migration.adapters.dynamodb.codec import unchanged_since_written
from user_migration.adapters.dynamodb.item_size import item_bytes
from user_migration.adapters.dynamodb.state import DynamoDbMigrationState
from user_migration.adapters.dynamodb.target import DynamoDbUserTarget
from user_migration.adapters.postgres.source import PostgresUserSource, create_pool, quote_table_name
from user_migration.adapters.retry import Backoff
from user_migration.domain.convert.limits import MAX_ITEM_BYTES
from user_migration.domain.convert.mapping import UserMapping, default_mapping
from user_migration.domain.convert.rules import UserPreparer, user_problems
from user_migration.domain.convert.timestamps import format_timestamp, parse_timestamp
from user_migration.domain.migrate.migration import Migration
from user_migration.domain.migrate.report import MigrationReport, MigrationStats
from user_migration.domain.migrate.request import BatchRequest
from user_migration.domain.model import JsonValue, User, as_source_user
from user_migration.domain.verify.request import VerifyRequest
from user_migration.domain.verify.verification import Verification
from user_migration.domain.write.changes import ChangeWrites
from user_migration.domain.write.ledger import WriteLedger

BIG = 12345678901234567890123456789012345678  # 38 digits, DynamoDB's maximum precision
PRECISE = Decimal("0.1000000000000000000000000000000000001")  # 37 significant digits
MIGRATED_AT = datetime(2030, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)


@attrs.define
class Stack:
    """The real adapters wired into a Migration, on fresh tables."""

    dsn: str
    table: str
    source: PostgresUserSource
    target: DynamoDbUserTarget
    state: DynamoDbMigrationState
    migration: Migration
    pool: Any

    def insert(self, users: Iterable[User]) -> None:
        insert_users(self.dsn, self.table, users)

    async def migrate(self, users: Iterable[User]) -> MigrationReport:
        self.insert(users)
        return await self.migration.run(BatchRequest(start_user_id=0, batch_size=1000))

    async def assert_round_trip(self, expected: User) -> dict[str, Any]:
        """The stored item converts back to the source's user and to the expected one."""
        item = await self.target.read_item(expected.id)
        assert item is not None, f"user {expected.id} was not written"
        stored = from_item(item)
        assert as_source_user(stored) == await self.source.read_user(expected.id)
        assert stored == expected
        assert unchanged_since_written(item)  # the digest fits what DynamoDB gives back
        return item


@pytest.fixture
async def stack(postgres_dsn: str, dynamodb: Any) -> AsyncIterator[Stack]:
    table = unique_name("users")
    create_source_table(postgres_dsn, table)
    users_table, state_table = await create_dynamodb_tables(dynamodb)
    pool = await create_pool(postgres_dsn)
    source = PostgresUserSource(pool, default_mapping(table))
    target = DynamoDbUserTarget(dynamodb, users_table, backoff=Backoff(4, 0.001, 0.01))
    state = DynamoDbMigrationState(dynamodb, state_table)
    try:
        yield Stack(postgres_dsn, table, source, target, state, Migration(source, target, state), pool)
    finally:
        pool.close()
        await pool.wait_closed()


def _assert_clean(report: MigrationReport, migrated: int) -> None:
    assert report.errors == []
    assert report.failed_user_ids == []
    assert report.migrated_count == migrated
    assert report.skipped_count == 0


async def test_unicode_and_emoji_survive_in_names_profile_values_and_keys(stack):
    users = [
        valid_user(
            1,
            display_name="Zoë 🚀 李小龙 עברית 👩‍👩‍👧 e\u0301",
            email="zoë@exämple.com",
            profile={
                "emoji 😀": "🎉🎉",
                "ключ": "значение",
                "日本": ["🍣", "ß", {"𝔘𝔫𝔦": "\u200b zero width"}],
                "tab\tand\nnewline": 'quote " backslash \\ nul-free',
            },
        ),
        valid_user(2, display_name="🙂" * 300, profile={"🙂" * 50: "🙃" * 50}),
    ]

    report = await stack.migrate(users)

    _assert_clean(report, 2)
    item = await stack.assert_round_trip(users[0])
    assert item["display_name"] == {"S": "Zoë 🚀 李小龙 עברית 👩‍👩‍👧 e\u0301"}
    assert item["profile"]["M"]["emoji 😀"] == {"S": "🎉🎉"}
    assert item["profile"]["M"]["日本"]["L"][2] == {"M": {"𝔘𝔫𝔦": {"S": "\u200b zero width"}}}
    await stack.assert_round_trip(users[1])


async def test_empty_strings_stay_empty_strings(stack):
    users = [
        valid_user(1, display_name="", profile={"bio": "", "links": ["", "x", ""], "deep": {"empty": ""}}),
        valid_user(2, display_name=None, profile={}),
        valid_user(3, display_name="", profile=None, updated_at=None),
    ]

    report = await stack.migrate(users)

    _assert_clean(report, 3)
    first = await stack.assert_round_trip(users[0])
    assert first["display_name"] == {"S": ""}
    assert first["profile"]["M"]["bio"] == {"S": ""}
    second = await stack.assert_round_trip(users[1])
    assert "display_name" not in second  # NULL is left out, unlike the empty string
    assert second["profile"] == {"M": {}}
    third = await stack.assert_round_trip(users[2])
    assert third["display_name"] == {"S": ""}
    assert "profile" not in third
    assert "updated_at" not in third


async def test_numbers_keep_every_digit(stack):
    profile: JsonValue = {
        "big": BIG,
        "negative_big": -BIG,
        "precise": PRECISE,
        "price": Decimal("12.50"),
        "zero": 0,
        "tiny": Decimal("1E-130"),
        "huge": Decimal("9.999999999999999999999999999999999999E+125"),
        "in_list": [Decimal("0.30000000000000000000000000000000001"), 7],
    }
    user = valid_user(1, profile=profile)

    report = await stack.migrate([user])

    _assert_clean(report, 1)
    item = await stack.assert_round_trip(user)
    stored: Any = from_item(item).profile
    assert isinstance(stored, dict)
    numbers = item["profile"]["M"]
    assert numbers["big"] == {"N": str(BIG)}
    assert numbers["negative_big"] == {"N": str(-BIG)}
    assert numbers["precise"] == {"N": "0.1000000000000000000000000000000000001"}
    assert Decimal(numbers["price"]["N"]) == Decimal("12.5")
    assert stored["big"] == BIG
    assert isinstance(stored["big"], int)
    assert stored["precise"] == PRECISE
    assert isinstance(stored["precise"], Decimal)
    assert stored["tiny"] == Decimal("1E-130")
    assert stored["huge"] == Decimal("9.999999999999999999999999999999999999E+125")
    for value in (*stored.values(), *stored["in_list"]):
        assert not isinstance(value, float)


def nested(levels: int) -> JsonValue:
    """A profile `levels` containers deep: objects in lists in objects, a leaf at each level."""
    value: JsonValue = {"leaf": "bottom", "n": Decimal("1.5")}
    for level in range(levels - 1, 0, -1):
        # Odd levels are objects (level 1 is the profile itself), even levels are lists.
        value = {"level": level, "down": value, "text": f"at {level}"} if level % 2 else [level, value, None, True]
    assert isinstance(value, dict)
    return value


def depth(value: object) -> int:
    if isinstance(value, dict):
        return 1 + max((depth(element) for element in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth(element) for element in value), default=0)
    return 0


async def test_nested_profiles_up_to_32_levels_survive_and_deeper_ones_are_reported(stack):
    users = [
        valid_user(1, profile=nested(3)),
        valid_user(2, profile={"a": [{"b": [{"c": {"d": [[], {}, [{}]]}}]}]}),
        valid_user(3, profile=nested(32)),
        valid_user(4, profile=nested(33)),
    ]
    assert depth(users[2].profile) == 32
    assert depth(users[3].profile) == 33

    report = await stack.migrate(users)

    assert report.migrated_count == 3
    assert report.failed_user_ids == [4]
    assert report.errors[0].startswith("User 4: Invalid profile: nesting deeper than 32 levels at profile.down")
    for user in users[:3]:
        await stack.assert_round_trip(user)
    assert await stack.target.read_item(4) is None


async def test_timestamps_keep_their_instant_and_microseconds_in_every_time_zone(stack):
    zones = [
        UTC,
        timezone(timedelta(hours=5, minutes=30)),
        timezone(timedelta(hours=-8)),
        timezone(timedelta(hours=14)),
        timezone(timedelta(hours=-9, minutes=-30)),
    ]
    users = [
        valid_user(
            index,
            created_at=datetime(2022, 6, 1, 12, 0, 0, 1 + index, tzinfo=zone),
            updated_at=datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=zone),
        )
        for index, zone in enumerate(zones, start=1)
    ]
    users.append(valid_user(9, created_at=datetime(1, 1, 1, tzinfo=UTC), updated_at=None))

    report = await stack.migrate(users)

    _assert_clean(report, len(users))
    for user in users:
        item = await stack.assert_round_trip(user)
        assert isinstance(user.created_at, datetime)
        assert item["created_at"] == {"S": format_timestamp(user.created_at)}
        assert item["created_at"]["S"].endswith("Z")
    india = await stack.target.read_item(2)
    assert india is not None
    assert india["created_at"] == {"S": "2022-06-01T06:30:00.000003Z"}
    assert india["updated_at"] == {"S": "1999-12-31T18:29:59.999999Z"}
    ancient = await stack.target.read_item(9)
    assert ancient is not None
    assert ancient["created_at"] == {"S": "0001-01-01T00:00:00.000000Z"}


def user_of_size(user_id: int, size: int) -> User:
    """A valid user whose item is exactly `size` bytes by the domain's rule.

    moto enforces its own approximation of the limit (405000 bytes, by a count that leaves out
    the per-element overhead of lists and maps), so part of the size is a list of nulls: 2 bytes
    each by DynamoDB's rule, 1 byte each by moto's. Then an item at exactly the real limit is
    also under moto's, and the test checks the domain's rule rather than moto's.
    """
    base = valid_user(user_id, display_name="", profile={"padding": [None] * 6000})
    padding = size - item_bytes(to_item(base, MIGRATED_AT))
    user = attrs.evolve(base, display_name="x" * padding)
    if size > MAX_ITEM_BYTES:  # no item is made for it: the preparer names its size instead
        assert user_problems(user) == [f"Item too large: {size} bytes (limit {MAX_ITEM_BYTES})"]
        return user
    assert item_bytes(to_item(user, MIGRATED_AT)) == size
    assert user_problems(user) == []
    return user


async def test_an_item_at_the_size_limit_is_migrated_and_one_byte_more_is_reported(stack):
    at_limit = user_of_size(1, MAX_ITEM_BYTES)
    over_limit = user_of_size(2, MAX_ITEM_BYTES + 1)
    small = valid_user(3)

    report = await stack.migrate([at_limit, over_limit, small])

    assert report.migrated_count == 2
    assert report.failed_user_ids == [2]
    assert report.errors == [f"User 2: Item too large: {MAX_ITEM_BYTES + 1} bytes (limit {MAX_ITEM_BYTES})"]
    item = await stack.assert_round_trip(at_limit)
    # The migrated_at written by the real clock has the same length as the one used for sizing.
    assert item_bytes(item) == MAX_ITEM_BYTES
    await stack.assert_round_trip(small)
    assert await stack.target.read_item(2) is None


async def test_statistics_after_a_run_count_what_was_written(stack):
    good = [valid_user(i) for i in (2, 4, 6, 8)]
    bad = [valid_user(5, email="not an email"), valid_user(7, profile={"": 1})]
    started = datetime.now(UTC)

    first = await stack.migrate([*good, *bad])

    assert first.migrated_count == 4
    assert first.failed_user_ids == [5, 7]
    # A problem inside a document keeps its path, as the documented texts have it.
    assert first.errors == ["User 5: Invalid email format", "User 7: Invalid profile: empty key at profile"]
    stats = await stack.migration.statistics()
    assert stats == MigrationStats(
        total_postgres_users=6,
        total_dynamo_users=4,
        pending_migration=2,
        last_migrated_user_id=8,
        total_postgres_users_as_of=stats.total_postgres_users_as_of,
        total_postgres_users_exact=True,
        failed_users=stats.failed_users,
    )
    assert started <= stats.total_postgres_users_as_of <= datetime.now(UTC)

    # A second run skips what is there already and leaves the counters alone.
    second = await stack.migration.run(BatchRequest(start_user_id=0, batch_size=1000))

    assert (second.migrated_count, second.skipped_count, second.failed_user_ids) == (0, 4, [5, 7])
    again = await stack.migration.statistics()
    assert (again.total_postgres_users, again.total_dynamo_users, again.pending_migration) == (6, 4, 2)
    assert again.last_migrated_user_id == 8
    assert await stack.target.count_users() == 4
    for user in good:
        item = await stack.assert_round_trip(user)
        assert started <= parse_timestamp(item["migrated_at"]["S"]) <= datetime.now(UTC)


def _postgres_text_forms(dsn: str, sql: str) -> list[tuple[str | None, ...]]:
    """Rows of `sql` whose every column is `format('%s', ...)`: PostgreSQL's own output text."""
    with psycopg2.connect(dsn) as connection, connection.cursor() as cursor:
        cursor.execute(sql)
        rows = cursor.fetchall()
    connection.close()
    return rows


async def test_char_n_arrives_padded_as_postgresql_prints_it_and_verifies_as_matching(stack):
    table = unique_name("chars")
    quoted = quote_table_name(table)
    columns = "id integer PRIMARY KEY, code char(5), codes char(3)[], word varchar(5)"
    execute(stack.dsn, f"CREATE TABLE {quoted} ({columns})")
    execute(
        stack.dsn,
        f"INSERT INTO {quoted} VALUES (1, 'ab', ARRAY['x', NULL, 'xyz']::char(3)[], 'ab'), (2, '', '{{}}', 'ab  '), "
        "(3, 'abcde', NULL, NULL)",
    )
    mapping = UserMapping(table=table, key="id", carry=True, origin="test mapping")
    source = PostgresUserSource(stack.pool, mapping)
    preparer = UserPreparer(mapping)
    migration = Migration(source, stack.target, stack.state, preparer=preparer)

    report = await migration.run(BatchRequest(start_user_id=0, batch_size=1000))

    _assert_clean(report, 3)
    printed = _postgres_text_forms(
        stack.dsn, f"SELECT format('%s', code), format('%s', codes) FROM {quoted} ORDER BY id"
    )
    assert printed[0] == ("ab   ", '{"x  ",NULL,xyz}')  # PostgreSQL's own text form of char(5) is padded
    first, second, third = [await stack.target.read_item(user_id) for user_id in (1, 2, 3)]
    assert None not in (first, second, third)
    assert first["code"] == {"S": printed[0][0]}
    assert first["codes"] == {"L": [{"S": "x  "}, {"NULL": True}, {"S": "xyz"}]}
    assert first["word"] == {"S": "ab"}  # varchar keeps what was stored, no padding
    assert second["code"] == {"S": printed[1][0]} == {"S": "     "}
    assert second["word"] == {"S": "ab  "}
    assert third["code"] == {"S": "abcde"}

    summary = await Verification(
        source, stack.target, stack.state, ChangeWrites(WriteLedger(stack.target, stack.state)), preparer
    ).verify(VerifyRequest())

    assert (summary.counts.checked, summary.counts.matching, summary.counts.different) == (3, 3, 0)
    assert summary.counts.failing == 0
