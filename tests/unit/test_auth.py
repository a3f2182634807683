"""Static tokens (plain and hashed) and JWTs (HS256, RS256): who gets in, with which scopes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from user_migration.entrypoints.http.auth import ALL_SCOPES, READ_SCOPE, WRITE_SCOPE, Authenticator, Caller, JwtRules

SECRET = "a-shared-secret-of-at-least-32-bytes!"
NOW = int(time.time())


def hs256(claims: dict, secret: str = SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, secret, algorithm=algorithm)


def forge_hs256(claims: dict, key: bytes) -> str:
    """An HS256 token made by hand (PyJWT itself refuses to use a public key as an HMAC secret)."""

    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing_input = part(b'{"alg":"HS256","typ":"JWT"}') + "." + part(json.dumps(claims).encode())
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + part(signature)


@pytest.fixture(scope="module")
def rsa_keys() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


def test_plain_and_hashed_static_tokens():
    hashed = "sha256:" + hashlib.sha256(b"hashed-token").hexdigest()
    authenticator = Authenticator(["plain-token", hashed])
    assert authenticator.authenticate("plain-token") == Caller("static_token", ALL_SCOPES)
    assert authenticator.authenticate("hashed-token") == Caller("static_token", ALL_SCOPES)
    for wrong in ("", "plain-toke", "plain-token ", hashed, "PLAIN-TOKEN"):
        assert authenticator.authenticate(wrong) is None


def test_no_configured_token_lets_nobody_in():
    assert Authenticator([]).authenticate("anything") is None


RULES = JwtRules("HS256", SECRET, issuer="https://idp.example", audience="user-migration")
GOOD = {"exp": NOW + 86_400, "iss": "https://idp.example", "aud": "user-migration", "scope": "migration:read"}


def test_a_valid_jwt_carries_its_scopes():
    authenticator = Authenticator([], RULES)
    caller = authenticator.authenticate(hs256(GOOD))
    assert caller == Caller("jwt", frozenset({READ_SCOPE}))
    assert caller.may(READ_SCOPE)
    assert not caller.may(WRITE_SCOPE)
    writer = authenticator.authenticate(hs256({**GOOD, "scope": None, "scp": ["migration:write", 7]}))
    assert writer is not None
    assert writer.may(WRITE_SCOPE)
    assert writer.may(READ_SCOPE)  # write implies read


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(hs256({**GOOD, "exp": NOW - 120}), id="expired"),
        pytest.param(hs256({**GOOD, "nbf": NOW + 86_400}), id="not-yet-valid"),
        pytest.param(hs256({key: value for key, value in GOOD.items() if key != "exp"}), id="no-exp"),
        pytest.param(hs256({**GOOD, "iss": "https://evil.example"}), id="wrong-issuer"),
        pytest.param(hs256({**GOOD, "aud": "someone-else"}), id="wrong-audience"),
        pytest.param(hs256(GOOD, secret="another-secret-that-is-32-bytes-long"), id="wrong-key"),
        pytest.param(hs256(GOOD, secret=SECRET * 2, algorithm="HS512"), id="wrong-algorithm"),
        pytest.param(jwt.encode(GOOD, key=None, algorithm="none"), id="alg-none"),
        pytest.param(hs256(GOOD)[:-3] + "abc", id="tampered-signature"),
        pytest.param("a.b.c", id="garbage"),
    ],
)
def test_bad_jwts_are_refused(token):
    assert Authenticator(["static"], RULES).authenticate(token) is None


def test_rs256(rsa_keys):
    private, public = rsa_keys
    authenticator = Authenticator([], JwtRules("RS256", public))
    token = jwt.encode({"exp": int(time.time()) + 600, "scope": "migration:write"}, private, algorithm="RS256")
    caller = authenticator.authenticate(token)
    assert caller is not None
    assert caller.may(WRITE_SCOPE)
    # Algorithm confusion: an HS256 token signed with the public key as the secret is refused.
    confused = forge_hs256({"exp": int(time.time()) + 600, "scope": "migration:write"}, public.encode())
    assert authenticator.authenticate(confused) is None
    assert authenticator.authenticate(hs256({"exp": int(time.time()) + 600})) is None
