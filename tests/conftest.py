"""Shared fixtures: one built repository per test session (random weights, offline)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-network", action="store_true", help="run tests marked network")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-network") or os.environ.get("TRITONSHIP_NETWORK") == "1":
        return
    skip = pytest.mark.skip(reason="needs the network: pass --run-network")
    for item in items:
        if "network" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def built_repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model repository built from the checkout with random weights (read-only use)."""
    from tritonship.build import build_repository

    repo = tmp_path_factory.mktemp("built") / "model_repository"
    shutil.copytree(ROOT / "model_repository", repo)
    build_repository(repo, weights="random", progress=False)
    return repo


@pytest.fixture()
def repo_copy(built_repository: Path, tmp_path: Path) -> Path:
    """A private, mutable copy of the built repository."""
    dst = tmp_path / "model_repository"
    shutil.copytree(built_repository, dst)
    return dst
