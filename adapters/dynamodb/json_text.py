"""The C core of the standard library's JSON encoder, made once for a fixed set of options.

`json.JSONEncoder.encode` (and `json.dumps` with any option) builds its C encoder again at every
call; a caller that encodes many small values with the same options saves that by keeping one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from json import encoder
from typing import Any

CEncoder = Callable[[Any, int], Iterable[str]]


def c_encoder(default: Callable[[Any], Any]) -> CEncoder | None:
    """What `JSONEncoder(sort_keys=True, separators=(",", ":"), default=default)` runs for
    `encode` (ASCII output, NaN allowed), without its check for circular values; None where the
    interpreter has no C encoder (then use the `JSONEncoder`)."""
    make = getattr(encoder, "c_make_encoder", None)
    if make is None:
        return None
    try:
        built: CEncoder = make(None, default, encoder.encode_basestring_ascii, None, ":", ",", True, False, True)
    except TypeError:  # another interpreter's signature
        return None
    return built
