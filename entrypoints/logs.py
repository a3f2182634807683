"""Structured logs: one JSON object per line (or plain text), with the request id of the request
being handled. Log lines carry ids and counts only: never tokens, never user data beyond ids."""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal

from aiohttp.http_exceptions import HttpProcessingError

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)

LogFormat = Literal["json", "text"]


def fields(**values: Any) -> dict[str, Any]:
    """`extra=` for a log call whose structured fields should appear in the line."""
    return {"fields": values}


class JsonLines(logging.Formatter):
    """A log record as one JSON object: time, level, logger, message, request id, fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        current = request_id.get()
        if current is not None:
            line["request_id"] = current
        line.update(getattr(record, "fields", {}))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class PlainText(logging.Formatter):
    """Human-readable lines, fields appended as key=value."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        extra = getattr(record, "fields", {})
        current = request_id.get()
        pairs = ([f"request_id={current}"] if current else []) + [f"{key}={value}" for key, value in extra.items()]
        return f"{text} {' '.join(pairs)}" if pairs else text


class HideRefusedRequests(logging.Filter):
    """aiohttp logs a request it cannot parse (an oversized header, say) with a trace that quotes
    the raw bytes: perhaps an `Authorization` header. Keep the event, drop the bytes."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, HttpProcessingError):
            record.msg = "refused a request that could not be parsed (%s, status %s)"
            record.args = (type(error).__name__, error.code)
            record.exc_info = None
            record.exc_text = None
        return True


def hide_refused_requests() -> None:
    """Install `HideRefusedRequests` on aiohttp's server logger (once)."""
    server_log = logging.getLogger("aiohttp.server")
    if not any(isinstance(existing, HideRefusedRequests) for existing in server_log.filters):
        server_log.addFilter(HideRefusedRequests())


def configure_logging(level: str = "INFO", log_format: LogFormat = "json") -> None:
    """Send every log line to stderr in the chosen format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonLines() if log_format == "json" else PlainText("%(asctime)s %(levelname)s %(name)s %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
