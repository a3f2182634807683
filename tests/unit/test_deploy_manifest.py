"""The Kubernetes Job in `deploy/` runs a command this CLI accepts, with settings it knows."""

from __future__ import annotations

import json
import re
from pathlib import Path

from user_migration.entrypoints.cli.main import build_parser
from user_migration.entrypoints.settings import load_settings

MANIFEST = Path(__file__).parents[2] / "deploy" / "migrate-job.yaml"


def test_the_job_runs_each_pod_as_one_worker_of_the_run():
    text = MANIFEST.read_text()
    command = json.loads(re.search(r"command: (\[.*\])", text).group(1))
    assert command[0] == "user-migration"
    arguments = build_parser().parse_args(command[1:])
    assert (arguments.all, arguments.workers) == (True, 1)


def test_the_jobs_environment_is_valid_settings():
    text = MANIFEST.read_text()
    values = dict(re.findall(r"\{name: (\w+), value: \"?([^\"}]+)\"?\}", text))
    assert {"AWS_REGION", "WRITE_CAPACITY_PERCENT", "SEGMENT_LEASE_SECONDS"} <= set(values)
    settings = load_settings({**values, "DATABASE_URL": "postgresql://migrator@db.internal/app"}, purpose="library")
    assert settings.write_capacity_percent == 30
    assert settings.segment_lease_seconds == 10
