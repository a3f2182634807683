"""The target's documented limits that decide whether a value can be stored exactly, as data (DynamoDB's:
the domain computes sizes from prepared values; the wire format's sizes are `adapters.dynamodb.item_size`).

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


def integer_bytes(value: int) -> int:
    """`number_bytes` of an integer's text, without parsing one: its digits but trailing zeros."""
    digits = len(str(value).lstrip("-").rstrip("0")) or 1
    return (digits + 1) // 2 + 1


def text_bytes(text: str) -> int:
    """UTF-8 length of a string (the size of an S value or of a name)."""
    return len(text) if text.isascii() else len(text.encode("utf-8"))
