"""DYNAMODB_WRITE_PATH: how live-safe writes go out, validated like every other setting."""

from __future__ import annotations

import pytest

from user_migration.entrypoints.settings import ConfigurationError, load_settings

BASE = {"DATABASE_URL": "postgresql://u:p@localhost/db", "AWS_REGION": "us-east-1"}


@pytest.mark.parametrize(("given", "taken"), [(None, "auto"), ("partiql", "partiql"), ("PutItem", "putitem")])
def test_the_write_path_is_read(given, taken):
    environ = dict(BASE) if given is None else {**BASE, "DYNAMODB_WRITE_PATH": given}
    settings = load_settings(environ, purpose="library")
    assert settings.dynamodb_write_path == taken
    assert settings.container_config()["dynamodb_write_path"] == taken


def test_a_bad_write_path_is_named():
    with pytest.raises(ConfigurationError) as refused:
        load_settings({**BASE, "DYNAMODB_WRITE_PATH": "batches"}, purpose="library")
    assert "DYNAMODB_WRITE_PATH must be one of auto, partiql, putitem (got 'batches')" in str(refused.value)
