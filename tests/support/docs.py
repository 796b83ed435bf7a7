"""The fenced code blocks of README.md and docs/*.md, and how each is marked for the docs test.

Every shell or Python block carries a marker on the line before its fence (blank lines
between are allowed):

- ``<!-- docs-test: run -->``: tests/integration/test_docs.py runs it, in page order, from
  a fresh copy of the checkout (docs/testing.md, "The docs test");
- ``<!-- docs-test: example (REASON) -->``: shown, not run; REASON says why (needs AWS,
  needs a GPU, needs Docker, a synopsis, placeholders, ...).

Other blocks (``json``, ``text``, ``protobuf``, ...) are not programs and need no marker, but
every fence names its language, so that an unlabelled shell block cannot slip by.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: Languages that are programs: each such block must be marked.
SHELL = frozenset({"bash", "sh", "shell", "console"})
PYTHON = frozenset({"python", "py", "python3"})
RUN, EXAMPLE = "run", "example"
_FENCE = re.compile(r"^(?P<indent> *)(?P<fence>```+|~~~+)(?P<info>.*)$")
_MARKER = re.compile(
    r"^\s*<!--\s*docs-test:\s*(?P<kind>[a-z]+)\s*(?:\((?P<reason>[^)]*)\))?\s*-->\s*$"
)


@dataclass(frozen=True)
class Block:
    """One fenced block: where it is, its language, its text and its marker (if any)."""

    page: Path
    line: int  # the fence's line, 1-based
    language: str
    text: str
    marker: str | None  # "run", "example", or None
    reason: str = ""

    @property
    def program(self) -> bool:
        """Whether it is a shell or Python block (which must be marked)."""
        return self.language in SHELL | PYTHON

    @property
    def where(self) -> str:
        """``docs/page.md:LINE``, for messages."""
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def pages(root: Path = ROOT) -> list[Path]:
    """README.md, then every page of docs/ (not docs/results/, which commands write)."""
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def blocks(page: Path) -> list[Block]:
    """Every fenced block of ``page``, in order, with the marker before it."""
    lines = page.read_text(encoding="utf-8").splitlines()
    found, index = [], 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        end = _closing(lines, index, opening.group("fence"))
        body = [line.removeprefix(opening.group("indent")) for line in lines[index + 1 : end]]
        kind, reason = _marker(lines, index)
        language = opening.group("info").strip().split(" ")[0].lower()
        found.append(Block(page, index + 1, language, "\n".join(body), kind, reason))
        index = end + 1
    return found


def _closing(lines: list[str], start: int, fence: str) -> int:
    """The index of the line closing the fence opened at ``start`` (or the last line)."""
    for index in range(start + 1, len(lines)):
        stripped = lines[index].strip()
        if stripped and set(stripped) == {fence[0]} and len(stripped) >= len(fence):
            return index
    return len(lines) - 1


def _marker(lines: list[str], fence: int) -> tuple[str | None, str]:
    """The docs-test marker on the nearest non-blank line above the fence."""
    index = fence - 1
    while index >= 0 and not lines[index].strip():
        index -= 1
    match = _MARKER.match(lines[index]) if index >= 0 else None
    if match is None:
        return None, ""
    return match.group("kind"), (match.group("reason") or "").strip()


def problems(block: Block) -> list[str]:
    """What is wrong with a block's marking (empty when it is fine)."""
    if not block.language:
        return [f"{block.where}: the fence names no language (bash, python, text, json, ...)"]
    if block.marker is None:
        if block.program:
            return [f"{block.where}: unmarked {block.language} block: add {HOW_TO_MARK}"]
        return []
    if block.marker not in (RUN, EXAMPLE):
        return [f"{block.where}: unknown docs-test marker {block.marker!r}: {HOW_TO_MARK}"]
    if not block.program:
        return [f"{block.where}: a {block.language} block is not a program: drop its marker"]
    if block.marker == EXAMPLE and not block.reason:
        return [f"{block.where}: an example needs its reason: <!-- docs-test: example (why) -->"]
    return []


HOW_TO_MARK = "<!-- docs-test: run --> or <!-- docs-test: example (REASON) --> before the fence"


def runnable(page: Path) -> list[Block]:
    """The page's blocks marked ``run``, in order."""
    return [block for block in blocks(page) if block.marker == RUN]


def script(page: Path, progress: Path) -> str:
    """The page's runnable blocks as one bash script, in order.

    One shell for the whole page, as a reader pastes the blocks into one terminal: what a
    block exports or activates holds for the next. A Python block runs with the ``python``
    the page has put on the PATH (``source .venv/bin/activate``), from a here-document.
    Before each block its line is written to ``progress``, so a failure names the block.
    """
    parts = ["set -eo pipefail"]
    for block in runnable(page):
        parts.append(f"echo {block.line} > '{progress}'")
        if block.language in PYTHON:
            parts.append(f"python - <<'DOCS_TEST_PYTHON'\n{block.text}\nDOCS_TEST_PYTHON")
        else:
            parts.append(block.text)
    parts.append(f"echo done > '{progress}'")
    return "\n".join(parts) + "\n"
