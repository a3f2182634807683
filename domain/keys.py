"""The source key's kind: an integer (as always), a uuid or a text, and what the migration needs of
it without asking PostgreSQL: reading an id from text, where the id space begins and ends, and the
least id after a given one (keyset paging's next start).

Ids are ordered as PostgreSQL orders the key: integers by value, uuids by their 16 bytes (which is
the order of their canonical lowercase text), texts by their bytes (`COLLATE "C"`: no collation
setting can change it). In Python, `str` comparison is the same order (UTF-8 keeps code point
order), so the domain compares ids as they are.
"""

from __future__ import annotations

import enum
import re
import uuid
from collections.abc import Iterable
from typing import TypeAlias

from user_migration.domain.errors import InvalidParameter

# A user id: `int` for an integer key, `str` (a uuid in canonical lowercase text, or a text) otherwise.
UserId: TypeAlias = int | str

MAX_INTEGER_ID = 2**63 - 1
FIRST_UUID = "00000000-0000-0000-0000-000000000000"
LAST_UUID = "ffffffff-ffff-ffff-ffff-ffffffffffff"
# The end of the text id space, as far as the migration goes: no real key starts with sixteen
# U+10FFFF (a noncharacter) code points. It is never sent to PostgreSQL as a bound (it means "no end").
TEXT_END = "\U0010ffff" * 16
# The least text after a text `s` is `s + "\x01"`: PostgreSQL's text cannot hold NUL, so nothing lies between.
_TEXT_SUCCESSOR = "\x01"
_DIGITS = re.compile(r"[0-9]{1,30}")
_UUID = re.compile(r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}")
# Longest text id taken from a request (DynamoDB's limit for a partition key value is 2048 bytes).
MAX_TEXT_ID_BYTES = 2048


class KeyKind(enum.Enum):
    """What kind of column the source key is."""

    INTEGER = "integer"
    UUID = "uuid"
    TEXT = "text"

    @classmethod
    def named(cls, name: str) -> KeyKind:
        """The kind a mapping file names (`integer`, `uuid`, `text`); ValueError for another name."""
        return cls(name.strip().lower())

    @property
    def first(self) -> UserId:
        """The least id of the kind's id space (integers start at 0: lower ids belong to the first segment)."""
        if self is KeyKind.INTEGER:
            return 0
        return FIRST_UUID if self is KeyKind.UUID else ""

    @property
    def last(self) -> UserId:
        """The greatest id of the kind's id space (for text: `TEXT_END`, meaning no end)."""
        if self is KeyKind.INTEGER:
            return MAX_INTEGER_ID
        return LAST_UUID if self is KeyKind.UUID else TEXT_END

    def after(self, user_id: UserId) -> UserId | None:
        """The least id greater than `user_id`, None when there is none (the end of the id space)."""
        if self is KeyKind.INTEGER:
            number = int(user_id)
            return number + 1 if number < MAX_INTEGER_ID else None
        text = str(user_id)
        if self is KeyKind.UUID:
            value = uuid.UUID(text).int
            return str(uuid.UUID(int=value + 1)) if value < uuid.UUID(LAST_UUID).int else None
        return text + _TEXT_SUCCESSOR if text < TEXT_END else None

    def before(self, user_id: UserId) -> UserId:
        """The greatest id less than `user_id`, which must be `after` of some id (a segment's end is the id
        before the next segment's start; a text segment starts just after an id, so that it has one)."""
        if self is KeyKind.INTEGER:
            return int(user_id) - 1
        text = str(user_id)
        if self is KeyKind.UUID:
            return str(uuid.UUID(int=uuid.UUID(text).int - 1))
        if not text.endswith(_TEXT_SUCCESSOR):
            raise ValueError(f"no text id just before {text!r}")
        return text.removesuffix(_TEXT_SUCCESSOR)

    @classmethod
    def of_first(cls, first: UserId) -> KeyKind:
        """The kind whose id space begins at `first` (a plan's first start tells its kind)."""
        if isinstance(first, int):
            return cls.INTEGER
        return cls.UUID if first == FIRST_UUID else cls.TEXT

    def holds(self, user_id: object) -> bool:
        """Whether `user_id` is an id of this kind (a bool is not an integer id)."""
        if self is KeyKind.INTEGER:
            return isinstance(user_id, int) and not isinstance(user_id, bool)
        return isinstance(user_id, str)

    def parse(self, parameter: str, text: str, lowest: int = 0) -> UserId:
        """An id given as text (a query parameter, a command-line value), checked for the kind;
        `InvalidParameter` naming `parameter` when it is not one. Integers must lie in
        `lowest..MAX_INTEGER_ID`; a uuid is taken in any case, with or without dashes."""
        if self is KeyKind.INTEGER:
            if not _DIGITS.fullmatch(text) or not lowest <= int(text) <= MAX_INTEGER_ID:
                raise InvalidParameter(
                    parameter, f"{parameter} must be an integer between {lowest} and {MAX_INTEGER_ID}"
                )
            return int(text)
        return self.check(parameter, text)

    def check(self, parameter: str, value: object) -> UserId:
        """An id of a non-integer kind given as a value (text or JSON), as the kind holds it: a uuid in its
        canonical lowercase text, a text as it is."""
        if self is KeyKind.UUID:
            if not isinstance(value, str) or not _UUID.fullmatch(value.strip()):
                raise InvalidParameter(parameter, f"{parameter} must be a uuid (e.g. {FIRST_UUID})")
            return str(uuid.UUID(value.strip()))
        if self is KeyKind.TEXT:
            if not isinstance(value, str) or "\x00" in value:
                raise InvalidParameter(parameter, f"{parameter} must be a text (without NUL characters)")
            if len(value.encode("utf-8", "surrogatepass")) > MAX_TEXT_ID_BYTES:
                raise InvalidParameter(parameter, f"{parameter} must be at most {MAX_TEXT_ID_BYTES} bytes long")
            return value
        if not self.holds(value):
            raise InvalidParameter(parameter, f"{parameter} must be an integer")
        return value  # type: ignore[return-value]  # an int, checked just above


def ids_within(user_ids: Iterable[UserId], lowest: UserId, highest: UserId) -> set[UserId]:
    """The ids of lowest..highest (ids of one kind)."""
    return {user_id for user_id in user_ids if lowest <= user_id <= highest}  # type: ignore[operator]  # one kind


def id_text(user_id: UserId) -> str:
    """An id as text (in messages and files): integers as digits, uuids and texts as they are."""
    return str(user_id)


def given_id(kind: KeyKind, option: str, value: int | str | None, lowest: int = 0) -> UserId | None:
    """An id given on the command line (`id_argument`) as an id of the key's `kind`: an integer key
    takes only an integer in `lowest..MAX_INTEGER_ID`; a uuid or text key takes the text as written
    (digits too: `"123"` is a text id). `InvalidParameter` naming `option` otherwise."""
    if value is None:
        return None
    if kind is KeyKind.INTEGER:
        if isinstance(value, str) or not lowest <= value <= MAX_INTEGER_ID:
            raise InvalidParameter(option, f"{option} must be an integer between {lowest} and {MAX_INTEGER_ID}")
        return value
    return kind.parse(option, str(value))
