"""Middlewares: errors as JSON, and bearer-token authentication."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Iterable

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from domain.errors import MigrationError
from entrypoints.web_errors import domain_error_response, error_response, http_error_response

log = logging.getLogger(__name__)

PUBLIC_PATHS: frozenset[str] = frozenset()


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error leaves as JSON; an unexpected one is logged with its trace, never sent."""
    try:
        return await handler(request)
    except MigrationError as error:
        if error.code.endswith("unavailable") or error.code.endswith("throttled"):
            log.warning("dependency unavailable: %s", error)
        return domain_error_response(error)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        return http_error_response(error)
    except Exception:
        log.exception("unexpected error on %s %s", request.method, request.path)
        return error_response(500, "internal_error", "the server failed to handle the request")


def bearer_auth(tokens: Iterable[str]) -> Middleware:
    """Accept only `Authorization: Bearer <token>` with one of `tokens`, compared in constant time."""
    accepted = [token.encode() for token in tokens]

    def is_accepted(presented: bytes) -> bool:
        # Compare against every token, so the time taken does not tell which one nearly matched.
        matched = False
        for token in accepted:
            matched |= hmac.compare_digest(presented, token)
        return matched

    @web.middleware
    async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in PUBLIC_PATHS:
            return await handler(request)
        scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not presented.strip() or not is_accepted(presented.strip().encode()):
            return error_response(
                401,
                "unauthorized",
                "a valid bearer token is required (Authorization: Bearer <token>)",
                headers={"WWW-Authenticate": 'Bearer realm="user-migration"'},
            )
        return await handler(request)

    return authenticate


def setup_middlewares(app: web.Application, tokens: Iterable[str]) -> None:
    """JSON errors outermost, so that everything inside, auth included, answers in JSON; auth
    before routing, so that unknown paths do not tell an anonymous caller what exists."""
    app.middlewares.extend([json_errors, bearer_auth(tokens)])
