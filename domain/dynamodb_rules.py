"""DynamoDB's documented limits that decide whether a value can be stored exactly.

See the DynamoDB developer guide, "Supported data types and naming rules" and "Item sizes".
"""

from __future__ import annotations

from decimal import Decimal

MAX_ITEM_BYTES = 400 * 1024
MAX_NESTING_LEVELS = 32
MAX_SIGNIFICANT_DIGITS = 38
# Positive numbers from 1E-130 to 9.9999999999999999999999999999999999999E+125 (same for
# negatives); anything at or beyond 1E+126 in magnitude cannot be stored.
SMALLEST_MAGNITUDE = Decimal("1E-130")
MAGNITUDE_CEILING = Decimal("1E+126")


def significant_digits(number: Decimal) -> int:
    """Digits DynamoDB keeps for a finite number: leading and trailing zeros are trimmed."""
    # Decimal.normalize() would round to the context's precision: count the digits by hand.
    digits = "".join(map(str, number.as_tuple().digits)).strip("0")
    return max(len(digits), 1)


def number_problem(number: Decimal) -> str | None:
    """Why DynamoDB cannot store `number` exactly, or None when it can."""
    if number.is_nan():
        return "NaN is not a number DynamoDB can store"
    if number.is_infinite():
        return "Infinity is not a number DynamoDB can store"
    digits = significant_digits(number)
    if digits > MAX_SIGNIFICANT_DIGITS:
        return f"number has {digits} significant digits (max {MAX_SIGNIFICANT_DIGITS})"
    magnitude = number.copy_abs()  # abs() would round to the context's precision
    if not number.is_zero() and (magnitude < SMALLEST_MAGNITUDE or magnitude >= MAGNITUDE_CEILING):
        return "number is out of DynamoDB's range (1E-130..9.99E+125)"
    return None


def number_bytes(text: str) -> int:
    """Size of an N value: about one byte per two significant digits, plus one."""
    return (significant_digits(Decimal(text)) + 1) // 2 + 1


def attribute_value_bytes(value: dict[str, object]) -> int:
    """Size of one attribute value by DynamoDB's item-size rules (name not included)."""
    ((kind, payload),) = value.items()
    if kind == "S":
        assert isinstance(payload, str)
        return len(payload.encode("utf-8"))
    if kind == "N":
        assert isinstance(payload, str)
        return number_bytes(payload)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "L":
        assert isinstance(payload, list)
        # 3 bytes for the list itself, 1 byte of overhead per element.
        return 3 + sum(1 + attribute_value_bytes(element) for element in payload)
    if kind == "M":
        assert isinstance(payload, dict)
        return 3 + sum(
            1 + len(key.encode("utf-8")) + attribute_value_bytes(element) for key, element in payload.items()
        )
    raise ValueError(f"unsupported attribute type {kind!r}")


def item_bytes(item: dict[str, dict[str, object]]) -> int:
    """Size of a whole item: attribute names plus their values."""
    return sum(len(name.encode("utf-8")) + attribute_value_bytes(value) for name, value in item.items())
