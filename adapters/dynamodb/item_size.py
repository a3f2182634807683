"""DynamoDB's item-size rules applied to items in its wire format, and the write units they cost.

See the DynamoDB developer guide, "Item sizes" and "Read/write capacity mode". The domain sizes a
prepared user from its values (`domain.convert.rules`); these size what DynamoDB holds or is sent.
"""

from __future__ import annotations

from typing import Any, TypeAlias

from user_migration.domain.budget.bucket import write_units_for
from user_migration.domain.convert.limits import number_bytes, text_bytes

# One DynamoDB attribute value in the low-level wire format, e.g. {"S": "alice"} or {"N": "42"}, and an item.
AttributeValue: TypeAlias = dict[str, Any]
Item: TypeAlias = dict[str, AttributeValue]


def attribute_value_bytes(value: AttributeValue) -> int:
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


def item_bytes(item: Item) -> int:
    """Size of a whole item: attribute names plus their values."""
    return sum(len(name.encode("utf-8")) + attribute_value_bytes(value) for name, value in item.items())


def write_units_of(item: Item) -> int:
    """The write units DynamoDB charges for putting or deleting `item` (a failed condition costs as much)."""
    return write_units_for(item_bytes(item))
