"""A repository tritonship did not build, through every step: validate -> serve -> invoke ->
package -> promote (moto) -> teardown, all through the command line, as a user runs it.

The repository is NVIDIA's ``sm_model`` (tests/support/foreign.py): no build manifest, no
ensemble, no labels of ours. The model name and a server setting come through ``--env``; the
native engine serves it with the real tritonserver. The promote's smoke test is answered
with the body the real server gave to the very request the smoke test sends (queued in moto,
whose own InvokeEndpoint returns a placeholder), so the smoke check judges a real answer.
"""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import numpy as np
import pytest
import requests

from tests.support.aws import ALL_BLOCKED, BUCKET, queue_invoke_answer
from tests.support.foreign import NAME, add_sub_inputs, make_add_sub_repository
from tests.support.stubs import ROLE, TRUST
from tritonship import cli
from tritonship.artifact.manifest import load_package
from tritonship.cloud.smoke import generic_request
from tritonship.local.engine import free_port

ENDPOINT = "foreign"


def run(*args: str) -> int:
    return cli.main([str(arg) for arg in args])


@pytest.fixture()
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The command line's own run folder, and `tritonship stop` whatever happens."""
    monkeypatch.setenv("TRITONSHIP_RUN_DIR", str(tmp_path / "run"))
    yield
    run("stop")


def serve_and_invoke(repo: Path, files: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """Serve ``repo`` detached, check sums and differences through the CLI; the URL."""
    port = free_port()
    assert run("serve", "--repo", repo, "--port", port, "--runtime-port", 0, "--detach",
               "--env", f"SAGEMAKER_TRITON_DEFAULT_MODEL_NAME={NAME}",
               "--env", "SAGEMAKER_TRITON_THREAD_COUNT=4") == 0  # fmt: skip
    banner = capsys.readouterr().out
    assert f"SAGEMAKER_TRITON_DEFAULT_MODEL_NAME={NAME}  (--env)" in banner
    url = f"http://127.0.0.1:{port}"
    a, b = add_sub_inputs(batch=2)
    np.save(files / "a.npy", a)
    np.save(files / "b.npy", b)
    inputs = ["--input", f"INPUT0={files / 'a.npy'}", "--input", f"INPUT1={files / 'b.npy'}"]
    assert run("invoke", "--url", url, "--json", *inputs) == 0
    answer = json.loads(capsys.readouterr().out)
    outputs = {o["name"]: np.array(o["data"]).reshape(o["shape"]) for o in answer["outputs"]}
    np.testing.assert_array_equal(outputs["OUTPUT0"], a + b)
    np.testing.assert_array_equal(outputs["OUTPUT1"], a - b)
    return url


def test_a_foreign_repository_goes_from_validate_to_teardown(
    tmp_path: Path, aws_env: str, served: None, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_add_sub_repository(tmp_path / "repo")
    assert not (repo / "build-manifest.json").exists()
    assert run("validate", "--repo", repo, "--image-tag", "24.09-py3") == 0
    assert "1 model OK (sm_model)" in capsys.readouterr().out

    url = serve_and_invoke(repo, tmp_path, capsys)

    archive = tmp_path / "dist" / "model.tar.gz"
    assert run("package", "--repo", repo, "--out", archive, "--quiet",
               "--env", f"SAGEMAKER_TRITON_DEFAULT_MODEL_NAME={NAME}") == 0  # fmt: skip
    manifest = load_package(archive)
    assert manifest.build is None and "no build manifest" in (manifest.provenance or "")
    assert manifest.environment["SAGEMAKER_TRITON_DEFAULT_MODEL_NAME"] == NAME

    assert manifest.invocation is not None
    smoke, reason = generic_request(manifest.invocation)
    assert smoke is not None, reason
    real = requests.post(f"{url}/invocations", data=smoke.body,
                         headers={"Content-Type": smoke.content_type}, timeout=30)  # fmt: skip
    assert real.status_code == 200, real.text
    run("stop")

    iam = boto3.client("iam", region_name="us-east-1")
    iam.create_role(RoleName="tritonship-endpoint", AssumeRolePolicyDocument=json.dumps(TRUST))
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_public_access_block(Bucket=BUCKET, PublicAccessBlockConfiguration=ALL_BLOCKED)
    queue_invoke_answer(aws_env, real.text, real.headers["Content-Type"])
    assert run("promote", "--endpoint", ENDPOINT, "--bucket", BUCKET, "--role", ROLE,
               "--archive", archive, "--quiet", "--poll", "0.1") == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "smoke test" in out and "OUTPUT0" in out, out
    sagemaker = boto3.client("sagemaker", region_name="us-east-1")
    model = sagemaker.list_models()["Models"][0]["ModelName"]
    environment = sagemaker.describe_model(ModelName=model)["PrimaryContainer"]["Environment"]
    assert environment["SAGEMAKER_TRITON_DEFAULT_MODEL_NAME"] == NAME
    assert environment["SAGEMAKER_TRITON_LOG_VERBOSE"] == "0", "the packaged default travels"

    assert run("teardown", "--endpoint", ENDPOINT, "--delete-artifacts") == 0
    assert sagemaker.list_endpoints()["Endpoints"] == []
    assert sagemaker.list_models()["Models"] == []
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount", 0) == 0
