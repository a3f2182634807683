"""Checks that a user's profile is a JSON object DynamoDB can store exactly.

Most profiles are fine, so a quick pass that builds no paths decides first; only a profile that
fails it is walked again, slowly, to say what is wrong and where.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from decimal import Decimal

from domain.dynamodb_rules import MAX_NESTING_LEVELS, MAX_SIGNIFICANT_DIGITS, number_problem
from domain.model import JsonValue

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


def _is_unicode(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _fine(value: JsonValue, depth: int) -> bool:
    """True when the value is certainly storable; False means: look closer."""
    kind = type(value)
    if isinstance(value, str):
        return _is_unicode(value)
    if value is None or kind is bool:
        return True
    if isinstance(value, int):
        return bool(-_SAFE_INT < value < _SAFE_INT)
    if isinstance(value, Decimal):
        return number_problem(value) is None
    if isinstance(value, dict) and depth <= MAX_NESTING_LEVELS:
        for key, element in value.items():
            if type(key) is not str or key == "" or not _is_unicode(key) or not _fine(element, depth + 1):
                return False
        return True
    if isinstance(value, list) and depth <= MAX_NESTING_LEVELS:
        for element in value:  # noqa: SIM110 - a loop is faster than all() over a generator here
            if not _fine(element, depth + 1):
                return False
        return True
    return False


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


def profile_problems(profile: JsonValue) -> list[str]:
    """Every reason the profile cannot be stored, as `Invalid profile: ...` texts."""
    if profile is None:
        return []
    if not isinstance(profile, dict):
        return ["Invalid profile: must be a JSON object"]
    if _fine(profile, 1):
        return []
    return [f"Invalid profile: {problem}" for problem in _problems(profile, "profile", 1)]
