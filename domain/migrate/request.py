"""Batch planning: the query parameters of a migration request, checked and typed."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import TYPE_CHECKING

import attrs

from user_migration.domain.errors import InvalidParameter
from user_migration.domain.keys import KeyKind, UserId
from user_migration.domain.query import boolean_parameter, given_parameters, integer_parameter

if TYPE_CHECKING:
    from user_migration.domain.migrate.run import ProgressCallback

DEFAULT_BATCH_SIZE = 100
MAX_BATCH_SIZE = 1000
MAX_USER_ID = 2**63 - 1
PARAMETERS = ("batch_size", "start_user_id", "user_id", "dry_run", "rewrite")


def _check_range(parameter: str, value: int, lowest: int, highest: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lowest <= value <= highest:
        raise InvalidParameter(parameter, f"{parameter} must be an integer between {lowest} and {highest}")
    return value


def check_batch_size(value: int) -> int:
    """`value` as a batch size; `InvalidParameter` naming `batch_size` when it is not one."""
    return _check_range("batch_size", value, 1, MAX_BATCH_SIZE)


def _batch_size(_: object, __: object, value: int) -> None:
    check_batch_size(value)


def _start_user_id(_: object, __: object, value: UserId) -> None:
    if not isinstance(value, str):  # a uuid or text id was checked for its kind when it was read
        _check_range("start_user_id", value, 0, MAX_USER_ID)


def _user_id(_: object, __: object, value: UserId) -> None:
    if not isinstance(value, str):
        _check_range("user_id", value, 1, MAX_USER_ID)


def _dry_run(_: object, __: object, value: bool) -> None:
    if not isinstance(value, bool):
        raise InvalidParameter("dry_run", "dry_run must be true or false")


def _rewrite(_: object, __: object, value: bool) -> None:
    if not isinstance(value, bool):
        raise InvalidParameter("rewrite", "rewrite must be true or false")


@attrs.frozen
class BatchRequest:
    """Migrate up to `batch_size` users with ids from `start_user_id` upwards (for a uuid or text key,
    `start_user_id` is a str; the first batch of a run starts at the kind's first id)."""

    start_user_id: UserId = attrs.field(default=0, validator=_start_user_id)
    batch_size: int = attrs.field(default=DEFAULT_BATCH_SIZE, validator=_batch_size)
    dry_run: bool = attrs.field(default=False, validator=_dry_run)
    # Rewrite items the migration wrote earlier and nobody changed since (after a mapping fix).
    rewrite: bool = attrs.field(default=False, validator=_rewrite)


@attrs.frozen
class SingleUserRequest:
    """Migrate exactly one user, e.g. to retry a failure after its row was fixed."""

    user_id: UserId = attrs.field(validator=_user_id)
    dry_run: bool = attrs.field(default=False, validator=_dry_run)
    rewrite: bool = attrs.field(default=False, validator=_rewrite)


MigrationRequest = BatchRequest | SingleUserRequest


@attrs.frozen
class RunRequest:
    """A run over the whole source (`migrate --all`): `batch_size` users a page from `start_user_id`
    (the beginning when None) or, with `resume`, from the checkpoint the last run recorded. Each page's
    progress goes to `on_progress`; setting `stop` ends the run cleanly after the pages in hand.
    `rewrite` also rewrites the items the migration wrote in an earlier run (so that a corrected
    mapping reaches them), never an item someone else wrote or changed since."""

    batch_size: int = MAX_BATCH_SIZE
    start_user_id: UserId | None = None
    dry_run: bool = False
    resume: bool = False
    on_progress: ProgressCallback | None = None
    stop: asyncio.Event | None = None
    rewrite: bool = False

    def __attrs_post_init__(self) -> None:
        if self.resume and self.start_user_id is not None:
            raise InvalidParameter("start_user_id", "start_user_id and resume cannot be combined")


def plan_batch(query: Iterable[tuple[str, str]], kind: KeyKind = KeyKind.INTEGER) -> MigrationRequest:
    """Turn query parameters (name, value pairs, repeats kept) into a request, ids read as the key's `kind`.

    A repeated or unknown parameter is an error, so that a mistyped `dryrun=true` never runs a
    real migration. `user_id` overrides the batch parameters, which are still checked.
    """
    given = given_parameters(query, PARAMETERS)
    dry_run = boolean_parameter("dry_run", given["dry_run"]) if "dry_run" in given else False
    rewrite = boolean_parameter("rewrite", given["rewrite"]) if "rewrite" in given else False
    batch_size = (
        integer_parameter("batch_size", given["batch_size"], 1, MAX_BATCH_SIZE)
        if "batch_size" in given
        else DEFAULT_BATCH_SIZE
    )
    start_user_id = kind.parse("start_user_id", given["start_user_id"]) if "start_user_id" in given else kind.first
    if "user_id" in given:
        return SingleUserRequest(kind.parse("user_id", given["user_id"], lowest=1), dry_run, rewrite)
    return BatchRequest(start_user_id, batch_size, dry_run, rewrite)
