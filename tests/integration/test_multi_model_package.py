"""The built ensemble and its ONNX build as two target models of one multi-model endpoint.

As AWS's notebook runs this ensemble on SageMaker (aws/amazon-sagemaker-examples,
``sagemaker-triton/ensemble/mme_gpu_ensemble``): ``package --multi-model`` of each
repository into one folder (the ONNX one with a suffix, so both names stay
distinct), then ``promote --multi-model`` of that folder against a local moto server:
one model on a prefix, both archives under it, the smoke test aimed at the ONNX one.
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import boto3
import pytest

from tests.support.aws import ALL_BLOCKED, queue_invoke_answer, triton_answer, with_quotas
from tests.support.stubs import TRUST
from tritonship.artifact.multimodel import package_multi_model
from tritonship.cloud.aws import make_clients
from tritonship.cloud.endpoints import Waiting
from tritonship.cloud.promote import apply, build_plan
from tritonship.cloud.state import PromoteOptions

ROLE = "arn:aws:iam::123456789012:role/tritonship-endpoint"
BUCKET = "tritonship-mme"
ENSEMBLE = "ensemble_dali_inception"


@pytest.fixture(scope="module")
def models(
    built_repository: Path, onnx_repository: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """Both builds' archives side by side, as package --multi-model writes them."""
    out = tmp_path_factory.mktemp("models")
    for repo, suffix in ((built_repository, ""), (onnx_repository, "_onnx")):
        package_multi_model(repo, out, allow_random_weights=True, progress=False, suffix=suffix)
    return out


def manifest(models: Path, stem: str) -> dict:
    return json.loads((models / f"{stem}.manifest.json").read_text())


def test_each_build_is_one_archive_of_the_whole_ensemble(models: Path) -> None:
    assert sorted(p.name for p in models.glob("*.tar.gz")) == [
        f"{ENSEMBLE}.tar.gz",
        f"{ENSEMBLE}_onnx.tar.gz",
    ]
    tf, onnx = manifest(models, ENSEMBLE), manifest(models, f"{ENSEMBLE}_onnx")
    assert tf["target_model"] == onnx["target_model"] == ENSEMBLE
    assert "inception_graphdef" in tf["models"] and "inception_onnx" in onnx["models"]
    assert "tensorflow" in tf["image"]["backends_needed"]
    assert "onnxruntime" in onnx["image"]["backends_needed"]
    assert tf["weights"]["source"] == onnx["weights"]["source"] == "random"
    with tarfile.open(models / f"{ENSEMBLE}_onnx.tar.gz") as tar:
        assert "build-manifest.json" in tar.getnames()


def test_both_builds_are_target_models_of_one_endpoint(models: Path, aws_env: str) -> None:
    boto3.client("iam", region_name="us-east-1").create_role(
        RoleName="tritonship-endpoint", AssumeRolePolicyDocument=json.dumps(TRUST)
    )
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_public_access_block(Bucket=BUCKET, PublicAccessBlockConfiguration=ALL_BLOCKED)
    archives = tuple(sorted(models.glob("*.tar.gz")))
    options = PromoteOptions(
        "side-by-side",
        BUCKET,
        ROLE,
        multi_model=True,
        archives=archives,
        smoke_target_model=f"{ENSEMBLE}_onnx.tar.gz",
    )
    plan = build_plan(options, "us-east-1")
    queue_invoke_answer(aws_env, triton_answer())
    handed: list = []
    clients = with_quotas(make_clients("us-east-1"), handed)
    result = apply(plan, clients, Waiting(0.01, 5), progress=False)
    assert result.smoke.verified and "OUTPUT [1,1001]" in result.smoke.detail
    container = clients.sagemaker.describe_model(ModelName=plan.model_name)["PrimaryContainer"]
    assert (container["Mode"], container["ModelDataUrl"]) == ("MultiModel", plan.model_data_url)
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="tritonship/side-by-side/models/")
    assert {item["Key"].rsplit("/", 1)[-1] for item in listed["Contents"]} == {
        f"{ENSEMBLE}.tar.gz",
        f"{ENSEMBLE}.manifest.json",
        f"{ENSEMBLE}_onnx.tar.gz",
        f"{ENSEMBLE}_onnx.manifest.json",
    }
    for stubber in handed:
        stubber.assert_no_pending_responses()
