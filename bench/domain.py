"""The domain's own cost, without any server: seconds to run, where `make bench` takes minutes.

    python -m bench.domain [USERS]

Prints three figures, µs per user, each the best of 7 rounds over USERS users (default 20,000)
taken a page of 1,000 at a time with the page's results kept until the next, as a migration does:

- `prepare` (domain cost): `domain.convert.rules.prepare_user` (validation and preparation, documented
  layout) of the benchmark's users (`bench.data`), handed over as `SourceUser`s as the PostgreSQL
  adapter does;
- `encode`: `adapters.dynamodb.codec.encode_user` of those prepared users, the DynamoDB item with
  its digest (work that was the domain's before `domain.conversion` was split);
- `mapping_20_columns`: `UserPreparer(mapping).prepare` of rows of 20 columns of mixed types under
  the mapping of `bench/wide_mapping.py`.
"""

from __future__ import annotations

import gc
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from bench import data, wide_mapping
from user_migration.adapters.dynamodb.codec import encode_user
from user_migration.domain.convert.rules import Rejection, UserPreparer, prepare_user
from user_migration.domain.model import PreparedUser, SourceUser, as_source_user

PAGE = 1000
ROUNDS = 7
KEY_ATTRIBUTE = "user_id"
WIDE_TARGET_US = 40.0


def per_user_us(step: Callable[[Any], Any], inputs: Sequence[Any], rounds: int = ROUNDS) -> float:
    """µs per input of `step`, a page of 1,000 at a time with the page's results kept until the
    next; the best of `rounds` (as timeit reports: whatever else the machine does only ever adds time)."""
    # The inputs stand for what the source adapter hands over a page at a time: keep them out of
    # the collector, which would otherwise count their walk as the measured cost.
    gc.collect()
    gc.freeze()
    timings = []
    try:
        for _ in range(rounds):
            started = time.perf_counter()
            for first in range(0, len(inputs), PAGE):
                results = [step(value) for value in inputs[first : first + PAGE]]
            timings.append((time.perf_counter() - started) / len(inputs) * 1e6)
            del results
    finally:
        gc.unfreeze()
    return min(timings)


def source_users(count: int) -> list[SourceUser]:
    """The benchmark's users 1..count as the PostgreSQL adapter hands them to the domain."""
    return [as_source_user(user) for user in data.users(1, count)]


def prepared(users: Sequence[SourceUser], preparer: Callable[[SourceUser, datetime], Any]) -> list[PreparedUser]:
    """Every user prepared; all the benchmark's users are valid."""
    migrated_at = datetime.now(UTC)
    result = []
    for user in users:
        outcome = preparer(user, migrated_at)
        assert not isinstance(outcome, Rejection), outcome
        result.append(outcome)
    return result


def domain_cost(users_count: int, rounds: int = ROUNDS) -> float:
    """µs per user of `prepare_user` over the benchmark's users."""
    users = source_users(users_count)
    prepared(users[:PAGE], prepare_user)  # all valid (a rejection would be cheaper: not measured)
    migrated_at = datetime.now(UTC)
    return per_user_us(lambda user: prepare_user(user, migrated_at), users, rounds)


def encode_cost(users_count: int, rounds: int = ROUNDS) -> float:
    """µs per user of `encode_user` of the benchmark's users, prepared beforehand."""
    users = prepared(source_users(users_count), prepare_user)
    return per_user_us(lambda user: encode_user(user, KEY_ATTRIBUTE), users, rounds)


def wide_mapping_cost(users_count: int, rounds: int = ROUNDS) -> float:
    """µs per user of `UserPreparer(mapping).prepare` of 20-column rows under `bench.wide_mapping`."""
    preparer = UserPreparer(wide_mapping.wide_mapping())
    users = wide_mapping.rows(1, users_count)
    prepared(users, preparer.prepare)
    migrated_at = datetime.now(UTC)
    return per_user_us(lambda user: preparer.prepare(user, migrated_at), users, rounds)


def measure(users_count: int) -> dict[str, float]:
    """The three figures, µs per user, and the sum of preparing and encoding a default user."""
    prepare_us = domain_cost(users_count)
    encode_us = encode_cost(users_count)
    return {
        "users": users_count,
        "prepare": prepare_us,
        "encode": encode_us,
        "prepare_plus_encode": prepare_us + encode_us,
        "mapping_20_columns": wide_mapping_cost(users_count),
    }


def main(arguments: Sequence[str]) -> int:
    users_count = int(arguments[0]) if arguments else 20_000
    figures = measure(users_count)
    print(f"best of {ROUNDS} rounds over {users_count:,} users, pages of {PAGE:,}; µs per user")
    print(f"prepare (domain cost, prepare_user, documented layout): {figures['prepare']:6.2f}")
    print(f"encode (encode_user, DynamoDB item + digest):           {figures['encode']:6.2f}")
    print(f"prepare + encode:                                        {figures['prepare_plus_encode']:6.2f}")
    wide = figures["mapping_20_columns"]
    met = "met" if wide <= WIDE_TARGET_US else "NOT met"
    print(f"mapping_20_columns (UserPreparer.prepare, 20 columns):   {wide:6.2f}  (target ≤ {WIDE_TARGET_US:g}: {met})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
