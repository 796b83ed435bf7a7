"""Where things live: checkout or wheel, packaged assets, run state, cache, the bench extra."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
from setuptools import find_packages

from tritonship import cli, paths
from tritonship.sagemaker import settings

CHECKOUT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def outside_checkout(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Behave as a wheel install: no checkout; HOME and the XDG variables point at tmp."""
    monkeypatch.setattr(paths, "checkout_root", lambda: None)
    for name in ("TRITONSHIP_RUN_DIR", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return tmp_path


def test_this_package_runs_from_the_checkout():
    assert paths.checkout_root() == CHECKOUT
    assert paths.DEFAULT_REPOSITORY == CHECKOUT / "model_repository"
    assert paths.DEFAULT_ARCHIVE == CHECKOUT / "dist" / "model.tar.gz"


def test_run_dir_honours_the_environment_variable(monkeypatch: pytest.MonkeyPatch, tmp_path):
    monkeypatch.setenv("TRITONSHIP_RUN_DIR", str(tmp_path / "run"))
    assert settings.run_dir() == tmp_path / "run"
    monkeypatch.setattr(paths, "checkout_root", lambda: None)
    assert settings.run_dir() == tmp_path / "run", "wins outside a checkout too"


def test_run_dir_defaults_to_the_checkout(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("TRITONSHIP_RUN_DIR", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", "/elsewhere")
    assert settings.run_dir() == CHECKOUT / ".tritonship"


def test_run_dir_outside_a_checkout_follows_xdg(monkeypatch, outside_checkout: Path):
    assert settings.run_dir() == outside_checkout / "home/.local/state/tritonship"
    monkeypatch.setenv("XDG_STATE_HOME", str(outside_checkout / "state"))
    assert settings.run_dir() == outside_checkout / "state/tritonship"
    monkeypatch.setenv("XDG_STATE_HOME", "relative/state")
    assert settings.run_dir() == outside_checkout / "home/.local/state/tritonship", (
        "a relative XDG value is ignored, as the spec says"
    )


def test_models_cache_is_in_the_checkout(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("XDG_CACHE_HOME", "/elsewhere")
    assert paths.models_cache() == CHECKOUT / "models" / "cache"


def test_models_cache_outside_a_checkout_follows_xdg(monkeypatch, outside_checkout: Path):
    assert paths.models_cache() == outside_checkout / "home/.cache/tritonship/models"
    monkeypatch.setenv("XDG_CACHE_HOME", str(outside_checkout / "cache"))
    assert paths.models_cache() == outside_checkout / "cache/tritonship/models"


def test_assets_are_the_checkout_folders_in_an_editable_install():
    assert settings.PACKAGED_ENV_FILE == CHECKOUT / "container" / "sagemaker.env"
    assert paths.COMPOSE_FILE == CHECKOUT / "container" / "docker-compose.yml"
    assert paths.DALI_PIPELINE_SOURCE == CHECKOUT / "dali" / "pipeline.py"
    assert paths.BACKEND_SOURCES == CHECKOUT / "container" / "backends"
    for name in ("dali", "tensorflow"):
        assert (paths.BACKEND_SOURCES / name / "model.py").is_file()
    text = paths.asset("container", "sagemaker.env").read_text(encoding="utf-8")
    assert "SAGEMAKER_TRITON_DEFAULT_MODEL_NAME" in text


def test_the_model_definition_is_the_packaged_models_module():
    from tritonship.assets.models import inception_v3
    from tritonship.repository import inception

    assert Path(inception_v3.__file__) == CHECKOUT / "models" / "inception_v3.py"
    assert inception.random_graph_bytes is inception_v3.random_graph_bytes
    assert (inception.INPUT_NAME, inception.OUTPUT_NAME) == (
        "input",
        "InceptionV3/Predictions/Softmax",
    )
    assert (inception.IMAGE_SIZE, inception.NUM_CLASSES) == (299, 1001)


def _setuptools_config() -> dict:
    config = tomllib.loads((CHECKOUT / "pyproject.toml").read_text(encoding="utf-8"))
    return config["tool"]["setuptools"]


def test_every_subpackage_is_listed_for_the_wheel():
    """An explicit packages list: a subpackage missing from it would be missing from wheels."""
    listed = set(_setuptools_config()["packages"])
    found = set(find_packages(CHECKOUT / "tools"))
    assert found - listed == set(), "add the new subpackage to pyproject.toml"
    mapped = set(_setuptools_config()["package-dir"]) - {""}
    assert listed - found == mapped
    for package in mapped:
        folder = CHECKOUT / _setuptools_config()["package-dir"][package]
        assert (folder / "__init__.py").is_file(), f"{folder} must be a package"


def test_models_cache_stays_ignored_and_unpackaged():
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", "models/cache/x.tar.gz"], cwd=CHECKOUT, check=False
    )
    assert ignored.returncode == 0
    data = _setuptools_config()["package-data"]
    assert not any("cache" in glob for globs in data.values() for glob in globs)


IMPORT_ALL_BUT_BENCH = """
import importlib, pkgutil, sys
sys.modules["aiohttp"] = sys.modules["matplotlib"] = None  # as if not installed
import tritonship
names = []
for top in pkgutil.iter_modules(tritonship.__path__, "tritonship."):
    if top.name == "tritonship.bench":
        continue
    module = importlib.import_module(top.name)
    names.append(top.name)
    for sub in pkgutil.walk_packages(getattr(module, "__path__", []), top.name + "."):
        if not sub.name.endswith(".__main__"):  # importing it would run the CLI
            importlib.import_module(sub.name)
            names.append(sub.name)
print(len(names))
"""


def test_nothing_outside_bench_needs_the_bench_extra():
    """validate, serve, invoke, package, promote and the CLI import without aiohttp and
    matplotlib, as after ``pip install tritonship`` without ``[bench]``."""
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_ALL_BUT_BENCH], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert int(result.stdout) > 30


def test_bench_without_its_extra_is_one_line_with_the_fix(monkeypatch: pytest.MonkeyPatch, capsys):
    monkeypatch.setitem(sys.modules, "aiohttp", None)  # as if not installed
    monkeypatch.delitem(sys.modules, "tritonship.bench", raising=False)
    code = cli.main(["bench", "--url", "http://127.0.0.1:9", "--no-ceiling", "--quiet"])
    assert code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "aiohttp" in err and "matplotlib" not in err
    assert "pip install 'tritonship[bench]'" in err
