from __future__ import annotations

from datetime import UTC, datetime

from tests.factories import to_item, valid_user
from user_migration.adapters.dynamodb.item_size import attribute_value_bytes, item_bytes
from user_migration.domain.convert.limits import MAX_ITEM_BYTES
from user_migration.domain.convert.mapping import DIGEST_BYTES
from user_migration.domain.convert.rules import Rejection, prepare_user
from user_migration.domain.model import PreparedUser

MIGRATED_AT = datetime(2026, 1, 1, tzinfo=UTC)


def test_sizes_follow_dynamodbs_rules():
    assert attribute_value_bytes({"S": "héllo"}) == 6
    assert attribute_value_bytes({"N": "12345"}) == 4  # 5 digits -> 3 bytes + 1
    assert attribute_value_bytes({"N": "0"}) == 2
    assert attribute_value_bytes({"N": "100000"}) == 2  # trailing zeros trimmed
    assert attribute_value_bytes({"BOOL": True}) == 1
    assert attribute_value_bytes({"NULL": True}) == 1
    assert attribute_value_bytes({"L": []}) == 3
    assert attribute_value_bytes({"M": {}}) == 3
    assert attribute_value_bytes({"L": [{"S": "ab"}, {"BOOL": False}]}) == 3 + (1 + 2) + (1 + 1)
    assert attribute_value_bytes({"M": {"ké": {"S": "v"}}}) == 3 + 1 + 3 + 1
    assert item_bytes({"user_id": {"N": "1"}, "a": {"S": "xyz"}}) == (7 + 2) + (1 + 3)


def _user_of_size(target_bytes: int):
    """A valid user whose item is exactly `target_bytes` long, by padding the display name."""
    base = valid_user(1, display_name="")
    padding = target_bytes - item_bytes(to_item(base, MIGRATED_AT))
    return valid_user(1, display_name="x" * padding)


def test_item_of_exactly_the_limit_is_accepted():
    user = _user_of_size(MAX_ITEM_BYTES)
    assert item_bytes(to_item(user, MIGRATED_AT)) == MAX_ITEM_BYTES
    prepared = prepare_user(user, MIGRATED_AT)
    assert isinstance(prepared, PreparedUser)
    assert prepared.size == MAX_ITEM_BYTES


def test_item_one_byte_over_the_limit_is_rejected_with_its_size():
    user = _user_of_size(MAX_ITEM_BYTES + 1)
    assert prepare_user(user, MIGRATED_AT) == Rejection(1, ("Item too large: 409601 bytes (limit 409600)",))


def test_the_size_includes_the_migration_digest():
    item = to_item(valid_user(1), MIGRATED_AT)
    assert DIGEST_BYTES == 48
    assert item_bytes({"migration_digest": item["migration_digest"]}) == DIGEST_BYTES
    prepared = prepare_user(valid_user(1), MIGRATED_AT)
    assert isinstance(prepared, PreparedUser)
    assert prepared.size == item_bytes(item)
