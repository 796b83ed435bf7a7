"""Every shell and Python block of README.md and docs/ is marked: run by the docs test, or an
example with its reason (tests/support/docs.py; the runner is tests/integration/test_docs.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import docs


@pytest.mark.parametrize("page", docs.pages(), ids=lambda p: p.name)
def test_every_block_is_marked(page: Path):
    found = [problem for block in docs.blocks(page) for problem in docs.problems(block)]
    assert not found, "\n".join(found)


def test_the_docs_have_runnable_blocks_beside_their_examples():
    marked = [b for page in docs.pages() for b in docs.blocks(page) if b.marker]
    assert sum(b.marker == docs.RUN for b in marked) >= 10
    assert {"README.md", "deploying.md", "invoking.md"} <= {
        b.page.name for b in marked if b.marker == docs.RUN
    }


SAMPLE = """# A page

```bash
echo unmarked
```

<!-- docs-test: run -->
```bash
export GREETING=hello
```

<!-- docs-test: example (needs AWS) -->

```bash
aws s3 ls
```

```json
{"not": "a program"}
```

```
no language
```

<!-- docs-test: example -->
```python
print("no reason")
```

<!-- docs-test: run -->
~~~python
import os
print(os.environ["GREETING"])
~~~
"""


def test_markers_are_read_and_problems_named(tmp_path: Path, monkeypatch):
    page = tmp_path / "page.md"
    page.write_text(SAMPLE)
    monkeypatch.setattr(docs, "ROOT", tmp_path)
    found = docs.blocks(page)
    assert [(b.line, b.language, b.marker) for b in found] == [
        (3, "bash", None),
        (8, "bash", "run"),
        (14, "bash", "example"),
        (18, "json", None),
        (22, "", None),
        (27, "python", "example"),
        (32, "python", "run"),
    ]
    assert found[2].reason == "needs AWS"
    issues = [problem for block in found for problem in docs.problems(block)]
    assert [issue.split(":")[1] for issue in issues] == ["3", "22", "27"]
    assert "unmarked bash block" in issues[0] and "names no language" in issues[1]
    assert "needs its reason" in issues[2]


def test_a_page_becomes_one_script_in_order(tmp_path: Path):
    import subprocess

    page = tmp_path / "page.md"
    page.write_text(SAMPLE)
    progress = tmp_path / "progress"
    text = docs.script(page, progress)
    assert "aws s3 ls" not in text and "echo unmarked" not in text
    done = subprocess.run(
        ["bash", "-c", text.replace("python -", "python3 -")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "hello\n", "the export of one block holds in the next"
    assert progress.read_text().strip() == "done"


def _bare_commands(page: Path) -> list[str]:
    """Lines of the page's program blocks that run the project's tools without a path."""
    lines = [line.strip() for b in docs.blocks(page) if b.program for line in b.text.splitlines()]
    return [line for line in lines if line.startswith(("tritonship ", "python -m tritonship"))]


@pytest.mark.parametrize("page", docs.pages(), ids=lambda p: p.name)
def test_a_page_with_bare_commands_says_to_activate_the_venv(page: Path):
    """Without .venv on the PATH, a bare ``tritonship`` is "command not found"."""
    if _bare_commands(page):
        assert "source .venv/bin/activate" in page.read_text(encoding="utf-8"), page.name
