"""The docs test: every runnable block of README.md and docs/, page by page, as written.

Each page's blocks marked ``<!-- docs-test: run -->`` run in order in one bash, from a fresh
clone (tests/support/clone.py: the files git would commit, a new ``.venv`` with tritonship
installed editable) reset before every page, in a clean environment: only ``PATH`` (without
any virtual environment), a new empty ``HOME`` (no AWS configuration, no credentials) and a
new ``TRITONSHIP_RUN_DIR``; whatever else a block needs, the page sets up itself (``source
.venv/bin/activate``, exports, its own moto server). The clone's repository is seeded with
the session's random-weight build, which the pages' own build commands verify and reuse.

A page fails when a block fails (``set -e``): the failure names the block's line and shows
the end of the output. After a page, nothing the project tracks may have changed and nothing
may have appeared under docs/ (``make bench`` writes into the run folder, not docs/results/).
Whatever a page leaves running is stopped: ``tritonship stop`` with the page's run folder,
then the page's process group. The marking itself is checked by
tests/unit/test_docs_marked.py; the convention is in docs/testing.md.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import clone as fresh_clone
from tests.support import docs

pytestmark = pytest.mark.slow

CHECKOUT = docs.ROOT
PAGE_TIMEOUT = 600.0
#: What no documented command may change (the docs test also checks the run state stays out).
PROJECT_PATHS = (
    *("README.md", "Makefile", "docs", "tools", "container", "dali", "models"),
    *("model_repository", "tests"),
)
RUNNABLE = [page for page in docs.pages() if docs.runnable(page)]


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One fresh clone with its own .venv for the module (about 5 s)."""
    if shutil.which("git") is None or shutil.which("make") is None:
        pytest.skip("the docs test needs git and make")
    root = fresh_clone.copy_checkout(CHECKOUT, tmp_path_factory.mktemp("docs") / "tritonship")
    fresh_clone.make_venv(root)
    return root


@pytest.fixture()
def fresh(clone: Path, built_repository: Path) -> Iterator[Path]:
    """The clone as it was cloned (and set up), with the session's build seeded.

    One page at a time on this machine (a lock file, across processes: pytest-xdist
    workers, another checkout's run): pages use the documented ports 8080, 8081 and 5000.
    """
    with (Path(tempfile.gettempdir()) / "tritonship-docs-test.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        fresh_clone.reset(clone)
        fresh_clone.seed_build(clone, built_repository)
        yield clone


def page_environment(tmp_path: Path) -> dict[str, str]:
    """A newcomer's shell: PATH without any venv, an empty HOME, a new run folder."""
    home = tmp_path / "home"
    home.mkdir()
    return {
        "PATH": fresh_clone.clean_path(os.environ.get("PATH", os.defpath)),
        "HOME": str(home),
        "TRITONSHIP_RUN_DIR": str(tmp_path / "run"),
    }


def run_page(page: Path, root: Path, tmp_path: Path) -> tuple[int | None, str, str]:
    """Run the page's script in ``root``: exit code (None: timed out), last block, output."""
    progress, log = tmp_path / "progress", tmp_path / "page.log"
    script = tmp_path / "page.sh"
    script.write_text(docs.script(page, progress), encoding="utf-8")
    env = page_environment(tmp_path)
    with log.open("wb") as output:
        process = subprocess.Popen(
            ["bash", str(script)],
            cwd=root,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: background jobs are stopped too
        )
        try:
            code: int | None = process.wait(timeout=PAGE_TIMEOUT)
        except subprocess.TimeoutExpired:
            code = None
        finally:
            stop_leftovers(process, root, env)
    reached = progress.read_text().strip() if progress.exists() else "?"
    return code, reached, log.read_text(errors="replace")


def stop_leftovers(process: subprocess.Popen, root: Path, env: dict[str, str]) -> None:
    """Stop what the page left: detached servers (by their run folders), then its group.

    A page may start servers under run folders of its own (``TRITONSHIP_RUN_DIR=...``):
    every folder holding a recorded native server or runtime is stopped, not only the
    harness's; detached servers live in sessions of their own, out of the page's group.
    """
    run_dirs = {Path(env["TRITONSHIP_RUN_DIR"])}
    for record in (*root.rglob("native/server.json"), *root.rglob("runtime.json")):
        run_dirs.add(record.parent.parent if record.name == "server.json" else record.parent)
    for run_dir in sorted(run_dirs):
        subprocess.run(
            [str(root / ".venv" / "bin" / "tritonship"), "stop"],
            cwd=root,
            env={**env, "TRITONSHIP_RUN_DIR": str(run_dir)},
            capture_output=True,
            timeout=120,
            check=False,
        )
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            continue
    process.wait()


def changed_project_files(root: Path) -> list[str]:
    """What the page changed or added under the project's own paths (run state excluded)."""
    status = fresh_clone.git(
        root, "status", "--porcelain", "--untracked-files=all", "--", *PROJECT_PATHS
    )
    return status.splitlines()


@pytest.mark.parametrize("page", RUNNABLE, ids=lambda page: page.name)
def test_the_page_runs_as_written(page: Path, fresh: Path, tmp_path: Path):
    code, reached, output = run_page(page, fresh, tmp_path)
    where = f"{page.relative_to(CHECKOUT)}:{reached}"
    tail = "\n".join(output.splitlines()[-40:])
    if code is None:
        pytest.fail(f"{where}: still running after {PAGE_TIMEOUT:.0f} s; output ends:\n{tail}")
    assert code == 0 and reached == "done", f"{where}: the block failed (exit {code}):\n{tail}"
    changed = changed_project_files(fresh)
    assert not changed, f"{page.name} changed the project's files: {changed}"
