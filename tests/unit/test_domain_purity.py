"""domain/ and ports/ stay free of I/O libraries and of the outer layers."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = {
    "aiohttp",
    "aiopg",
    "psycopg2",
    "aioboto3",
    "aiobotocore",
    "botocore",
    "boto3",
    "dependency_injector",
    "adapters",
    "entrypoints",
    "container",
    "socket",
    "requests",
}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize(
    "path",
    sorted((ROOT / "domain").rglob("*.py")) + sorted((ROOT / "ports").rglob("*.py")),
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_pure_layers_import_no_io_library(path):
    assert imported_modules(path) & FORBIDDEN == set()


def test_domain_models_do_not_import_ports():
    names = ("model.py", "mapping.py", "values.py", "rules.py", "timestamps.py", "request.py", "report.py")
    for name in names:
        assert "ports" not in imported_modules(ROOT / "domain" / name)
