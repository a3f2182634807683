"""The parameters of a verify, checked and typed: the id range of a whole run, and the query of
one HTTP page (`GET /m2/migration/verify?start_user_id=&batch_size=`)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import TYPE_CHECKING

import attrs

from user_migration.domain.errors import InvalidParameter
from user_migration.domain.keys import KeyKind, UserId
from user_migration.domain.migrate.request import DEFAULT_BATCH_SIZE, MAX_BATCH_SIZE, MAX_USER_ID, BatchRequest
from user_migration.domain.query import given_parameters, integer_parameter

if TYPE_CHECKING:
    from user_migration.domain.verify.verification import DifferenceCallback, VerifyProgressCallback

PAGE_PARAMETERS = ("start_user_id", "batch_size")


@attrs.frozen
class VerifyRange:
    """Verify the users with ids `start_user_id..end_user_id`, `batch_size` rows a page."""

    start_user_id: UserId = 0
    end_user_id: UserId = MAX_USER_ID
    batch_size: int = MAX_BATCH_SIZE

    def __attrs_post_init__(self) -> None:
        BatchRequest(self.start_user_id, self.batch_size)  # the same ranges, the same messages
        end = self.end_user_id
        if isinstance(self.start_user_id, str):
            if not isinstance(end, str) or end < self.start_user_id:
                raise InvalidParameter("end_user_id", "end_user_id must not be below start_user_id")
            return
        if isinstance(end, bool) or not isinstance(end, int) or not self.start_user_id <= end <= MAX_USER_ID:
            raise InvalidParameter(
                "end_user_id", f"end_user_id must be an integer between start_user_id and {MAX_USER_ID}"
            )


@attrs.frozen
class VerifyRequest:
    """Verify the rows and stored items with ids in `start_user_id..end_user_id` (the whole id space
    when None), `batch_size` rows a page. Each difference goes to `on_difference` once checked again,
    each page's progress to `on_progress`; `repair` writes missing items, replaces different ones not
    newer than their row and deletes extra items the migration wrote; `stop` ends it after the pages
    in hand. A worker of a verify pass (`VerifyWorker`) takes its ranges from its leases."""

    start_user_id: UserId | None = None
    end_user_id: UserId | None = None
    batch_size: int = MAX_BATCH_SIZE
    repair: bool = False
    on_difference: DifferenceCallback | None = None
    on_progress: VerifyProgressCallback | None = None
    stop: asyncio.Event | None = None


@attrs.frozen
class VerifyPageRequest:
    """Verify one keyset page: up to `batch_size` rows with `id >= start_user_id`."""

    start_user_id: UserId = 0
    batch_size: int = DEFAULT_BATCH_SIZE

    def __attrs_post_init__(self) -> None:
        BatchRequest(self.start_user_id, self.batch_size)


def plan_verify_page(query: Iterable[tuple[str, str]], kind: KeyKind = KeyKind.INTEGER) -> VerifyPageRequest:
    """Turn query parameters (name, value pairs, repeats kept) into a page request; an unknown or
    repeated parameter is an error, as on the migration endpoint."""
    given = given_parameters(query, PAGE_PARAMETERS)
    start = kind.parse("start_user_id", given["start_user_id"]) if "start_user_id" in given else kind.first
    size = integer_parameter("batch_size", given["batch_size"], 1, MAX_BATCH_SIZE) if "batch_size" in given else None
    return VerifyPageRequest(start, DEFAULT_BATCH_SIZE if size is None else size)
