"""README.md and docs/*.md hold together: every relative link leads somewhere, every command parses.

Reads the Markdown files and nothing else (no servers, no network):

- every relative link or image (`[text](target)`, `![alt](target)`) outside code points to an
  existing file, and a `#anchor` (alone, or after a Markdown file) to a heading of that file,
  named by GitHub's rules: lowercase, spaces to `-`, punctuation other than `-` and `_` dropped,
  a repeated heading getting `-1`, `-2`, ...;
- every `user-migration ...` command in a ```bash / ```sh / ```shell block, and every `$ user-migration ...`
  line of a ```console block, is parsed by the real parser (`entrypoints.cli.main.build_parser()`):
  an unknown command, an unknown or shortened flag, a missing or malformed value fails.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import shlex
from pathlib import Path

import pytest

from user_migration.entrypoints.cli.main import build_parser

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
SHELL_BLOCKS = {"bash", "sh", "shell", "console"}
SHELL_OPERATORS = {"|", "||", "&&", ";", "&", ">", ">>", "<", "2>", "2>&1"}


def _name(page: Path) -> str:
    return str(page.relative_to(ROOT)) if page.is_relative_to(ROOT) else str(page)


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading's text."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip())  # a link in a heading keeps its text
    return re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")


def anchors(text: str) -> set[str]:
    """The anchors of a Markdown text's headings (outside code blocks)."""
    seen: dict[str, int] = {}
    found = set()
    for match in re.finditer(r"^#{1,6} +(.+?) *#*$", FENCE.sub("", text), re.MULTILINE):
        anchor = github_anchor(match.group(1))
        count = seen.get(anchor, 0)
        seen[anchor] = count + 1
        found.add(anchor if count == 0 else f"{anchor}-{count}")
    return found


def relative_links(text: str) -> list[str]:
    """The targets of the links and images outside code blocks and code spans, except URLs."""
    prose = re.sub(r"`[^`\n]*`", "", FENCE.sub("", text))
    targets = re.findall(r"\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)", prose)
    return [target for target in targets if not re.match(r"[A-Za-z][A-Za-z0-9+.-]*:", target)]


def broken_links(page: Path) -> list[str]:
    problems = []
    for target in relative_links(page.read_text()):
        path, _, anchor = target.partition("#")
        destination = (page.parent / path).resolve() if path else page
        if not destination.exists():
            problems.append(f"{_name(page)}: {target}: no such file")
        elif anchor and destination.suffix == ".md" and anchor not in anchors(destination.read_text()):
            problems.append(f"{_name(page)}: {target}: no heading with that anchor in {destination.name}")
    return problems


def commands(page: Path) -> list[str]:
    """The `user-migration` commands of a page's shell blocks, as written (comments included)."""
    found = []
    for block in FENCE.finditer(page.read_text()):
        language, body = block.group(1), block.group(2).replace("\\\n", " ")
        if language not in SHELL_BLOCKS:
            continue
        for line in body.splitlines():
            if language == "console":
                if not line.startswith("$ "):
                    continue  # a console block's other lines are output
                line = line[2:]
            if re.search(r"(^|[\s/])user-migration\s", line) and not line.lstrip().startswith("#"):
                found.append(line.strip())
    return found


def arguments(command: str) -> list[str]:
    """The words after `user-migration`, up to a comment or a shell operator."""
    words = list(shlex.shlex(command, posix=True, punctuation_chars=True))
    start = next(i for i, word in enumerate(words) if word == "user-migration" or word.endswith("/user-migration"))
    rest = words[start + 1 :]
    end = next((i for i, word in enumerate(rest) if word in SHELL_OPERATORS), len(rest))
    return rest[:end]


def exact_parser() -> argparse.ArgumentParser:
    """The real parser, taking only whole flags: a shortened `--end-user` is not a documented flag."""
    parser = build_parser()
    pending = [parser]
    while pending:
        current = pending.pop()
        current.allow_abbrev = False
        for action in current._actions:
            if isinstance(action, argparse._SubParsersAction):
                pending.extend(action.choices.values())
    return parser


def parse_problem(command: str) -> str | None:
    """Why the real parser refuses a command, or None when it takes it whole."""
    errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(errors), contextlib.redirect_stdout(io.StringIO()):
            _, unknown = exact_parser().parse_known_args(arguments(command))
    except SystemExit:
        return errors.getvalue().strip().splitlines()[-1] if errors.getvalue().strip() else "refused"
    return f"unrecognized arguments: {' '.join(unknown)}" if unknown else None


def test_the_pages_are_there():
    names = {page.name for page in PAGES}
    assert "README.md" in names, names
    assert len(PAGES) > 10, names
    front_door = (ROOT / "README.md").read_text()
    assert "make run" in front_door
    assert "make test" in front_door
    assert len(front_door.splitlines()) < 250


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_every_relative_link_leads_somewhere(page):
    assert broken_links(page) == []


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_every_command_example_parses(page):
    problems = [f"{command!r}: {problem}" for command in commands(page) if (problem := parse_problem(command))]
    assert problems == []


def test_the_commands_are_found():
    """The examples are really seen: a change to how pages are read cannot make the test above vacuous."""
    every = [command for page in PAGES for command in commands(page)]
    assert len(every) >= 20, every
    assert any("--changes logical" in command for command in every)
    assert arguments(".venv/bin/user-migration serve         # serves on 0.0.0.0:3000") == ["serve"]


def test_a_wrong_flag_or_link_is_caught(tmp_path):
    """The checks can fail: an unknown flag, a missing file and a missing anchor are each reported."""
    assert parse_problem("user-migration migrate --all") is None
    unknown = parse_problem("user-migration migrate --all --no-such-flag")
    assert unknown == "unrecognized arguments: --no-such-flag"
    assert parse_problem("user-migration no-such-command") is not None
    assert parse_problem("user-migration migrate --batch-size many") is not None
    assert parse_problem("user-migration verify --end-user 5") is not None  # shortened: argparse alone would take it
    assert parse_problem("user-migration cdc setup --no-such-flag") is not None
    page = tmp_path / "page.md"
    page.write_text("# Title\n\n## A `code` heading, with (punctuation)!\n\n[ok](#a-code-heading-with-punctuation)\n")
    assert broken_links(page) == []
    page.write_text("# Title\n\n[gone](missing.md) [no anchor](#nowhere) `[code](ignored.md)`\n")
    assert broken_links(page) == [
        f"{_name(page)}: missing.md: no such file",
        f"{_name(page)}: #nowhere: no heading with that anchor in page.md",
    ]


def test_the_front_door_links_every_page():
    linked = {target.partition("#")[0] for target in relative_links((ROOT / "README.md").read_text())}
    assert {f"docs/{page.name}" for page in PAGES[1:]} - linked == set()
