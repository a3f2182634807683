"""Reading a mapping file (TOML, `MAPPING_FILE` or `--mapping FILE`) into the domain's mapping."""

from __future__ import annotations

import tomllib
from pathlib import Path

from domain.errors import MappingError
from domain.mapping import UserMapping, default_mapping, parse_mapping


def read_mapping(path: str | Path | None, default_table: str) -> tuple[UserMapping, list[str]]:
    """The mapping the file describes (the documented layout when there is no file), and every
    problem found in it; the problems name the file."""
    if path is None or str(path).strip() == "":
        return default_mapping(default_table), []
    where = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return default_mapping(default_table), [f"mapping file {where}: no such file"]
    except (OSError, UnicodeDecodeError) as error:
        return default_mapping(default_table), [f"mapping file {where}: cannot be read ({error})"]
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        return default_mapping(default_table), [f"mapping file {where}: not valid TOML ({error})"]
    try:
        return parse_mapping(document, origin=where, default_table=default_table), []
    except MappingError as error:
        return default_mapping(default_table), [f"mapping file {where}: {problem}" for problem in error.problems]
