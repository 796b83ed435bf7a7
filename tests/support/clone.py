"""A fresh copy of the checkout with its own ``.venv``, as a newcomer's clone would be.

Used by the docs test (tests/integration/test_docs.py). "Fresh" means what ``git clone``
gives, plus what ``make setup`` makes:

- the files git would commit (tracked and untracked-but-not-ignored: a working tree's
  uncommitted edits are tested too), copied and committed into a new git repository, so
  that ``git status`` in it starts clean;
- ``.venv``: a new virtual environment with tritonship installed editable from the copy
  (``pip install -e`` offline, no dependencies). The dependencies are this test run's own,
  seen through a folder of links (minutes of downloads otherwise), without tritonship
  itself: only the copy can provide ``import tritonship``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

#: Hidden from the copy's venv: this checkout's own tritonship (its editable install).
OURS = ("tritonship", "__editable__")
GIT_IDENTITY = ("-c", "user.name=docs-test", "-c", "user.email=docs-test@localhost")


def dependency_view(site: Path, view: Path, hidden: tuple[str, ...] = OURS) -> None:
    """Let the venv whose site folder is ``site`` see this venv's packages but ``hidden``.

    ``.pth`` files are processed only in a site folder: one that runs code is copied there
    (an editable install's finder among the hidden ones is not); one that only names
    folders (a venv layered on another) is followed, so that ``hidden`` applies there too.
    Everything else is linked from ``view``.
    """
    ours = Path(sysconfig.get_paths()["purelib"])
    view.mkdir(parents=True, exist_ok=True)
    for folder in [ours, *_named_folders(ours, hidden)]:
        for entry in folder.iterdir():
            if entry.name.startswith(hidden) or (view / entry.name).exists():
                continue
            if entry.suffix != ".pth":
                (view / entry.name).symlink_to(entry)
            elif not _names_only_folders(entry):
                shutil.copy2(entry, site / entry.name)
    (site / "_deps_of_this_test.pth").write_text(f"{view}\n", encoding="utf-8")


def _pth_lines(pth: Path) -> list[str]:
    lines = pth.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def _names_only_folders(pth: Path) -> bool:
    """Whether a ``.pth`` file only adds folders to ``sys.path`` (no ``import`` lines)."""
    lines = _pth_lines(pth)
    return bool(lines) and all(not line.startswith("import") for line in lines)


def _named_folders(site: Path, hidden: tuple[str, ...]) -> list[Path]:
    """The folders the (not hidden) ``.pth`` files of ``site`` add to ``sys.path``."""
    folders = []
    for pth in sorted(site.glob("*.pth")):
        if pth.name.startswith(hidden) or not _names_only_folders(pth):
            continue
        folders += [Path(line) for line in _pth_lines(pth) if Path(line).is_dir()]
    return folders


def git(repo: Path, *args: str) -> str:
    """Run git in ``repo``; its stdout."""
    done = subprocess.run(
        ["git", *GIT_IDENTITY, *args], cwd=repo, capture_output=True, text=True, check=True
    )
    return done.stdout


def copy_checkout(checkout: Path, dest: Path) -> Path:
    """The files git would commit, copied to ``dest`` and committed there."""
    listed = git(checkout, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    for relative in sorted(set(filter(None, listed.split("\0")))):
        source = checkout / relative
        if not source.exists() and not source.is_symlink():
            continue  # deleted in the working tree, not yet committed
        target = dest / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target, follow_symlinks=False)
    git(dest, "init", "--quiet")
    git(dest, "add", "--all")
    git(dest, "commit", "--quiet", "--no-verify", "-m", "a fresh clone")
    return dest


def make_venv(clone: Path) -> Path:
    """``clone/.venv`` with tritonship installed editable from ``clone`` (offline, ~2 s)."""
    env_dir = clone / ".venv"
    venv.EnvBuilder(with_pip=False, symlinks=True).create(env_dir)
    python = env_dir / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    dependency_view(Path(purelib), clone.parent / "deps")
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet"]
    subprocess.run(
        [*pip, "--no-deps", "--no-build-isolation", "--no-index", "-e", str(clone)],
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
        capture_output=True,
        check=True,
    )
    # make's setup target is done: .venv/bin/.installed newer than pyproject.toml
    (env_dir / "bin" / ".installed").touch()
    return env_dir


def reset(clone: Path) -> None:
    """Back to the fresh clone: tracked files restored, everything else but .venv removed."""
    git(clone, "checkout", "--quiet", "--", ".")
    git(clone, "clean", "--quiet", "-ffdx", "--exclude=.venv")


def seed_build(clone: Path, built: Path) -> None:
    """Put a random-weight build's artifacts into ``clone/model_repository``.

    Stands in for the minutes of a first ``make artifacts WEIGHTS=random``: the pages still
    run their own build commands, which verify the graph by its SHA-256 and reuse it.
    """
    shutil.copytree(built, clone / "model_repository", dirs_exist_ok=True)


def clean_path(path: str) -> str:
    """``path`` without any virtual environment's ``bin`` (the page activates its own)."""
    kept = [
        entry
        for entry in path.split(os.pathsep)
        if entry and not (Path(entry).parent / "pyvenv.cfg").is_file()
    ]
    return os.pathsep.join(kept)
