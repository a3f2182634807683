"""Checks that a user's profile is a JSON object DynamoDB can store exactly.

Most profiles are fine, so a quick pass that builds no paths decides first, converting the profile
into its attribute value on the way so that the write path walks a fine profile only once. Only a
profile that fails it is walked again, slowly, to say what is wrong and where.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from decimal import Decimal

from domain.dynamodb_rules import MAX_NESTING_LEVELS, MAX_SIGNIFICANT_DIGITS, number_bytes, number_problem, text_bytes
from domain.model import AttributeValue, JsonValue, UnreadableValue

_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MAX_PATH_CHARS = 120
# Every int below this in magnitude has at most 38 digits and is at least 1 (or 0): storable.
_SAFE_INT = 10**MAX_SIGNIFICANT_DIGITS


def _child_path(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    if _PLAIN_KEY.fullmatch(key):
        return f"{path}.{key}"
    shown = key if len(key) <= 40 else key[:40] + "…"
    return f"{path}[{shown!r}]"


def _shown(path: str) -> str:
    return path if len(path) <= _MAX_PATH_CHARS else path[:_MAX_PATH_CHARS] + "…"


class LookCloser(Exception):
    """The quick pass cannot vouch for a value; only the slow walk can say if it is storable."""


def _text_size(text: str) -> int:
    try:
        return text_bytes(text)
    except UnicodeEncodeError:  # a lone surrogate
        raise LookCloser from None


def _is_unicode(text: str) -> bool:
    try:
        _text_size(text)
    except LookCloser:
        return False
    return True


def _int_value(value: int) -> tuple[AttributeValue, int]:
    if not -_SAFE_INT < value < _SAFE_INT:
        raise LookCloser
    text = str(value)
    return {"N": text}, number_bytes(text)


def _decimal_value(value: Decimal) -> tuple[AttributeValue, int]:
    text = str(value)
    # A text without exponent of at most 38 characters has at most 38 digits and a magnitude
    # DynamoDB stores: only other texts need the exact rule. (A context may write a small "e".)
    plain = len(text) <= MAX_SIGNIFICANT_DIGITS and "E" not in text and "e" not in text and value.is_finite()
    if not plain and number_problem(value) is not None:
        raise LookCloser
    return {"N": text}, number_bytes(text)


def _quick_value(value: JsonValue, depth: int) -> tuple[AttributeValue, int]:
    """The value as an attribute value and its size, when it is certainly storable."""
    # Exact types only (bool is an int; subclasses are left to the slow walk), most common first.
    if type(value) is str:
        return {"S": value}, len(value) if value.isascii() else _text_size(value)
    if type(value) is dict and depth <= MAX_NESTING_LEVELS:
        members = {}
        size = 3  # the map itself; then per member 1 byte, its key and its value
        for key, element in value.items():
            if type(key) is not str or key == "":
                raise LookCloser
            if type(element) is str and element.isascii():  # the most common member, without a call
                members[key] = {"S": element}
                element_size = len(element)
            else:
                members[key], element_size = _quick_value(element, depth + 1)
            size += 1 + (len(key) if key.isascii() else _text_size(key)) + element_size
        return {"M": members}, size
    if type(value) is int:
        return _int_value(value)
    if type(value) is Decimal:
        return _decimal_value(value)
    if value is None:
        return {"NULL": True}, 1
    if type(value) is bool:
        return {"BOOL": value}, 1
    if type(value) is list and depth <= MAX_NESTING_LEVELS:
        elements = []
        size = 3
        for element in value:
            converted, element_size = _quick_value(element, depth + 1)
            elements.append(converted)
            size += 1 + element_size
        return {"L": elements}, size
    raise LookCloser


def storable_profile(profile: JsonValue | UnreadableValue) -> tuple[AttributeValue, int] | None:
    """A profile that is certainly storable, as its attribute value and size (None: no profile).

    This is the quick pass: one walk that checks and converts. It raises `LookCloser` for
    anything it cannot vouch for; `profile_problems` then says what, if anything, is wrong.
    """
    if profile is None:
        return None
    if type(profile) is not dict:
        raise LookCloser
    return _quick_value(profile, 1)


def _problems(value: JsonValue, path: str, depth: int) -> Iterator[str]:
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, str):
        if not _is_unicode(value):
            yield f"string is not valid Unicode at {_shown(path)}"
        return
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            yield f"{'NaN' if math.isnan(value) else 'Infinity'} at {_shown(path)}"
            return
        value = Decimal(repr(value))
    if isinstance(value, int):
        value = Decimal(value)
    if isinstance(value, Decimal):
        problem = number_problem(value)
        if problem is not None:
            yield f"{problem} at {_shown(path)}"
        return
    if isinstance(value, (dict, list)):
        if depth > MAX_NESTING_LEVELS:
            yield f"nesting deeper than {MAX_NESTING_LEVELS} levels at {_shown(path)}"
            return
        if isinstance(value, list):
            for index, element in enumerate(value):
                yield from _problems(element, _child_path(path, index), depth + 1)
            return
        for key, element in value.items():
            if not isinstance(key, str):
                yield f"key {key!r} is not a string at {_shown(path)}"
                continue
            if key == "":
                # DynamoDB attribute names, map keys included, must be at least one character.
                yield f"empty key at {_shown(path)}"
                continue
            if not _is_unicode(key):
                yield f"key is not valid Unicode at {_shown(path)}"
                continue
            yield from _problems(element, _child_path(path, key), depth + 1)
        return
    yield f"unsupported value of type {type(value).__name__} at {_shown(path)}"


def profile_problems(profile: JsonValue | UnreadableValue) -> list[str]:
    """Every reason the profile cannot be stored, as `Invalid profile: ...` texts."""
    if isinstance(profile, UnreadableValue):
        return [f"Invalid profile: {profile.reason}"]
    if profile is None:
        return []
    if not isinstance(profile, dict):
        return ["Invalid profile: must be a JSON object"]
    try:
        storable_profile(profile)
    except LookCloser:
        return [f"Invalid profile: {problem}" for problem in _problems(profile, "profile", 1)]
    return []
