"""Against a local AWS stand-in (moto), a call it lacks is one line naming it, not a 500 page.

moto 5 answers UpdateEndpoint and Service Quotas' ListServiceQuotas with Werkzeug's HTML
"500 Internal Server Error" page (``moto/core/responses.py`` ``call_action`` raises
``NotImplementedError``), fails InvokeEndpoint on a binary body the same way (it decodes
every body as UTF-8) and answers any other InvokeEndpoint with a canned placeholder. The
moto-server tests below drive the real commands against it.
"""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.support.aws import ALL_BLOCKED, BUCKET
from tests.support.stubs import ROLE, TRUST
from tritonship.artifact.package import PackageResult
from tritonship.cli import main
from tritonship.cloud.aws import describe
from tritonship.sagemaker import local_aws

HTML_500 = (
    "<!doctype html>\n<html lang=en>\n<title>500 Internal Server Error</title>\n"
    "<h1>Internal Server Error</h1>\n<p>The server encountered an internal error</p>\n"
)


def client_error(operation: str, code: str = "500", message: str = HTML_500) -> ClientError:
    response = {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {}}
    return ClientError(response, operation)  # type: ignore[arg-type]


@pytest.fixture()
def local_aws_env(monkeypatch: pytest.MonkeyPatch) -> str:
    for name in ("AWS_ENDPOINT_URL_SAGEMAKER", "AWS_ENDPOINT_URL_SERVICE_QUOTAS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:5000")
    return "http://127.0.0.1:5000"


@pytest.mark.parametrize(
    ("operation", "says"),
    [
        ("UpdateEndpoint", "moto does not implement UpdateEndpoint"),
        ("ListServiceQuotas", "moto does not implement ListServiceQuotas"),
        ("InvokeEndpoint", "moto's InvokeEndpoint runs no model"),
        ("CreateSomething", "the local AWS stand-in does not answer CreateSomething"),
    ],
)
def test_a_500_page_from_a_local_endpoint_names_the_missing_call(local_aws_env, operation, says):
    line = describe(client_error(operation))
    assert line.startswith(says)
    assert "http://127.0.0.1:5000 is a local stand-in, not AWS; see docs/deploying.md" in line
    assert "<" not in line and "\n" not in line


def test_the_same_answer_from_aws_stays_what_it_is(monkeypatch: pytest.MonkeyPatch):
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SAGEMAKER"):
        monkeypatch.delenv(name, raising=False)
    assert local_aws.explain(client_error("UpdateEndpoint")) is None
    monkeypatch.setenv("AWS_ENDPOINT_URL", "https://proxy.example.com")
    assert local_aws.explain(client_error("UpdateEndpoint")) is None


def test_real_error_codes_from_a_local_endpoint_are_not_blamed_on_the_stand_in(local_aws_env):
    denied = client_error("UpdateEndpoint", "ValidationException", "Could not find endpoint")
    assert local_aws.explain(denied) is None
    assert describe(denied) == "ValidationException: Could not find endpoint"
    assert local_aws.explain(client_error("UpdateEndpoint", "NotImplemented", "no"))


def test_the_service_specific_variable_decides(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "https://proxy.example.com")
    monkeypatch.setenv("AWS_ENDPOINT_URL_SERVICE_QUOTAS", "http://localhost:5001")
    assert "localhost:5001" in (local_aws.explain(client_error("ListServiceQuotas")) or "")
    assert local_aws.explain(client_error("UpdateEndpoint")) is None


# --- the real commands against a moto server -------------------------------------------------


@pytest.fixture()
def shipped(aws_env: str, packaged: PackageResult) -> PackageResult:
    """The role, the bucket, and an endpoint promoted once (moto: InService at once)."""
    boto3.client("iam", region_name="us-east-1").create_role(
        RoleName="tritonship-endpoint", AssumeRolePolicyDocument=json.dumps(TRUST)
    )
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_public_access_block(Bucket=BUCKET, PublicAccessBlockConfiguration=ALL_BLOCKED)
    return packaged


def promote_args(archive: Path, *extra: str) -> list[str]:
    return [
        *["promote", "--endpoint", "demo", "--bucket", BUCKET, "--role", ROLE],
        *["--archive", str(archive), "--quiet", "--poll", "0.01", *extra],
    ]


def test_promote_against_moto_says_what_moto_lacks(shipped: PackageResult, capsys):
    """The quota warning, then a variant promote (UpdateEndpoint): one line each."""
    assert main(promote_args(shipped.archive)) == 0
    err = capsys.readouterr().err
    quota = "WARNING: the instance quota not checked: moto does not implement ListServiceQuotas"
    assert quota in err
    assert "<!doctype" not in err.lower()
    assert main(promote_args(shipped.archive, "--variant", "candidate", "--weight", "0.1")) == 1
    err = capsys.readouterr().err
    [error] = [line for line in err.splitlines() if line.startswith("tritonship: error:")]
    assert "moto does not implement UpdateEndpoint" in error and "docs/deploying.md" in error
    assert "<" not in err


@pytest.mark.parametrize(
    ("form", "says"),
    [
        ("binary", "moto's InvokeEndpoint runs no model"),
        ("json", "answered moto's canned placeholder, not a model's output"),
    ],
)
def test_invoke_endpoint_against_moto_says_no_model_answers(
    shipped: PackageResult, tmp_path: Path, capsys, form: str, says: str
):
    from tritonship.samples import photo_jpeg

    assert main(promote_args(shipped.archive, "--skip-smoke-test")) == 0
    capsys.readouterr()
    photo = tmp_path / "cat.jpg"
    photo.write_bytes(photo_jpeg("chelsea"))
    assert main(["invoke", str(photo), "--endpoint", "demo", "--format", form]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("tritonship: error: ")
    assert says in err and "docs/deploying.md" in err
