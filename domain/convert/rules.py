"""The rules a source user must meet before it is written, and the prepared user it becomes.

Every problem of a user is collected, so that one report tells the operator all there is to fix.
Each attribute's rules come from the mapping (the documented rules by default); every value is
checked for what the target requires by the one walker (`domain.convert.values`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

import attrs

from user_migration.domain.convert.limits import MAX_ITEM_BYTES, integer_bytes, number_bytes, text_bytes
from user_migration.domain.convert.mapping import (
    DIGEST_BYTES,
    MIGRATED_AT,
    MIGRATION_VERSION,
    Rules,
    UserMapping,
    default_mapping,
)
from user_migration.domain.convert.timestamps import format_timestamp
from user_migration.domain.convert.values import LookCloser, checked_value, quick_value
from user_migration.domain.keys import UserId
from user_migration.domain.model import Json, PreparedUser, SourceUser, UnreadableValue, User, as_source_user

MAX_EMAIL_CHARS = 254
_WHITESPACE = re.compile(r"\s")


class Reason(str):
    """A failure reason: its text (as reports show it) and a stable `code` (as metrics count it),
    e.g. `Invalid username format` with code `invalid_username`."""

    code: str

    def __new__(cls, code: str, text: str) -> Reason:
        reason = super().__new__(cls, text)
        reason.code = code
        return reason


def reason_code(reason: str) -> str:
    """The code of a reason; a plain text (from an older report) is `other`."""
    return getattr(reason, "code", "other")


def missing(attribute: str) -> Reason:
    """`Missing required field '<attribute>'`."""
    return Reason(f"missing_{attribute}", f"Missing required field '{attribute}'")


def invalid(attribute: str, detail: str) -> Reason:
    """`Invalid <attribute><detail>`: detail is ` format`, `: ...` or ` '<value>'`."""
    return Reason(f"invalid_{attribute}", f"Invalid {attribute}{detail}")


def is_valid_email(email: str) -> bool:
    """One `@`, a non-empty local part, a domain with a dot, no whitespace, at most 254 chars."""
    if len(email) > MAX_EMAIL_CHARS or _WHITESPACE.search(email) or email.count("@") != 1:
        return False
    local, domain = email.split("@")
    return bool(local) and "." in domain


def _shown(value: str) -> str:
    return value if len(value) <= 40 else value[:40] + "…"


TextCheck = Callable[[str], "Reason | None"]


def _text_checks(attribute: str, rules: Rules) -> tuple[TextCheck, ...]:
    checks: list[TextCheck] = []
    if rules.pattern is not None:
        pattern = re.compile(rules.pattern)
        checks.append(lambda text: None if pattern.fullmatch(text) else invalid(attribute, " format"))
    if rules.email:
        checks.append(lambda text: None if is_valid_email(text) else invalid(attribute, " format"))
    if rules.max_length is not None:
        longest = rules.max_length
        checks.append(
            lambda text: None if len(text) <= longest else invalid(attribute, f": longer than {longest} characters")
        )
    if rules.allowed is not None:
        allowed = frozenset(rules.allowed)
        checks.append(lambda text: None if text in allowed else invalid(attribute, f" '{_shown(text)}'"))
    return tuple(checks)


@attrs.frozen
class _AttributeRules:
    name: str
    name_bytes: int
    required: bool
    json_object: bool
    text_checks: tuple[TextCheck, ...]


def _compiled(name: str, rules: Rules) -> _AttributeRules:
    return _AttributeRules(name, text_bytes(name), rules.required, rules.json_object, _text_checks(name, rules))


@attrs.frozen
class Rejection:
    """A user that cannot be migrated, with every reason."""

    user_id: UserId
    reasons: tuple[Reason, ...]


class UserPreparer:
    """Validates source users by a mapping's rules and prepares the valid ones for writing.

    The prepared attributes are the values in the row's order, then `migrated_at`; an absent
    value (SQL NULL) is omitted, an empty string kept as it is.
    """

    def __init__(self, mapping: UserMapping | None = None) -> None:
        self.mapping = mapping if mapping is not None else default_mapping()
        self._rules: dict[str, _AttributeRules] = {}
        for source in self.mapping.attributes:
            self._rules[source.name] = _compiled(source.name, self.mapping.rules_for(source.name))
        self._required = [rules for rules in self._rules.values() if rules.required]
        self._fixed_bytes = text_bytes(self.mapping.key_attribute) + len(MIGRATED_AT) + DIGEST_BYTES
        self._last_moment: datetime | None = None
        self._last_text = ""

    def _rules_of(self, name: str) -> _AttributeRules:
        rules = self._rules.get(name)
        if rules is None:  # a carried column: rules of its own name, if the mapping gives any
            rules = self._rules[name] = _compiled(name, self.mapping.rules_for(name))
        return rules

    def _moment_text(self, moment: datetime) -> str:
        # Every user of a batch shares one `migrated_at` object: its text is made once.
        if moment is not self._last_moment:
            self._last_moment, self._last_text = moment, format_timestamp(moment)
        return self._last_text

    def prepare_all(
        self, users: Sequence[SourceUser], migrated_at: datetime
    ) -> tuple[dict[UserId, tuple[str, ...]], list[PreparedUser]]:
        """Each user prepared: the reasons of those rejected, by id, and the prepared ones in order."""
        failures: dict[UserId, tuple[str, ...]] = {}
        prepared: list[PreparedUser] = []
        for user in users:
            outcome = self.prepare(user, migrated_at)
            if isinstance(outcome, Rejection):
                failures[user.id] = outcome.reasons
            else:
                prepared.append(outcome)
        return failures, prepared

    def prepare(self, user: SourceUser | User, migrated_at: datetime) -> PreparedUser | Rejection:
        """Validate one source user and, when it passes, prepare what will be written for it."""
        if not isinstance(user, SourceUser):
            user = as_source_user(user)
        problems: list[Reason] = []
        attributes: dict[str, object] = {}
        # The key as the item holds it: an integer as N, a uuid or text as S (its UTF-8 length).
        size = self._fixed_bytes + (number_bytes(str(user.id)) if isinstance(user.id, int) else text_bytes(user.id))
        values = user.values
        for name, value in values.items():
            rules = self._rules_of(name)
            if value is None or value == "":
                if rules.required:
                    problems.append(missing(name))
                elif value is not None:
                    attributes[name] = value
                    size += rules.name_bytes
                continue
            if type(value) is UnreadableValue:
                problems.append(invalid(name, f": {value.reason}"))
                continue
            if rules.json_object and not (type(value) is dict or (type(value) is Json and type(value.value) is dict)):
                problems.append(invalid(name, ": must be a JSON object"))
                continue
            if rules.text_checks:
                text = value if type(value) is str else str(value)
                for check in rules.text_checks:
                    if (problem := check(text)) is not None:
                        problems.append(problem)
            try:
                prepared, value_size = quick_value(value)
            except LookCloser:
                prepared, value_size, found = checked_value(value, name)
                if found:
                    # A problem of a plain value reads without its path ("Invalid score: NaN"); one
                    # inside a document keeps it ("Invalid profile: empty key at profile").
                    plain = not isinstance(value, (dict, list, Json))
                    problems.extend(invalid(name, f": {_detail(text, name) if plain else text}") for text in found)
                    continue
            attributes[name] = prepared
            size += rules.name_bytes + value_size
        for rules in self._required:
            if rules.name not in values:
                problems.append(missing(rules.name))
        if problems:
            return Rejection(user.id, tuple(problems))
        moment = self._moment_text(migrated_at)
        attributes[MIGRATED_AT] = moment
        size += len(moment)
        if user.version is not None:
            size += len(MIGRATION_VERSION) + integer_bytes(user.version)
        if size > MAX_ITEM_BYTES:
            return Rejection(
                user.id, (Reason("item_too_large", f"Item too large: {size} bytes (limit {MAX_ITEM_BYTES})"),)
            )
        return PreparedUser(user.id, attributes, size, user.version)


def _detail(problem: str, name: str) -> str:
    # A problem of the value itself reads without a path: "Invalid score: NaN", "Invalid name: not valid Unicode".
    suffix = f" at {name}"
    if problem.endswith(suffix):
        problem = problem[: -len(suffix)]
        if problem == "string is not valid Unicode":
            return "not valid Unicode"
    return problem


_DEFAULT = UserPreparer()


def prepare_user(user: SourceUser | User, migrated_at: datetime) -> PreparedUser | Rejection:
    """Validate and prepare one user by the documented layout's rules."""
    return _DEFAULT.prepare(user, migrated_at)


def user_problems(user: SourceUser | User) -> list[Reason]:
    """Every rule the user breaks under the documented layout, in a stable order."""
    prepared = _DEFAULT.prepare(user, datetime(2000, 1, 1))
    return list(prepared.reasons) if isinstance(prepared, Rejection) else []


def failure_text(user_id: UserId, reasons: Iterable[str]) -> str:
    """The report's error line for one user: `User <id>: <reason>[; <reason>...]`."""
    return f"User {user_id}: {'; '.join(reasons)}"
