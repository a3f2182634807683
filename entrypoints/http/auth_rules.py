"""What the settings say about callers, without the JWT library: the prefix of a hashed static token and
how JWTs are verified (`auth` checks them). Kept apart so that reading the settings, which every command
does, does not load PyJWT and cryptography (44 ms of a command's start)."""

from __future__ import annotations

import attrs

HASH_PREFIX = "sha256:"


@attrs.frozen
class JwtRules:
    """How JWTs are verified: the key, its algorithm, and the expected issuer and audience."""

    algorithm: str  # "HS256" or "RS256"
    key: str = attrs.field(repr=False)
    issuer: str | None = None
    audience: str | None = None
    leeway_seconds: int = 30
