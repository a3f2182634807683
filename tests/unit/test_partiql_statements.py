"""The PartiQL statements of the batched live-safe writes: what is sent, and what an answer means."""

from __future__ import annotations

import pytest

from user_migration.adapters.dynamodb.partiql import MAX_STATEMENT_CHARS, answers_of, insert_statement, update_statement

ITEM = {"user_id": {"N": "7"}, "email": {"S": "a@example.com"}, "profile": {"M": {"k": {"N": "1"}}}}


def test_an_insert_passes_every_value_as_a_parameter_in_the_items_order():
    statement = insert_statement(7, "users", ITEM)
    assert statement is not None
    assert statement.text == """INSERT INTO "users" VALUE {'user_id': ?, 'email': ?, 'profile': ?}"""
    assert statement.parameters == tuple(ITEM.values())
    assert statement.request()["ReturnValuesOnConditionCheckFailure"] == "ALL_OLD"


def test_an_update_sets_the_new_item_removes_the_rest_and_pins_what_was_read():
    current = {"user_id": {"N": "7"}, "email": {"S": "old"}, "legacy": {"S": "x"}, "migration_version": {"N": "1"}}
    guards = {"migration_version": {"N": "1"}, "migration_digest": None}
    statement = update_statement(7, "users", "user_id", ITEM, current, guards)
    assert statement is not None
    assert statement.text == (
        'UPDATE "users" SET "email" = ?, "profile" = ? REMOVE "legacy", "migration_version" '
        'WHERE "user_id" = ? AND "migration_version" = ? AND "migration_digest" IS MISSING'
    )
    # Parameters follow the placeholders' order: SET's values, then the key, then the guards.
    assert statement.parameters == (ITEM["email"], ITEM["profile"], ITEM["user_id"], {"N": "1"})


@pytest.mark.parametrize("name", ["it's", 'say "hi"'])
def test_a_name_holding_a_quote_goes_as_a_putitem(name):
    item = {**ITEM, name: {"S": "x"}}
    assert insert_statement(7, "users", item) is None
    assert update_statement(7, "users", "user_id", item, ITEM, {}) is None


def test_a_statement_over_dynamodbs_length_goes_as_a_putitem():
    wide = {"user_id": {"N": "7"}, **{f"attribute_{i:04d}": {"S": ""} for i in range(MAX_STATEMENT_CHARS // 16)}}
    assert insert_statement(7, "users", wide) is None


def test_answers_keep_the_statements_order_and_the_item_that_failed():
    stored = {"user_id": {"N": "2"}}
    response = {
        "Responses": [
            {"TableName": "users"},
            {"Error": {"Code": "ConditionalCheckFailed", "Message": "no", "Item": stored}, "TableName": "users"},
            {"Error": {"Code": "DuplicateItem", "Message": "Duplicate primary key exists in table"}},
        ]
    }
    first, second, third = answers_of(response, 3)
    assert (first.code, second.code, second.stored, third.code) == (
        "",
        "ConditionalCheckFailed",
        stored,
        "DuplicateItem",
    )
    with pytest.raises(ValueError, match="2 answers to 3"):
        answers_of({"Responses": response["Responses"][:2]}, 3)
