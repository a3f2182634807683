"""Middlewares: request ids and access logs, errors as JSON, bearer-token authentication."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Mapping

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from user_migration.domain.errors import DependencyUnavailable, MigrationError
from user_migration.entrypoints.http.auth import READ_SCOPE, Authenticator
from user_migration.entrypoints.http.errors import domain_error_response, error_response, http_error_response
from user_migration.entrypoints.http.metrics import MigrationMetrics
from user_migration.entrypoints.logs import fields, request_id

log = logging.getLogger(__name__)
access_log = logging.getLogger("user_migration.access")

_ACCEPTABLE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def _route_of(request: web.Request) -> str:
    route = request.match_info.route
    return route.resource.canonical if route.resource is not None else "unmatched"


def observe_requests(metrics: MigrationMetrics) -> Middleware:
    """Give every request an id (the caller's `X-Request-ID` when sensible), echo it, log one
    access line and count the request by route and status."""

    @web.middleware
    async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
        given = request.headers.get("X-Request-ID", "")
        current = given if _ACCEPTABLE_REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        token = request_id.set(current)
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            response.headers["X-Request-ID"] = current
            return response
        finally:
            elapsed = time.perf_counter() - started
            route = _route_of(request)
            metrics.http_requests.labels(route, request.method, str(status)).inc()
            metrics.http_seconds.labels(route).observe(elapsed)
            access_log.info(
                "request",
                extra=fields(
                    method=request.method,
                    path=request.path,
                    route=route,
                    status=status,
                    duration_ms=round(elapsed * 1000, 1),
                    remote=request.remote,
                ),
            )
            request_id.reset(token)

    return observe


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error leaves as JSON; an unexpected one is logged with its trace, never sent."""
    try:
        return await handler(request)
    except MigrationError as error:
        if isinstance(error, DependencyUnavailable):
            log.warning("dependency unavailable", extra=fields(error=error.code, detail=str(error)))
        return domain_error_response(error)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        return http_error_response(error)
    except Exception:
        log.exception("unexpected error", extra=fields(method=request.method, path=request.path))
        return error_response(500, "internal_error", "the server failed to handle the request")


def bearer_auth(authenticator: Authenticator, scopes: Mapping[str, str | None]) -> Middleware:
    """Accept only `Authorization: Bearer <token>` that the authenticator accepts (401 otherwise),
    holding the scope the route needs (403 otherwise). `scopes` maps each path to its scope, None
    for a public one; any other path (unknown ones included) needs read access, so that an
    anonymous caller learns nothing about which paths exist."""

    @web.middleware
    async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
        needed = scopes.get(request.path, READ_SCOPE)
        if needed is None:
            return await handler(request)
        scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
        caller = (
            authenticator.authenticate(presented.strip()) if scheme.lower() == "bearer" and presented.strip() else None
        )
        if caller is None:
            return error_response(
                401,
                "unauthorized",
                "a valid bearer token is required (Authorization: Bearer <token>)",
                headers={"WWW-Authenticate": 'Bearer realm="user-migration"'},
            )
        if not caller.may(needed):
            return error_response(
                403,
                "forbidden",
                f"the token does not grant the scope {needed}",
                headers={
                    "WWW-Authenticate": f'Bearer realm="user-migration", error="insufficient_scope", scope="{needed}"'
                },
            )
        return await handler(request)

    return authenticate


def setup_middlewares(
    app: web.Application, authenticator: Authenticator, metrics: MigrationMetrics, scopes: Mapping[str, str | None]
) -> None:
    """Observation outermost, so that the access log and the metrics see every final status;
    then JSON errors, so that everything inside, auth included, answers in JSON; auth before
    routing, so that unknown paths do not tell an anonymous caller what exists."""
    app.middlewares.extend([observe_requests(metrics), json_errors, bearer_auth(authenticator, scopes)])
