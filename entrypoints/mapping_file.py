"""Reading a mapping file (TOML, `MAPPING_FILE` or `--mapping FILE`) into the domain's mapping."""

from __future__ import annotations

import tomllib
from pathlib import Path

from user_migration.domain.convert.mapping import UserMapping, default_mapping, mapping_as_written


def read_mapping(path: str | Path | None, default_table: str) -> tuple[UserMapping, list[str]]:
    """The mapping the file describes (the documented layout when there is no file), and every
    problem found in it; the problems name the file.

    A file that is valid TOML gives its mapping even with problems: the parts that are right, and
    the file's problems in its `problems`, so that the source check can add its own
    (`PostgresUserSource` refuses such a mapping, naming them all). A file that cannot be read or
    is not TOML gives the documented layout and the problem.
    """
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
    mapping = mapping_as_written(document, origin=where, default_table=default_table)
    return mapping, [f"mapping file {where}: {problem}" for problem in mapping.problems]
