"""`user-migration` as a process of its own: the console script, `python -m user_migration.entrypoints.cli`
and each worker process of `--workers N` start here."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import NoReturn

# dependency_injector, as it is imported, looks for pydantic-settings (and failing that, pydantic) to offer
# `Configuration.from_pydantic`, which this tool does not use. Where they are installed (a host's
# environment; this repository's dev tools bring them), loading them was 0.12 s of every command's start.
NOT_LOADED_AT_START = frozenset({"pydantic_settings", "pydantic"})


class _NotLoadedAtStart:
    """An import finder that answers "not installed" for `NOT_LOADED_AT_START` while the command's modules load."""

    @staticmethod
    def find_spec(name: str, path: Sequence[str] | None = None, target: ModuleType | None = None) -> ModuleSpec | None:
        if name in NOT_LOADED_AT_START:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


def run() -> NoReturn:
    """Load the command (without `NOT_LOADED_AT_START`; importable again once loaded), run it, exit with its code."""
    sys.meta_path.insert(0, _NotLoadedAtStart)
    try:
        from user_migration.entrypoints.cli.main import main
    finally:
        sys.meta_path.remove(_NotLoadedAtStart)
    sys.exit(main())
