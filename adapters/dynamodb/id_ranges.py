"""Sets of user ids written compactly, as the state table stores them.

Integer ids: text of runs, `"1..1000,1002,1005..1010"`. A page's ids are mostly runs, so a hold's
intent of a thousand ids costs a few bytes instead of a list of a thousand numbers, which DynamoDB
(and moto far more) would parse, store and send back at every step of every page.

Uuid and text ids (strs) have no runs: they are bytes, for a binary (B) attribute. A first byte
says the form: `UUIDS` then 16 bytes an id when every id is a uuid in its canonical lowercase text
(a uuid key's ids always are; a text key's may be), `TEXTS` otherwise, then the ids in UTF-8
joined by NUL, which a PostgreSQL text cannot contain. A page of a thousand uuids is 16 KB stored
(21 KB in the request's base64) where the JSON list of their text was 38 KB (41 KB). Text written by
earlier versions for string ids, a JSON list (`["a0ee...", "b1..."]`), is still read.

An empty set is `""` whatever the key's kind.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

from user_migration.domain.keys import UserId

# The first byte of a set of string ids, saying its form.
UUIDS = b"\x01"
TEXTS = b"\x02"
_UUID_BYTES = 16
_SEPARATOR = "\x00"
# A uuid in its canonical text (what `str(uuid.UUID(...))` gives): every such text is one.
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def encode_ids(user_ids: Iterable[UserId]) -> str | bytes:
    """Integer ids, sorted and merged into runs: `lo..hi` for a run, `id` alone; `""` for none.
    Uuid and text ids (strs), sorted: bytes (see the module's text)."""
    unique = set(user_ids)
    texts = sorted(user_id for user_id in unique if isinstance(user_id, str))
    if texts:
        if len(texts) != len(unique):
            raise ValueError("user ids of two kinds in one set")
        return _encode_texts(texts)
    ordered = sorted(user_id for user_id in unique if isinstance(user_id, int))
    runs: list[str] = []
    start = 0
    while start < len(ordered):
        end = start
        while end + 1 < len(ordered) and ordered[end + 1] == ordered[end] + 1:
            end += 1
        runs.append(str(ordered[start]) if end == start else f"{ordered[start]}..{ordered[end]}")
        start = end + 1
    return ",".join(runs)


def _encode_texts(texts: list[str]) -> bytes:
    """Sorted string ids as bytes: 16 bytes a uuid when all are canonical uuids, UTF-8 joined by NUL otherwise."""
    if all(_CANONICAL_UUID.fullmatch(text) for text in texts):
        return UUIDS + bytes.fromhex("".join(texts).replace("-", ""))
    if any(_SEPARATOR in text for text in texts):
        raise ValueError("a text user id with a NUL character")
    return TEXTS + _SEPARATOR.join(texts).encode("utf-8")


def decode_ids(encoded: str | bytes) -> set[UserId]:
    """Reverse of `encode_ids` (and of the JSON list of string ids earlier versions wrote); raises
    ValueError on text or bytes it did not write."""
    if isinstance(encoded, bytes):
        return _decode_texts(encoded)
    if encoded.startswith("["):
        texts = json.loads(encoded)
        if not isinstance(texts, list) or not all(isinstance(each, str) for each in texts):
            raise ValueError(f"not a list of user ids: {encoded[:40]!r}")
        return set(texts)
    user_ids: set[UserId] = set()
    for run in filter(None, encoded.split(",")):
        lowest, separator, highest = run.partition("..")
        try:
            first = int(lowest)
            last = int(highest) if separator else first
        except ValueError:
            raise ValueError(f"not a run of user ids: {run!r}") from None
        if first > last:
            raise ValueError(f"not a run of user ids: {run!r}")
        user_ids.update(range(first, last + 1))
    return user_ids


def _decode_texts(encoded: bytes) -> set[UserId]:
    form, body = encoded[:1], encoded[1:]
    if form == UUIDS and body and len(body) % _UUID_BYTES == 0:
        digits = body.hex()
        return {
            f"{digits[at : at + 8]}-{digits[at + 8 : at + 12]}-{digits[at + 12 : at + 16]}-"
            f"{digits[at + 16 : at + 20]}-{digits[at + 20 : at + 32]}"
            for at in range(0, len(digits), 2 * _UUID_BYTES)
        }
    if form == TEXTS:
        try:
            return set(body.decode("utf-8").split(_SEPARATOR))
        except UnicodeDecodeError:
            pass
    raise ValueError(f"not a set of user ids: {encoded[:40]!r}")
