"""The library installs under one name of its own, so it imports beside a host's `domain` package.

Hexagonal services commonly have top-level `domain`, `ports` or `adapters` packages; a distribution
that put ours at the top level of site-packages would shadow theirs (or be shadowed). The wheel is
built from the sources as `pip` would, and imported, unzipped, beside a host package named `domain`.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("setup.py", "pyproject.toml", "container.py", "domain", "ports", "adapters", "entrypoints")

HOST_SERVICE = textwrap.dedent(
    """
    import asyncio
    from datetime import UTC, datetime

    import domain  # the host's own
    from user_migration.domain.model import User
    from user_migration.entrypoints.harness import InMemoryHarness
    import user_migration.domain.model as ours

    assert domain.OWNER == "host", domain.__file__
    assert ours.__file__.startswith(SITE), ours.__file__


    async def main() -> None:
        alice = User(id=1, username="alice", email="a@example.com", created_at=datetime(2024, 1, 1, tzinfo=UTC))
        harness = InMemoryHarness.with_users([alice])
        async with harness.library() as migration:
            report = await migration.migrate_user(1)
        print("migrated", report.migrated_count, "stored", sorted(harness.target.items))


    asyncio.run(main())
    """
)


def build_wheel(into: Path) -> Path:
    source = into / "source"
    source.mkdir()
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(path, source / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(into), "."],
        cwd=source,
        check=True,
        capture_output=True,
    )
    (wheel,) = into.glob("user_migration-*.whl")
    return wheel


def test_the_wheel_holds_one_top_level_name_and_imports_beside_a_host_domain_package(tmp_path):
    wheel = build_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        top_level = {name.split("/")[0] for name in names}
        site = tmp_path / "site"
        archive.extractall(site)
    assert top_level == {"user_migration", wheel.name.split("-py3")[0] + ".dist-info"}
    for needed in ("user_migration/container.py", "user_migration/adapters/sql/schema.sql"):
        assert needed in names
    assert "user_migration/entrypoints/http/openapi.json" in names
    assert not any(name.startswith("user_migration/setup") for name in names)
    entry_points = (site / (wheel.name.split("-py3")[0] + ".dist-info") / "entry_points.txt").read_text()
    assert "user-migration = user_migration.entrypoints.cli.command:run" in entry_points

    host = tmp_path / "host"
    (host / "domain").mkdir(parents=True)
    (host / "domain" / "__init__.py").write_text('OWNER = "host"\n')
    result = subprocess.run(
        [sys.executable, "-c", f"SITE = {str(site)!r}\n{HOST_SERVICE}"],
        cwd=host,
        env={"PYTHONPATH": f"{host}:{site}", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "migrated 1 stored [1]"
