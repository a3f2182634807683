"""The command's own process: dependency_injector's optional pydantic lookup is answered "not installed"
while the command's modules load, and the packages can still be imported after."""

from __future__ import annotations

import subprocess
import sys

LOAD_THEN_IMPORT = """
import sys
sys.argv = ["user-migration", "--help"]
from user_migration.entrypoints.cli import command
try:
    command.run()
except SystemExit as stop:
    print("exit", stop.code)
print("loaded at start:", "pydantic" in sys.modules, "pydantic_settings" in sys.modules)
import pydantic_settings
print("importable after:", pydantic_settings.__name__)
"""


def test_the_command_loads_without_pydantic_and_leaves_it_importable() -> None:
    result = subprocess.run([sys.executable, "-c", LOAD_THEN_IMPORT], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "usage: user-migration" in result.stdout
    assert lines[-3:] == ["exit 0", "loaded at start: False False", "importable after: pydantic_settings"]
