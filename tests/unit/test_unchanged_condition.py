"""The condition under which a delete or a rewrite replaces an item: every value as it was read,
inside maps and lists too, in terms every DynamoDB implementation evaluates alike; less detail only
past DynamoDB's limits on an expression."""

from __future__ import annotations

from user_migration.adapters.dynamodb.rewrite import MAX_EXPRESSION_OPERATORS, unchanged_condition


def test_maps_and_lists_are_checked_by_type_size_and_each_value_inside():
    item = {
        "user_id": {"N": "7"},
        "profile": {"M": {"tags": {"L": [{"S": "a"}, {"NULL": True}]}, "empty": {"M": {}}}},
        "flag": {"BOOL": False},
    }

    condition = unchanged_condition(item)

    assert condition["ConditionExpression"] == (
        "#a0 = :v0"
        " AND attribute_type(#a1, :v1) AND size(#a1) = :v2"
        " AND attribute_type(#a1.#a2, :v1) AND size(#a1.#a2) = :v3"
        " AND attribute_type(#a1.#a3, :v4) AND size(#a1.#a3) = :v2 AND #a1.#a3[0] = :v5"
        " AND attribute_type(#a1.#a3[1], :v6)"
        " AND #a4 = :v7"
    )
    assert condition["ExpressionAttributeNames"] == {
        "#a0": "flag",
        "#a1": "profile",
        "#a2": "empty",
        "#a3": "tags",
        "#a4": "user_id",
    }
    assert condition["ExpressionAttributeValues"] == {
        ":v0": {"BOOL": False},
        ":v1": {"S": "M"},
        ":v2": {"N": "2"},
        ":v3": {"N": "0"},
        ":v4": {"S": "L"},
        ":v5": {"S": "a"},
        ":v6": {"S": "NULL"},
        ":v7": {"N": "7"},
    }


def test_a_map_too_large_to_check_value_by_value_is_compared_whole():
    profile = {"M": {f"key_{index}": {"N": str(index)} for index in range(MAX_EXPRESSION_OPERATORS)}}

    condition = unchanged_condition({"user_id": {"N": "7"}, "profile": profile})

    assert condition["ConditionExpression"] == "#a0 = :v0 AND #a1 = :v1"
    assert condition["ExpressionAttributeValues"] == {":v0": profile, ":v1": {"N": "7"}}


def test_past_the_limits_only_the_digest_and_the_moment_of_the_write_are_checked():
    item = {f"extra_{index}": {"N": str(index)} for index in range(MAX_EXPRESSION_OPERATORS)}
    item.update(migration_digest={"S": "d1"}, migrated_at={"S": "2026-01-01T00:00:00Z"})

    condition = unchanged_condition(item)

    assert condition == {
        "ConditionExpression": "#d = :d AND #m = :m",
        "ExpressionAttributeNames": {"#d": "migration_digest", "#m": "migrated_at"},
        "ExpressionAttributeValues": {":d": {"S": "d1"}, ":m": {"S": "2026-01-01T00:00:00Z"}},
    }
