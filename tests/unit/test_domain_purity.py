"""domain/ and ports/ stay free of I/O libraries, of the outer layers and of DynamoDB's wire format."""

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
    "socket",
    "requests",
}
# DynamoDB's attribute type tags ({"S": ...}, {"N": ...}): the target's wire format is the adapter's.
TYPE_TAGS = {"S", "N", "B", "SS", "NS", "BS", "M", "L", "NULL", "BOOL"}
# The outer layers, by the import name the project installs under.
OUTER = {"user_migration.adapters", "user_migration.entrypoints", "user_migration.container"}


def imported_modules(path: Path) -> set[str]:
    """Every module `path` imports, with each of its parents (`a.b.c` gives `a`, `a.b`, `a.b.c`)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    modules: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.add(node.module)
    return {".".join(module.split(".")[:depth]) for module in modules for depth in range(1, module.count(".") + 2)}


@pytest.mark.parametrize(
    "path",
    sorted((ROOT / "domain").rglob("*.py")) + sorted((ROOT / "ports").rglob("*.py")),
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_pure_layers_import_no_io_library(path):
    assert imported_modules(path) & (FORBIDDEN | OUTER) == set()


@pytest.mark.parametrize(
    "path",
    sorted((ROOT / "domain").rglob("*.py")) + sorted((ROOT / "ports").rglob("*.py")),
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_pure_layers_speak_no_dynamodb_type_tags(path):
    """No string in domain/ or ports/ is a DynamoDB type tag: they speak of versions and users, not items."""
    assert type_tags(path.read_text()) == []


def type_tags(source: str) -> list[tuple[int, str]]:
    """The DynamoDB type tags among the string constants of `source`, with their lines."""
    tree = ast.parse(source)
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and node.value in TYPE_TAGS
    ]


def test_the_tag_check_sees_a_type_tag():
    assert type_tags('def version(item):\n    return int(item["version"]["N"])') == [(2, "N")]


def test_the_layers_are_imported_by_the_project_s_own_name():
    """A bare `domain` or `adapters` import would find a host service's package of that name."""
    bare = {"domain", "ports", "adapters", "entrypoints", "container"}
    folders = ("domain", "ports", "adapters", "entrypoints", "tests", "bench")
    paths = [
        ROOT / "container.py",
        *(path for folder in folders for path in sorted((ROOT / folder).rglob("*.py"))),
    ]
    assert len(paths) > 200
    for path in paths:
        assert imported_modules(path) & bare == set(), path


def test_domain_models_do_not_import_ports():
    names = ("model.py", "convert/mapping.py", "convert/values.py", "convert/rules.py", "convert/timestamps.py")
    for name in (*names, "migrate/request.py", "migrate/report.py"):
        assert "user_migration.ports" not in imported_modules(ROOT / "domain" / name)
