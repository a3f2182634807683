"""What a mapping file means (`domain.convert.mapping`): parsing, every problem named at once, and the rules."""

from __future__ import annotations

import tomllib

import pytest

from tests.django_mapping import django_mapping
from user_migration.domain.convert.mapping import (
    DOCUMENTED_RULES,
    NO_RULES,
    AttributeSource,
    Rules,
    UserMapping,
    default_mapping,
    mapping_as_written,
    parse_mapping,
)
from user_migration.domain.errors import MappingError

DJANGO = django_mapping("public.auth_user")

AUTH_USER_COLUMNS = [
    "id",
    "password",
    "last_login",
    "is_superuser",
    "username",
    "first_name",
    "last_name",
    "email",
    "is_staff",
    "is_active",
    "date_joined",
]


def django_mapping() -> UserMapping:
    return parse_mapping(tomllib.loads(DJANGO), "django.toml")


def problems_of(document: dict, origin: str = "bad.toml") -> list[str]:
    with pytest.raises(MappingError) as raised:
        parse_mapping(document, origin)
    assert raised.value.origin == origin
    return raised.value.problems


def test_the_django_example_mapping_is_read_field_by_field():
    mapping = django_mapping()
    assert mapping.table == "public.auth_user"
    assert mapping.key == "id"
    assert mapping.version is None
    assert mapping.key_attribute == "user_id"
    assert mapping.origin == "django.toml"
    assert mapping.attributes == (
        AttributeSource("username", column="username"),
        AttributeSource("email", column="email"),
        AttributeSource("display_name", expression="first_name || ' ' || last_name"),
        AttributeSource("status", expression="CASE WHEN is_active THEN 'active' ELSE 'suspended' END"),
        AttributeSource("created_at", column="date_joined"),
    )
    assert [source.sql for source in mapping.attributes][2] == "first_name || ' ' || last_name"
    assert mapping.carry is True
    assert mapping.exclude == frozenset({"password"})
    assert mapping.mapped_columns == frozenset({"username", "email", "date_joined"})
    assert set(mapping.rules) == {"username", "email"}


def test_the_django_rules_are_the_files_over_the_documented_ones():
    mapping = django_mapping()
    # The pattern replaces the documented one; `required` stays the documented default (true).
    assert mapping.rules_for("username") == Rules(required=True, pattern=r"^[\w.@+-]{1,150}$")
    # `required = false` changes only that: the documented `email = true` stays.
    assert mapping.rules_for("email") == Rules(required=False, email=True)
    assert mapping.rules_for("email").as_dict() == {"email": True}
    # Attributes without rules in the file keep the documented ones of their name.
    assert mapping.rules_for("status") == DOCUMENTED_RULES["status"]
    assert mapping.rules_for("created_at") == Rules(required=True)
    assert mapping.rules_for("display_name") == NO_RULES
    assert mapping.rules_for("last_login") == NO_RULES


def test_carried_columns_are_the_others_in_table_order():
    mapping = django_mapping()
    # Not the key, not the excluded password, not the columns mapped whole (username, email,
    # date_joined); columns only used inside expressions (first_name, is_active) are carried too.
    assert mapping.carried_columns(AUTH_USER_COLUMNS) == [
        "last_login",
        "is_superuser",
        "first_name",
        "last_name",
        "is_staff",
        "is_active",
    ]


def test_nothing_is_carried_when_carry_is_false():
    mapping = parse_mapping({"attributes": {"username": "login"}, "other_columns": {"carry": False}}, "m.toml")
    assert mapping.carried_columns(AUTH_USER_COLUMNS) == []


def test_carry_defaults_to_true_in_a_file_and_the_default_table_applies():
    mapping = parse_mapping({"attributes": {"username": "login"}}, "m.toml", default_table="people")
    assert mapping.carry is True
    assert mapping.table == "people"
    assert mapping.key == "id"
    assert mapping.carried_columns(["id", "login", "age"]) == ["age"]


def test_the_documented_layout_is_the_default_mapping():
    mapping = default_mapping()
    assert mapping.table == "users"
    assert mapping.version == "updated_at"
    assert [source.name for source in mapping.attributes] == [
        "username",
        "email",
        "display_name",
        "created_at",
        "updated_at",
        "status",
        "profile",
    ]
    assert all(source.column == source.name for source in mapping.attributes)
    assert mapping.carry is False
    assert mapping.carried_columns(["id", "username", "extra"]) == []
    for name, rules in DOCUMENTED_RULES.items():
        assert mapping.rules_for(name) == rules
    assert default_mapping("accounts").table == "accounts"


def test_target_key_attribute_and_version():
    mapping = parse_mapping(
        {"source": {"version": "modified"}, "target": {"key_attribute": "uid"}, "attributes": {"name": "n"}}, "m"
    )
    assert mapping.key_attribute == "uid"
    assert mapping.version == "modified"


def test_every_malformed_input_is_named_at_once():
    document = {
        "sources": {},
        "source": {"table": "t", "kye": "id"},
        "target": {"key_attribute": "uid", "sort_key": "x"},
        "attributes": {"uid": "id", "migrated_at": "now()", "name": "  ", "ok": "col"},
        "rules": {
            "ok": {
                "pattern": "([a-z",
                "required": "yes",
                "max_length": 0,
                "allowed": [],
                "maximum": 3,
            },
        },
        "other_columns": {"carry": False, "exclude": ["id"], "include": []},
    }
    problems = problems_of(document)
    expected_fragments = [
        "mapping: unknown key 'sources'",
        "[source]: unknown key 'kye'",
        "[target]: unknown key 'sort_key'",
        "[other_columns]: unknown key 'include'",
        "[attributes] name: must be a column name or an SQL expression",
        "[attributes] uid: clashes with the key attribute 'uid'",
        "[attributes] migrated_at: the migration writes 'migrated_at' itself",
        "[other_columns] exclude: 'id' is the key column",
        "[rules.ok]: unknown key 'maximum'",
        "[rules.ok].required must be true or false",
        "[rules.ok].pattern is not a valid regular expression",
        "[rules.ok].max_length must be a positive integer",
        "[rules.ok].allowed must be a non-empty list of strings",
    ]
    for fragment in expected_fragments:
        assert any(fragment in problem for problem in problems), (fragment, problems)
    assert len(problems) == len(expected_fragments), problems


def test_a_mapping_with_problems_keeps_the_parts_that_are_right_for_the_source_check():
    document = {
        "source": {"table": "accounts", "key": 3, "version": "changed"},
        "target": {"key_attribute": "uid"},
        "attributes": {"uid": "id", "migrated_at": "now()", "name": "  ", "login": "username", "email": "mail"},
        "rules": {"login": {"pattern": "(", "required": True}, "email": {"max_length": 40}, "ghost": {}},
        "other_columns": {"carry": False, "exclude": ["id", "password"]},
    }
    mapping = mapping_as_written(document, "m.toml")

    assert mapping.problems == tuple(problems_of(document, "m.toml"))
    assert len(mapping.problems) == 7
    assert (mapping.table, mapping.key, mapping.version, mapping.key_attribute) == ("accounts", "id", "changed", "uid")
    # The attributes that clash with the key or the migration's own are left out; the rest stay.
    assert mapping.attributes == (AttributeSource("login", column="username"), AttributeSource("email", column="mail"))
    # A rule with a problem stays by its name, without its keys (its name is checked against the source).
    assert mapping.rules == {
        "login": DOCUMENTED_RULES.get("login", NO_RULES),
        "email": Rules(email=True, required=True, max_length=40),
    }
    assert (mapping.carry, mapping.exclude) == (False, frozenset({"password"}))
    assert parse_mapping(tomllib.loads(DJANGO), "django.toml").problems == ()


def test_a_rule_for_an_unknown_attribute_is_refused_when_nothing_is_carried():
    document = {"attributes": {"name": "n"}, "rules": {"nmae": {"required": True}}, "other_columns": {"carry": False}}
    assert problems_of(document) == ["[rules.nmae]: no attribute 'nmae' in [attributes] or the carried columns"]


def test_a_rule_for_a_carried_column_is_accepted_until_the_source_is_known():
    mapping = parse_mapping({"attributes": {"name": "n"}, "rules": {"age": {"pattern": "[0-9]+"}}}, "m")
    assert mapping.rules_for("age") == Rules(pattern="[0-9]+")


def test_migration_digest_is_reserved_too():
    assert problems_of({"attributes": {"migration_digest": "x"}}) == [
        "[attributes] migration_digest: the migration writes 'migration_digest' itself; choose another name"
    ]


@pytest.mark.parametrize(
    ("rules", "problem"),
    [
        ({"email": "true"}, "[rules.a].email must be true or false"),
        ({"json_object": 1}, "[rules.a].json_object must be true or false"),
        ({"pattern": 5}, "[rules.a].pattern must be a string (a regular expression)"),
        ({"max_length": True}, "[rules.a].max_length must be a positive integer"),
        ({"max_length": -3}, "[rules.a].max_length must be a positive integer"),
        ({"max_length": 2.5}, "[rules.a].max_length must be a positive integer"),
        ({"allowed": ["x", 1]}, "[rules.a].allowed must be a non-empty list of strings"),
        ({"allowed": "x"}, "[rules.a].allowed must be a non-empty list of strings"),
    ],
)
def test_each_bad_rule_is_named(rules, problem):
    assert problems_of({"attributes": {"a": "a"}, "rules": {"a": rules}}) == [problem]


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ({"source": "users"}, "[source] must be a table"),
        ({"source": {"table": ""}}, "[source] table must be a non-empty string"),
        ({"source": {"key": 3}}, "[source] key must be a non-empty string"),
        ({"attributes": {"a": 1}}, "[attributes] a: must be a column name or an SQL expression (a non-empty string)"),
        ({"attributes": {"a": "a"}, "rules": {"a": "required"}}, "[rules.a] must be a table of rules"),
        ({"other_columns": {"carry": "yes"}}, "[other_columns] carry must be true or false"),
        ({"other_columns": {"exclude": "password"}}, "[other_columns] exclude must be a list of column names"),
        ({"target": {"key_attribute": "k" * 256}}, "[target] key_attribute: attribute name 'kkkk"),
    ],
)
def test_each_malformed_part_is_named(document, problem):
    problems = problems_of(document)
    assert len(problems) == 1
    assert problems[0].startswith(problem)


def test_the_error_says_how_many_problems_and_lists_them():
    with pytest.raises(MappingError) as raised:
        parse_mapping({"nope": 1, "attributes": {"migrated_at": "x"}}, "users.toml")
    message = str(raised.value)
    assert message.startswith("the mapping (users.toml) has 2 problem(s):\n")
    assert "  - mapping: unknown key 'nope'" in message


def test_rules_merge_and_show_only_what_is_in_force():
    rules = DOCUMENTED_RULES["status"].merged({"allowed": ["on", "off"]})
    assert rules == Rules(required=True, allowed=("on", "off"))
    assert rules.as_dict() == {"required": True, "allowed": ["on", "off"]}
    assert NO_RULES.as_dict() == {}
