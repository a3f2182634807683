"""The rules a source user must meet before it is written to DynamoDB.

Every problem of a user is collected, so that one report tells the operator all there is to fix.
"""

from __future__ import annotations

import re
from datetime import datetime

from domain.model import UnreadableValue, User
from domain.profile_rules import profile_problems

USERNAME_PATTERN = re.compile(r"[A-Za-z0-9_.-]{3,32}")
MAX_EMAIL_CHARS = 254
ALLOWED_STATUSES = ("active", "suspended", "deleted")
_WHITESPACE = re.compile(r"\s")


def _missing(field: str) -> str:
    return f"Missing required field '{field}'"


def _username_problems(username: str | None) -> list[str]:
    if not username:
        return [_missing("username")]
    if not USERNAME_PATTERN.fullmatch(username):
        return ["Invalid username format"]
    return []


def is_valid_email(email: str) -> bool:
    """One `@`, a non-empty local part, a domain with a dot, no whitespace, at most 254 chars."""
    if len(email) > MAX_EMAIL_CHARS or _WHITESPACE.search(email) or email.count("@") != 1:
        return False
    local, domain = email.split("@")
    return bool(local) and "." in domain


def _email_problems(email: str | None) -> list[str]:
    if not email:
        return [_missing("email")]
    if not is_valid_email(email):
        return ["Invalid email format"]
    return []


def _timestamp_problems(field: str, value: datetime | UnreadableValue | None, required: bool) -> list[str]:
    if value is None:
        return [_missing(field)] if required else []
    if isinstance(value, UnreadableValue):
        return [f"Invalid {field}: {value.reason}"]
    return []


def _status_problems(status: str | None) -> list[str]:
    if status is None:
        return [_missing("status")]
    if status not in ALLOWED_STATUSES:
        shown = status if len(status) <= 40 else status[:40] + "…"
        return [f"Invalid status '{shown}'"]
    return []


def _display_name_problems(display_name: str | None) -> list[str]:
    if display_name is None:
        return []
    try:
        display_name.encode("utf-8")
    except UnicodeEncodeError:
        return ["Invalid display_name: not valid Unicode"]
    return []


def field_problems(user: User) -> list[str]:
    """Every rule the user breaks but the profile's, in a stable order."""
    return [
        *_username_problems(user.username),
        *_email_problems(user.email),
        *_display_name_problems(user.display_name),
        *_timestamp_problems("created_at", user.created_at, required=True),
        *_timestamp_problems("updated_at", user.updated_at, required=False),
        *_status_problems(user.status),
    ]


def user_problems(user: User) -> list[str]:
    """Every rule the user breaks, in a stable order; empty when the user can be converted."""
    return field_problems(user) + profile_problems(user.profile)


def failure_text(user_id: int, reasons: list[str]) -> str:
    """The report's error line for one user: `User <id>: <reason>[; <reason>...]`."""
    return f"User {user_id}: {'; '.join(reasons)}"
