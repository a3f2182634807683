"""PostgreSQL (pgserver) and AWS's DynamoDB Local for a bench of the offline mode, the source table seeded."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench import data
from tests.dynamodb_servers import DynamoDbLocal
from user_migration.entrypoints.demo.embedded import EmbeddedPostgres


@contextmanager
def seeded_servers(source_table: str, users: int) -> Iterator[tuple[str, str, int]]:
    """Both servers up, `users` users in `source_table`; yields (PostgreSQL's DSN, DynamoDB Local's
    URL, DynamoDB Local's process id) and stops both afterwards."""
    data.fake_aws()
    with tempfile.TemporaryDirectory(prefix="bench-offline-pg-") as folder:
        postgres = EmbeddedPostgres(Path(folder)).start()
        local = DynamoDbLocal().start()
        try:
            data.seed_source(postgres.dsn, source_table, users)
            assert local.pid is not None
            yield postgres.dsn, local.endpoint_url, local.pid
        finally:
            local.stop()
            postgres.stop()
