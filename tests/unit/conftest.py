"""Unit-tier fixtures: a repository with the real configs and placeholder artifacts.

No Keras export and no server here: ``built_repository`` (a real random-weight build, ten
seconds or more) belongs to the integration tier. In tests/unit, ``repo_copy`` and
``packaged`` override the session-wide fixtures of the same names with the staged
repository (tests/support/staged.py): the validator, the packager and promote only need
the files a build leaves, not a working graph.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from tests.conftest import ROOT
from tests.support.staged import stage_repository
from tests.support.stubs import Stubs, aws_session, stubbed


@pytest.fixture(scope="session")
def staged_repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The checkout's configs with placeholder artifacts and a build manifest (read-only)."""
    dest = tmp_path_factory.mktemp("staged") / "model_repository"
    return stage_repository(dest, ROOT / "model_repository")


@pytest.fixture()
def repo_copy(staged_repository: Path, tmp_path: Path) -> Path:
    """A private, mutable copy of the staged repository."""
    dst = tmp_path / "model_repository"
    shutil.copytree(staged_repository, dst)
    return dst


@pytest.fixture(scope="session")
def packaged(staged_repository: Path, tmp_path_factory: pytest.TempPathFactory):
    """The staged repository packaged once per session (random weights allowed)."""
    from tritonship.artifact.package import package_repository

    out = tmp_path_factory.mktemp("dist") / "model.tar.gz"
    return package_repository(staged_repository, out, allow_random_weights=True, progress=False)


@pytest.fixture()
def built_repository() -> Path:
    """Not in the unit tier: use ``staged_repository``, or move the test to integration."""
    pytest.fail("built_repository runs the Keras export: unit tests use staged_repository")


@pytest.fixture(scope="module")
def session() -> boto3.session.Session:
    """One boto3 session per module: botocore loads each service model once (~0.5 s)."""
    return aws_session()


@pytest.fixture()
def stubs(session: boto3.session.Session, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stubs]:
    """Stubbed AWS clients (botocore's Stubber) that promote's code picks up."""
    with stubbed(session, monkeypatch) as ready:
        yield ready
