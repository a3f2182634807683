"""The one walker of values: is a source value storable exactly, what is it ready to be written,
and how large is it by the target's item-size rules.

Most values are fine, so a quick pass that builds no paths decides first (`quick_value`). Only a
value that fails it is walked again, slowly (`checked_value`), which converts what the quick pass
leaves alone (floats, subclasses, tuples) and says what is wrong, and where. Neither speaks any
target's wire format: the result is a `PreparedValue` (str, bool, int/Decimal, bytes, None, list,
dict), which a target's codec encodes.
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from user_migration.domain.convert.limits import (
    MAX_NESTING_LEVELS,
    MAX_SIGNIFICANT_DIGITS,
    integer_bytes,
    number_bytes,
    number_problem,
    text_bytes,
)
from user_migration.domain.convert.timestamps import format_timestamp
from user_migration.domain.model import Json, PreparedValue, SourceValue, UnreadableValue

_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MAX_PATH_CHARS = 120
# Every int below this in magnitude has at most 38 digits and is at least 1 (or 0): storable.
_SAFE_INT = 10**MAX_SIGNIFICANT_DIGITS


class LookCloser(Exception):
    """The quick pass cannot vouch for a value; only the slow walk can say if it is storable."""


def _text_size(text: str) -> int:
    try:
        return text_bytes(text)
    except UnicodeEncodeError:  # a lone surrogate
        raise LookCloser from None


def _decimal_size(value: Decimal) -> int:
    text = str(value)
    # A text without exponent of at most 38 characters has at most 38 digits and a magnitude
    # the target stores: only other texts need the exact rule. (A context may write a small "e".)
    plain = len(text) <= MAX_SIGNIFICANT_DIGITS and "E" not in text and "e" not in text and value.is_finite()
    if not plain and number_problem(value) is not None:
        raise LookCloser
    return number_bytes(text)


def quick_value(value: SourceValue, depth: int = 1) -> tuple[PreparedValue, int]:
    """The value ready to be written and its size, when it is certainly storable as it is."""
    # Exact types only (bool is an int; subclasses are left to the slow walk), most common first.
    kind = type(value)
    if kind is str:
        return value, len(value) if value.isascii() else _text_size(value)
    if kind is dict and depth <= MAX_NESTING_LEVELS:
        size = 3  # the map itself; then per member 1 byte, its key and its value
        for key, element in value.items():
            if type(key) is not str or key == "":
                raise LookCloser
            # The most common members (text, booleans, integers) without a call.
            member = type(element)
            if member is str and element.isascii():
                element_size = len(element)
            elif member is bool:
                element_size = 1
            elif member is int and -_SAFE_INT < element < _SAFE_INT:
                element_size = integer_bytes(element)
            else:
                converted, element_size = quick_value(element, depth + 1)
                if converted is not element:
                    raise LookCloser  # only the slow walk rebuilds a map
            size += 1 + (len(key) if key.isascii() else _text_size(key)) + element_size
        return value, size
    if kind is int:
        if not -_SAFE_INT < value < _SAFE_INT:
            raise LookCloser
        return value, integer_bytes(value)
    if kind is Json:
        return quick_value(value.value, depth)
    if kind is datetime:
        text = format_timestamp(value)
        return text, len(text)
    if kind is Decimal:
        return value, _decimal_size(value)
    if value is None:
        return None, 1
    if kind is bool:
        return value, 1
    if kind is bytes:
        return value, len(value)
    if kind is list and depth <= MAX_NESTING_LEVELS:
        size = 3
        elements = None
        for index, element in enumerate(value):
            if type(element) is str and element.isascii():  # text without a call
                converted, element_size = element, len(element)
            else:
                converted, element_size = quick_value(element, depth + 1)
            if converted is not element:
                if elements is None:
                    elements = list(value[:index])
                elements.append(converted)
            elif elements is not None:
                elements.append(converted)
            size += 1 + element_size
        return (value if elements is None else elements), size
    raise LookCloser


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
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class _Walk:
    """One slow walk: the converted value, its size, and every problem found on the way."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def value(self, value: Any, path: str, depth: int) -> tuple[PreparedValue, int]:
        if isinstance(value, Json):
            return self.value(value.value, path, depth)
        if value is None:
            return None, 1
        if isinstance(value, bool):
            return bool(value), 1
        if isinstance(value, str):
            if not _is_unicode(value):
                self.problems.append(f"string is not valid Unicode at {_shown(path)}")
                return None, 0
            return str(value), text_bytes(value)
        if isinstance(value, (bytes, bytearray, memoryview)):
            data = bytes(value)
            return data, len(data)
        if isinstance(value, datetime):
            text = format_timestamp(value)
            return text, len(text)
        if isinstance(value, date):
            text = value.isoformat()
            return text, len(text)
        if isinstance(value, UnreadableValue):
            self.problems.append(f"{value.reason} at {_shown(path)}")
            return None, 0
        if isinstance(value, (int, float, Decimal)):
            return self._number(value, path)
        if isinstance(value, (dict, list, tuple)):
            if depth > MAX_NESTING_LEVELS:
                self.problems.append(f"nesting deeper than {MAX_NESTING_LEVELS} levels at {_shown(path)}")
                return None, 0
            if isinstance(value, dict):
                return self._map(value, path, depth)
            elements = []
            size = 3
            for index, element in enumerate(value):
                converted, element_size = self.value(element, _child_path(path, index), depth + 1)
                elements.append(converted)
                size += 1 + element_size
            return elements, size
        self.problems.append(f"unsupported value of type {type(value).__name__} at {_shown(path)}")
        return None, 0

    def _number(self, value: int | float | Decimal, path: str) -> tuple[PreparedValue, int]:
        if isinstance(value, float):
            if math.isnan(value) or math.isinf(value):
                self.problems.append(f"{'NaN' if math.isnan(value) else 'Infinity'} at {_shown(path)}")
                return None, 0
            # repr() is the shortest text that reads back as the same float: the number as written.
            value = Decimal(repr(value))
        number = value if isinstance(value, Decimal) else Decimal(value)
        problem = number_problem(number)
        if problem is not None:
            self.problems.append(f"{problem} at {_shown(path)}")
            return None, 0
        exact: int | Decimal = int(value) if isinstance(value, int) else number
        return exact, number_bytes(str(exact))

    def _map(self, value: dict[Any, Any], path: str, depth: int) -> tuple[PreparedValue, int]:
        members = {}
        size = 3
        for key, element in value.items():
            if not isinstance(key, str):
                self.problems.append(f"key {key!r} is not a string at {_shown(path)}")
                continue
            if key == "":
                # Attribute names, map keys included, must be at least one character.
                self.problems.append(f"empty key at {_shown(path)}")
                continue
            if not _is_unicode(key):
                self.problems.append(f"key is not valid Unicode at {_shown(path)}")
                continue
            members[str(key)], element_size = self.value(element, _child_path(path, key), depth + 1)
            size += 1 + text_bytes(key) + element_size
        return members, size


def checked_value(value: SourceValue, path: str) -> tuple[PreparedValue, int, list[str]]:
    """The slow walk: the value ready to be written, its size, and every problem (with its path)."""
    walk = _Walk()
    prepared, size = walk.value(value, path, 1)
    return prepared, size, walk.problems
