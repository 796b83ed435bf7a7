"""The import-linter contracts cover every part of the package, so none escapes the rule."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

import tritonship

ROOT = Path(__file__).resolve().parents[2]


def _contracts() -> list[dict]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return config["tool"]["importlinter"]["contracts"]


def _layers() -> set[str]:
    (layers,) = [c for c in _contracts() if c["type"] == "layers"]
    return {name.strip() for layer in layers["layers"] for name in layer.split("|")}


def test_every_module_is_a_layer_or_core() -> None:
    (core,) = [c for c in _contracts() if c["type"] == "forbidden"]
    covered = _layers() | set(core["source_modules"])
    top = {f"tritonship.{m.name}" for m in pkgutil.iter_modules(tritonship.__path__)}
    assert top - covered == set(), "add the new module to the contracts in pyproject.toml"


def test_core_may_import_no_layer() -> None:
    (core,) = [c for c in _contracts() if c["type"] == "forbidden"]
    assert set(core["forbidden_modules"]) == _layers()


def test_local_and_cloud_are_independent() -> None:
    (layers,) = [c for c in _contracts() if c["type"] == "layers"]
    assert "tritonship.local | tritonship.cloud" in layers["layers"]


@pytest.mark.parametrize(
    ("module", "line"),
    [
        ("local/native.py", "from tritonship.cloud import aws"),
        ("sagemaker/images.py", "from tritonship.repository import validate"),
        ("errors.py", "from tritonship.cli import main"),
        ("errors.py", None),
    ],
)
def test_lint_imports_refuses_a_violation(tmp_path: Path, module: str, line: str | None) -> None:
    """Copy the package, plant one forbidden import, and watch import-linter fail."""
    import shutil

    linter = Path(sys.executable).with_name("lint-imports")
    if not linter.exists():
        pytest.skip("import-linter is not installed (pip install -e '.[dev]')")
    src = tmp_path / "src"
    shutil.copytree(ROOT / "tools" / "tritonship", src / "tritonship")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = src / "tritonship" / module
    if line:
        target.write_text(f"{target.read_text(encoding='utf-8')}\n{line}\n", encoding="utf-8")
    result = subprocess.run(
        [str(linter), "--no-cache"],
        cwd=tmp_path,
        env={"PYTHONPATH": str(src), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == (1 if line else 0), result.stdout + result.stderr
    assert ("BROKEN" in result.stdout) == bool(line)
