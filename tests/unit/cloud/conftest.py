"""Fixtures the promote tests share: archives, a run folder, moto's role, bucket and quotas."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber

from tests.support.aws import ALL_BLOCKED, BUCKET, with_quotas
from tests.support.foreign import add_sub_repository, ensembles_repository
from tests.support.stubs import ROLE, TRUST
from tritonship.artifact.multimodel import package_multi_model
from tritonship.artifact.package import PackageResult, package_repository
from tritonship.cloud import aws


@pytest.fixture(scope="module")
def models_dir(staged_repository: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Our ensemble's archive and the add/sub archives, as package --multi-model writes them."""
    out = tmp_path_factory.mktemp("models")
    package_multi_model(staged_repository, out, allow_random_weights=True, progress=False)
    repo = ensembles_repository(tmp_path_factory.mktemp("ensembles") / "repo")
    package_multi_model(repo, out, progress=False)
    return out


@pytest.fixture(scope="module")
def foreign(tmp_path_factory: pytest.TempPathFactory) -> PackageResult:
    """NVIDIA's sm_model packaged as one archive (no build manifest)."""
    repo = add_sub_repository(tmp_path_factory.mktemp("foreign") / "repo")
    return package_repository(repo, tmp_path_factory.mktemp("dist") / "model.tar.gz")


@pytest.fixture()
def run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private run folder, where serve --archive records its measurements."""
    monkeypatch.setenv("TRITONSHIP_RUN_DIR", str(tmp_path / "run"))
    return tmp_path / "run"


@pytest.fixture()
def role(aws_env: str) -> str:
    """The endpoint's role in moto's IAM, trusting SageMaker."""
    boto3.client("iam", region_name="us-east-1").create_role(
        RoleName="tritonship-endpoint", AssumeRolePolicyDocument=json.dumps(TRUST)
    )
    return ROLE


@pytest.fixture()
def bucket(role: str) -> str:
    """A private bucket in moto (every public access block on), beside the role."""
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_public_access_block(Bucket=BUCKET, PublicAccessBlockConfiguration=ALL_BLOCKED)
    return BUCKET


@pytest.fixture()
def quotas() -> Iterator[list[Stubber]]:
    """Every Service Quotas client handed out must have been asked exactly what it answers."""
    handed: list[Stubber] = []
    yield handed
    for stubber in handed:
        stubber.assert_no_pending_responses()


@pytest.fixture()
def cli_quotas(quotas: list[Stubber], monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's clients get a stubbed Service Quotas client too (one answer per promote)."""
    real = aws.make_clients
    monkeypatch.setattr(
        aws, "make_clients", lambda region, attempts=5: with_quotas(real(region, attempts), quotas)
    )
