from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.factories import valid_user
from user_migration.domain.convert.rules import failure_text, is_valid_email, user_problems
from user_migration.domain.model import UnreadableValue


def test_a_valid_user_has_no_problems():
    assert user_problems(valid_user()) == []


@pytest.mark.parametrize("username", [None, ""])
def test_missing_username(username):
    assert user_problems(valid_user(username=username)) == ["Missing required field 'username'"]


@pytest.mark.parametrize("username", ["ab", "a" * 33, "has space", "émile", "semi;colon", "x@y"])
def test_invalid_username_format(username):
    assert user_problems(valid_user(username=username)) == ["Invalid username format"]


@pytest.mark.parametrize("username", ["abc", "a" * 32, "A.b-c_9", "..."])
def test_acceptable_usernames(username):
    assert user_problems(valid_user(username=username)) == []


@pytest.mark.parametrize("email", [None, ""])
def test_missing_email(email):
    assert user_problems(valid_user(email=email)) == ["Missing required field 'email'"]


@pytest.mark.parametrize(
    "email",
    [
        "no-at-sign.example.com",
        "two@@example.com",
        "a@b@example.com",
        "@example.com",
        "user@localhost",
        "user @example.com",
        "user@exa\tmple.com",
        "user@example.com\n",
        "u" * 243 + "@example.com",  # 255 characters
    ],
)
def test_invalid_email_format(email):
    assert user_problems(valid_user(email=email)) == ["Invalid email format"]


def test_email_of_exactly_254_characters_is_valid():
    email = "u" * 242 + "@example.com"
    assert len(email) == 254
    assert is_valid_email(email)


def test_missing_created_at():
    assert user_problems(valid_user(created_at=None)) == ["Missing required field 'created_at'"]


def test_missing_updated_at_is_fine():
    assert user_problems(valid_user(updated_at=None)) == []


def test_unreadable_timestamps_are_reported_with_their_reason():
    unreadable = UnreadableValue("infinity", "'infinity' is not a representable timestamp")
    assert user_problems(valid_user(created_at=unreadable, updated_at=unreadable)) == [
        "Invalid created_at: 'infinity' is not a representable timestamp",
        "Invalid updated_at: 'infinity' is not a representable timestamp",
    ]


@pytest.mark.parametrize("status", ["pending", "ACTIVE", " active"])
def test_invalid_status_names_the_value(status):
    assert user_problems(valid_user(status=status)) == [f"Invalid status '{status}'"]


@pytest.mark.parametrize("status", ["active", "suspended", "deleted"])
def test_allowed_statuses(status):
    assert user_problems(valid_user(status=status)) == []


@pytest.mark.parametrize("status", [None, ""])
def test_missing_status(status):
    # An empty string counts as absent for every rule, the status's too.
    assert user_problems(valid_user(status=status)) == ["Missing required field 'status'"]


def test_reasons_carry_a_stable_code():
    user = valid_user(username="x", email=None, status="gone", profile=[1])
    assert [reason.code for reason in user_problems(user)] == [
        "invalid_username",
        "missing_email",
        "invalid_status",
        "invalid_profile",
    ]


def test_display_name_with_a_lone_surrogate_cannot_be_stored():
    assert user_problems(valid_user(display_name="bad \ud800")) == ["Invalid display_name: not valid Unicode"]


def test_every_problem_is_collected_in_a_stable_order():
    user = valid_user(
        7,
        username="x",
        email=None,
        created_at=None,
        status="gone",
        profile=[1, 2],
    )
    problems = user_problems(user)
    assert problems == [
        "Invalid username format",
        "Missing required field 'email'",
        "Missing required field 'created_at'",
        "Invalid status 'gone'",
        "Invalid profile: must be a JSON object",
    ]
    assert failure_text(7, problems) == (
        "User 7: Invalid username format; Missing required field 'email'; "
        "Missing required field 'created_at'; Invalid status 'gone'; Invalid profile: must be a JSON object"
    )


def test_a_naive_created_at_is_acceptable():
    assert user_problems(valid_user(created_at=datetime(2020, 1, 1))) == []
    assert user_problems(valid_user(created_at=datetime(2020, 1, 1, tzinfo=UTC))) == []
