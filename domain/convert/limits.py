"""DynamoDB's documented limits that decide whether a value can be stored exactly.

See the DynamoDB developer guide, "Supported data types and naming rules" and "Item sizes".
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

MAX_ITEM_BYTES = 400 * 1024
MAX_NESTING_LEVELS = 32
MAX_SIGNIFICANT_DIGITS = 38
# Positive numbers from 1E-130 to 9.9999999999999999999999999999999999999E+125 (same for
# negatives); anything at or beyond 1E+126 in magnitude cannot be stored.
SMALLEST_MAGNITUDE = Decimal("1E-130")
MAGNITUDE_CEILING = Decimal("1E+126")


# Exponents (of the leading digit) of the smallest and largest magnitudes DynamoDB stores.
SMALLEST_EXPONENT = SMALLEST_MAGNITUDE.adjusted()
LARGEST_EXPONENT = MAGNITUDE_CEILING.adjusted() - 1


def significant_digits(number: Decimal) -> int:
    """Digits DynamoDB keeps for a finite number: leading and trailing zeros are trimmed."""
    # Decimal.normalize() would round to the context's precision: count the digits by hand.
    digits = number.as_tuple().digits
    end = len(digits)
    while end > 1 and digits[end - 1] == 0:
        end -= 1
    return end


def number_problem(number: Decimal) -> str | None:
    """Why DynamoDB cannot store `number` exactly, or None when it can."""
    if number.is_nan():
        return "NaN is not a number DynamoDB can store"
    if number.is_infinite():
        return "Infinity is not a number DynamoDB can store"
    digits = significant_digits(number)
    if digits > MAX_SIGNIFICANT_DIGITS:
        return f"number has {digits} significant digits (max {MAX_SIGNIFICANT_DIGITS})"
    # adjusted() is the exponent of the leading digit, exact (no rounding to the context).
    if not number.is_zero() and not SMALLEST_EXPONENT <= number.adjusted() <= LARGEST_EXPONENT:
        return "number is out of DynamoDB's range (1E-130..9.99E+125)"
    return None


def number_bytes(text: str) -> int:
    """Size of an N value: about one byte per two significant digits, plus one."""
    mantissa = text.lstrip("+-").partition("e")[0].partition("E")[0]
    digits = len(mantissa.replace(".", "").strip("0")) or 1
    return (digits + 1) // 2 + 1


def text_bytes(text: str) -> int:
    """UTF-8 length of a string (the size of an S value or of a name)."""
    return len(text) if text.isascii() else len(text.encode("utf-8"))


def attribute_value_bytes(value: dict[str, Any]) -> int:
    """Size of one attribute value by DynamoDB's item-size rules (name not included)."""
    # Plain loops, no generators: this runs for every value of every item.
    for kind, payload in value.items():
        if kind == "S":
            return text_bytes(payload)
        if kind == "N":
            return number_bytes(payload)
        if kind == "M":
            # 3 bytes for the map itself; per element 1 byte of overhead, its key and its value.
            total = 3
            for key, element in payload.items():
                total += 1 + text_bytes(key) + attribute_value_bytes(element)
            return total
        if kind == "L":
            total = 3
            for element in payload:
                total += 1 + attribute_value_bytes(element)
            return total
        if kind == "B":
            return len(payload)
        if kind in ("BOOL", "NULL"):
            return 1
        raise ValueError(f"unsupported attribute type {kind!r}")
    raise ValueError("an attribute value needs a type")


def item_bytes(item: dict[str, dict[str, Any]]) -> int:
    """Size of a whole item: attribute names plus their values."""
    return sum(len(name.encode("utf-8")) + attribute_value_bytes(value) for name, value in item.items())
