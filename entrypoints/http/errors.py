"""JSON error responses: `{"error": "<code>", "message": "<what is wrong>"}`."""

from __future__ import annotations

from aiohttp import web

from user_migration.domain.errors import (
    DependencyUnavailable,
    InvalidParameter,
    MigrationError,
    SetupError,
    UserNotFound,
)


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON error body with the given HTTP status."""
    return web.json_response({"error": code, "message": message}, status=status, headers=headers)


def domain_error_response(error: MigrationError) -> web.Response:
    """The HTTP answer to a domain error."""
    if isinstance(error, InvalidParameter):
        return error_response(400, error.code, error.message)
    if isinstance(error, UserNotFound):
        return error_response(404, error.code, str(error))
    if isinstance(error, SetupError):  # the operator's set-up (a missing table, a mapping): 409 naming what to fix
        return error_response(409, error.code, str(error))
    if isinstance(error, DependencyUnavailable):
        return error_response(503, error.code, str(error), headers={"Retry-After": "5"})
    return error_response(500, "internal_error", "the migration failed unexpectedly")


_HTTP_CODES = {
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "request_too_large",
}


def http_error_response(error: web.HTTPException) -> web.Response:
    """aiohttp's own HTTP errors (unknown path, wrong method, ...) as JSON."""
    code = _HTTP_CODES.get(error.status, "http_error")
    headers = {name: value for name, value in error.headers.items() if name in ("Allow", "WWW-Authenticate")}
    return error_response(error.status, code, error.reason, headers=headers)
