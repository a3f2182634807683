"""Who is calling: static bearer tokens (plain or SHA-256 hashed) and JWTs (HS256 or RS256).

Static tokens are compared by their SHA-256 digests in constant time, against every configured
token. A JWT must be signed with the one configured algorithm (so `alg: none` and algorithm
confusion are refused), must carry `exp`, and is checked for `nbf`, `iss` and `aud` when they
are configured. Scopes come from the `scope` claim (space-separated) or `scp` (a list).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

import attrs
import jwt

from user_migration.entrypoints.http.auth_rules import HASH_PREFIX, JwtRules

READ_SCOPE = "migration:read"
WRITE_SCOPE = "migration:write"
ALL_SCOPES = frozenset({READ_SCOPE, WRITE_SCOPE})


@attrs.frozen
class Caller:
    """An authenticated caller and what it may do."""

    kind: str  # "static_token" or "jwt"
    scopes: frozenset[str]

    def may(self, scope: str) -> bool:
        """Whether the caller holds `scope`; `migration:write` implies `migration:read`."""
        return scope in self.scopes or (scope == READ_SCOPE and WRITE_SCOPE in self.scopes)


def token_digest(token: str) -> bytes:
    """The SHA-256 digest of a token, as kept in memory and compared."""
    return hashlib.sha256(token.encode()).digest()


def digest_of_configured(entry: str) -> bytes:
    """A configured token: `sha256:<64 hex digits>` is a hash, anything else a plain token."""
    if entry.startswith(HASH_PREFIX):
        return bytes.fromhex(entry[len(HASH_PREFIX) :])
    return token_digest(entry)


def _scopes_of(claims: dict[str, object]) -> frozenset[str]:
    scope = claims.get("scope")
    listed = claims.get("scp")
    scopes: set[str] = set()
    if isinstance(scope, str):
        scopes.update(scope.split())
    if isinstance(listed, list):
        scopes.update(item for item in listed if isinstance(item, str))
    return frozenset(scopes)


class Authenticator:
    """Turns a presented bearer token into a `Caller`, or None when it is not acceptable."""

    def __init__(self, static_tokens: Iterable[str] = (), jwt_rules: JwtRules | None = None) -> None:
        self._digests = [digest_of_configured(entry) for entry in static_tokens]
        self._jwt = jwt_rules

    def authenticate(self, presented: str) -> Caller | None:
        """The caller behind `presented`, or None."""
        if self._jwt is not None and presented.count(".") == 2:
            return self._from_jwt(presented, self._jwt)
        digest = token_digest(presented)
        matched = False
        for known in self._digests:  # every one, so the time taken tells nothing
            matched |= hmac.compare_digest(digest, known)
        return Caller("static_token", ALL_SCOPES) if matched else None

    @staticmethod
    def _from_jwt(token: str, rules: JwtRules) -> Caller | None:
        try:
            claims = jwt.decode(
                token,
                rules.key,
                algorithms=[rules.algorithm],
                issuer=rules.issuer,
                audience=rules.audience,
                leeway=rules.leeway_seconds,
                options={"require": ["exp"], "verify_aud": rules.audience is not None},
            )
        except jwt.PyJWTError:
            return None
        return Caller("jwt", _scopes_of(claims))
