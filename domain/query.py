"""Query parameters of the HTTP endpoints read into typed values, by the rules every endpoint shares.

A repeated or unknown parameter is an error, so that a mistyped `dryrun=true` never runs a real
migration; a number is digits only (no sign, no spaces, no exponent) within its range.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from user_migration.domain.errors import InvalidParameter

_DIGITS = re.compile(r"[0-9]{1,30}")
_TRUE = ("true", "1")
_FALSE = ("false", "0")


def given_parameters(query: Iterable[tuple[str, str]], allowed: tuple[str, ...]) -> dict[str, str]:
    """The query's (name, value) pairs as a dict; `InvalidParameter` for a name not `allowed` or given twice."""
    given: dict[str, str] = {}
    for name, value in query:
        if name not in allowed:
            shown = name if len(name) <= 40 else name[:40] + "…"
            raise InvalidParameter(shown, f"unknown parameter {shown!r} (expected one of {', '.join(allowed)})")
        if name in given:
            raise InvalidParameter(name, f"parameter {name!r} is given more than once")
        given[name] = value
    return given


def integer_parameter(parameter: str, text: str, lowest: int, highest: int) -> int:
    """`text` as an integer in `lowest..highest`; `InvalidParameter` naming `parameter` otherwise."""
    if not _DIGITS.fullmatch(text) or not lowest <= int(text) <= highest:
        raise InvalidParameter(parameter, f"{parameter} must be an integer between {lowest} and {highest}")
    return int(text)


def boolean_parameter(parameter: str, text: str) -> bool:
    """`text` as a boolean (true, false, 1, 0, any case); `InvalidParameter` naming `parameter` otherwise."""
    lowered = text.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise InvalidParameter(parameter, f"{parameter} must be one of true, false, 1, 0")
