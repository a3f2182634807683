"""The write budget's settings, CLI flags, wiring and metrics (no I/O: the harness's in-memory adapters)."""

from __future__ import annotations

import argparse

import pytest

from user_migration.container import resolve
from user_migration.domain.budget.bucket import TokenBucketBudget
from user_migration.entrypoints.cli.main import _with_budget_flags, build_parser, main
from user_migration.entrypoints.harness import InMemoryHarness
from user_migration.entrypoints.settings import ConfigurationError, load_settings

GOOD = {"DATABASE_URL": "postgresql://migrator:secret@db.internal:5432/app", "AWS_REGION": "eu-west-1"}


def test_no_budget_setting_means_unlimited():
    settings = load_settings(GOOD, purpose="library")
    assert (settings.max_write_units, settings.write_capacity_percent) == (None, None)
    assert load_settings({**GOOD, "MAX_WRITE_UNITS": "0"}, purpose="library").max_write_units is None


def test_the_budget_settings_reach_the_container():
    settings = load_settings({**GOOD, "MAX_WRITE_UNITS": "250"}, purpose="library")
    assert settings.container_config()["max_write_units"] == 250
    settings = load_settings({**GOOD, "WRITE_CAPACITY_PERCENT": "12.5"}, purpose="library")
    assert settings.container_config()["write_capacity_percent"] == 12.5


@pytest.mark.parametrize(
    ("variable", "text"),
    [("MAX_WRITE_UNITS", "-1"), ("MAX_WRITE_UNITS", "1.5"), ("MAX_WRITE_UNITS", "lots")]
    + [("WRITE_CAPACITY_PERCENT", text) for text in ("0", "101", "half", "nan")],
)
def test_a_bad_budget_setting_is_named(variable, text):
    with pytest.raises(ConfigurationError) as raised:
        load_settings({**GOOD, variable: text}, purpose="library")
    assert [problem for problem in raised.value.problems if problem.startswith(f"{variable} must be")]


def test_both_budget_settings_at_once_are_refused():
    with pytest.raises(ConfigurationError) as raised:
        load_settings({**GOOD, "MAX_WRITE_UNITS": "100", "WRITE_CAPACITY_PERCENT": "50"}, purpose="library")
    assert raised.value.problems == ["set either MAX_WRITE_UNITS or WRITE_CAPACITY_PERCENT, not both"]


@pytest.mark.parametrize(
    ("arguments", "flag"),
    [
        (["migrate", "--all", "--max-write-units", "-5"], "--max-write-units"),
        (["migrate", "--all", "--max-write-units", "many"], "--max-write-units"),
        (["sync", "--once", "--write-capacity-percent", "0"], "--write-capacity-percent"),
        (["verify", "--write-capacity-percent", "250"], "--write-capacity-percent"),
        (["verify", "--write-capacity-percent", "5", "--max-write-units", "10"], "--max-write-units"),
    ],
)
def test_a_bad_budget_flag_exits_2_naming_the_flag(arguments, flag, capsys):
    with pytest.raises(SystemExit) as raised:
        main(arguments)
    assert raised.value.code == 2
    assert f"argument {flag}" in capsys.readouterr().err


def test_only_the_writing_commands_take_the_budget_flags(capsys):
    with pytest.raises(SystemExit):
        main(["stats", "--max-write-units", "10"])
    assert "unrecognized arguments: --max-write-units" in capsys.readouterr().err


def test_a_budget_flag_overrides_both_budget_settings():
    parsed = build_parser().parse_args(["migrate", "--all", "--write-capacity-percent", "40"])
    environ = {"MAX_WRITE_UNITS": "100", "WRITE_CAPACITY_PERCENT": "10"}
    _with_budget_flags(parsed, environ)
    assert environ == {"WRITE_CAPACITY_PERCENT": "40"}
    untouched = {"MAX_WRITE_UNITS": "100"}
    _with_budget_flags(argparse.Namespace(), untouched)
    assert untouched == {"MAX_WRITE_UNITS": "100"}


async def test_the_harness_runs_with_an_unlimited_budget():
    harness = InMemoryHarness.with_users()
    container = harness.container()
    budget = await resolve(container.write_budget())
    assert isinstance(budget, TokenBucketBudget)
    assert not budget.limited
    await resolve(container.shutdown_resources())


async def test_metrics_show_the_units_spent_and_the_throttling_met(aiohttp_client):
    harness = InMemoryHarness.with_users()
    client = await aiohttp_client(await harness.app())
    metrics = await (await client.get("/metrics", headers={"Authorization": f"Bearer {harness.token}"})).text()
    assert "user_migration_write_units_spent_total 0.0" in metrics
    assert "user_migration_write_throttled_total 0.0" in metrics
    assert "user_migration_write_budget_units_per_second" not in metrics  # unlimited: no rate to show
