"""promote --multi-model against a local moto server: one model on an S3 prefix, many archives.

The model's container is ``Mode=MultiModel`` with ``ModelDataUrl`` a prefix ending in "/";
every archive goes under it (its name is the TargetModel); a promote that only adds an
archive to an endpoint already serving the same model uploads it and makes no
CreateModel, CreateEndpointConfig, CreateEndpoint or UpdateEndpoint call (AWS guide "Add
or Remove Models"). moto's InvokeEndpoint answers a canned placeholder unless an answer
is queued (tests/support/aws.py); its Service Quotas are stubbed as in test_promote_moto.
"""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber

from tests.support.aws import BUCKET, MOTO_WAITING, queue_invoke_answer, with_quotas
from tests.support.foreign import add_sub_repository, ensembles_repository
from tests.support.stubs import ROLE
from tritonship.artifact.multimodel import package_multi_model
from tritonship.artifact.package import PackageResult
from tritonship.cli import main
from tritonship.cloud import aws
from tritonship.cloud.aws import make_clients
from tritonship.cloud.endpoints import Waiting
from tritonship.cloud.planning import preview
from tritonship.cloud.promote import apply, build_plan
from tritonship.cloud.state import PromoteOptions
from tritonship.cloud.teardown import teardown
from tritonship.errors import DeployError, TritonshipError

PREFIX = "tritonship/mme/models/"
WRITES = {"CreateModel", "CreateEndpointConfig", "CreateEndpoint", "UpdateEndpoint"}


@pytest.fixture(scope="module")
def archives(tmp_path_factory: pytest.TempPathFactory) -> dict[str, PackageResult]:
    """chain, lone and single: the ensembles repository split for a multi-model endpoint."""
    repo = ensembles_repository(tmp_path_factory.mktemp("ensembles") / "repo")
    results = package_multi_model(repo, tmp_path_factory.mktemp("models"), progress=False)
    return {result.archive.name: result for result in results}


def promote(archives: list[Path], handed: list[Stubber], calls: list[str] | None = None, **extra):
    """promote --multi-model of ``archives`` to endpoint ``mme``; SageMaker calls recorded."""
    options = PromoteOptions(
        "mme", BUCKET, ROLE, multi_model=True, archives=tuple(archives), **extra
    )
    plan = build_plan(options, "us-east-1")
    clients = with_quotas(make_clients("us-east-1"), handed)
    if calls is not None:
        clients.sagemaker.meta.events.register(
            "before-call.sagemaker",
            lambda model, **_: calls.append(model.name),
        )
    said: list[str] = []
    return plan, apply(plan, clients, MOTO_WAITING, progress=False, say=said.append), clients, said


def keys(s3, prefix: str = PREFIX) -> list[str]:
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])
    return sorted(item["Key"] for item in listed)


def test_the_model_is_multi_model_on_a_prefix_holding_every_archive(
    archives: dict[str, PackageResult], bucket: str, quotas: list[Stubber]
) -> None:
    given = [archives["single.tar.gz"].archive, archives["chain.tar.gz"].archive]
    plan, result, clients, _ = promote(given, quotas)
    assert result.action == "created"
    container = clients.sagemaker.describe_model(ModelName=plan.model_name)["PrimaryContainer"]
    assert container["Mode"] == "MultiModel"
    assert container["ModelDataUrl"] == f"s3://{BUCKET}/{PREFIX}"
    assert container["Environment"]["SAGEMAKER_MULTI_MODEL"] == "true"
    assert "SAGEMAKER_TRITON_DEFAULT_MODEL_NAME" not in container["Environment"]
    assert keys(clients.s3) == [
        f"{PREFIX}chain.manifest.json",
        f"{PREFIX}chain.tar.gz",
        f"{PREFIX}single.manifest.json",
        f"{PREFIX}single.tar.gz",
    ]
    head = clients.s3.head_object(Bucket=BUCKET, Key=f"{PREFIX}chain.tar.gz")
    assert head["Metadata"]["archive-sha256"] == archives["chain.tar.gz"].sha256
    assert head["ContentLength"] == archives["chain.tar.gz"].size
    assert not result.smoke.verified and "placeholder" in result.smoke.detail
    arn = clients.sagemaker.describe_model(ModelName=plan.model_name)["ModelArn"]
    tags = clients.sagemaker.list_tags(ResourceArn=arn)["Tags"]
    assert {t["Key"] for t in tags} == {"tritonship:managed", "tritonship:endpoint"}


def test_adding_an_archive_is_an_upload_with_no_endpoint_update(
    archives: dict[str, PackageResult], bucket: str, quotas: list[Stubber]
) -> None:
    first_plan, _, clients, _ = promote([archives["single.tar.gz"].archive], quotas)
    before = clients.sagemaker.describe_endpoint(EndpointName="mme")
    calls: list[str] = []
    plan, result, _, said = promote([archives["lone.tar.gz"].archive], quotas, calls)
    assert (plan.model_name, plan.config_name) == (first_plan.model_name, first_plan.config_name)
    assert not WRITES & set(calls), calls
    assert (result.action, result.uploaded) == ("models added", True)
    assert any("uploaded lone.tar.gz" in line and "no endpoint update" in line for line in said)
    after = clients.sagemaker.describe_endpoint(EndpointName="mme")
    assert after["EndpointConfigName"] == before["EndpointConfigName"]
    assert len(clients.sagemaker.list_models()["Models"]) == 1
    assert f"{PREFIX}lone.tar.gz" in keys(clients.s3)
    assert f"{PREFIX}single.tar.gz" in keys(clients.s3), "the first archive stays"


def test_a_failed_smoke_test_of_an_added_archive_deletes_that_upload(
    archives: dict[str, PackageResult], aws_env: str, bucket: str, quotas: list[Stubber]
) -> None:
    promote([archives["single.tar.gz"].archive], quotas, smoke_test=False)
    queue_invoke_answer(aws_env, json.dumps({"model_name": "lone", "outputs": []}))
    with pytest.raises(DeployError, match=r"no OUTPUT0, OUTPUT1; deleted s3://.*lone.tar.gz"):
        promote([archives["lone.tar.gz"].archive], quotas)
    s3 = boto3.client("s3", region_name="us-east-1")
    assert keys(s3) == [f"{PREFIX}single.manifest.json", f"{PREFIX}single.tar.gz"]
    sm = boto3.client("sagemaker", region_name="us-east-1")
    assert sm.describe_endpoint(EndpointName="mme")["EndpointStatus"] == "InService"


def test_an_archive_of_the_same_name_is_never_overwritten(
    archives: dict[str, PackageResult], bucket: str, quotas: list[Stubber], tmp_path: Path
) -> None:
    promote([archives["lone.tar.gz"].archive], quotas, smoke_test=False)
    s3 = boto3.client("s3", region_name="us-east-1")
    before = s3.head_object(Bucket=BUCKET, Key=f"{PREFIX}lone.tar.gz")
    other = add_sub_repository(tmp_path / "other", ("lone",))
    (other / "lone" / "notes.txt").write_text("a second version\n")
    (changed,) = package_multi_model(other, tmp_path / "out", progress=False)
    with pytest.raises(TritonshipError, match="holds another archive.*--suffix _v2"):
        promote([changed.archive], quotas, smoke_test=False)
    after = s3.head_object(Bucket=BUCKET, Key=f"{PREFIX}lone.tar.gz")
    assert after["ETag"] == before["ETag"]


def test_teardown_keeps_the_archives_unless_asked(
    archives: dict[str, PackageResult], bucket: str, quotas: list[Stubber]
) -> None:
    given = [archives["single.tar.gz"].archive, archives["lone.tar.gz"].archive]
    _, _, clients, _ = promote(given, quotas, smoke_test=False)
    clients.s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}theirs.tar.gz", Body=b"not ours")
    report = teardown(clients, "mme", waiting=MOTO_WAITING)
    assert sorted(report.kept) == [
        f"s3://{BUCKET}/{PREFIX}{name}"
        for name in ("lone.manifest.json", "lone.tar.gz", "single.manifest.json", "single.tar.gz")
    ]
    assert len(keys(clients.s3)) == 5


def test_teardown_deletes_the_archives_promote_uploaded_under_the_prefix(
    archives: dict[str, PackageResult], bucket: str, quotas: list[Stubber]
) -> None:
    given = [archives["single.tar.gz"].archive, archives["lone.tar.gz"].archive]
    _, _, clients, _ = promote(given, quotas, smoke_test=False)
    clients.s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}theirs.tar.gz", Body=b"not ours")
    report = teardown(clients, "mme", delete_artifacts=True, waiting=MOTO_WAITING)
    for name in ("single.tar.gz", "single.manifest.json", "lone.tar.gz", "lone.manifest.json"):
        assert f"s3://{BUCKET}/{PREFIX}{name}" in report.deleted
    assert keys(clients.s3) == [f"{PREFIX}theirs.tar.gz"], "what promote did not upload stays"
    assert clients.sagemaker.list_models()["Models"] == []


def test_the_dry_run_of_an_added_archive_shows_no_endpoint_write(
    archives: dict[str, PackageResult], bucket: str, quotas: list[Stubber]
) -> None:
    _, _, clients, _ = promote([archives["single.tar.gz"].archive], quotas, smoke_test=False)
    options = PromoteOptions(
        "mme", BUCKET, ROLE, multi_model=True, archives=(archives["lone.tar.gz"].archive,)
    )
    lines, calls = preview(build_plan(options, "us-east-1"), clients, Waiting(0.01, 2))
    assert "the archives are the whole change, an upload with no endpoint update" in lines[-1]
    assert not any(c.startswith(("sagemaker.create_", "sagemaker.update_")) for c in calls)
    assert any(
        c.startswith("no create_model, create_endpoint_config or update_endpoint") for c in calls
    )
    assert any("TargetModel=lone.tar.gz" in c for c in calls)


def test_cli_promote_multi_model_then_teardown(
    archives: dict[str, PackageResult],
    bucket: str,
    quotas: list[Stubber],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    real = aws.make_clients
    monkeypatch.setattr(
        aws, "make_clients", lambda region, attempts=5: with_quotas(real(region, attempts), quotas)
    )
    folder = archives["lone.tar.gz"].archive.parent
    argv = ["--endpoint", "mme", "--bucket", BUCKET]
    flags = [
        "--role",
        ROLE,
        "--multi-model",
        "--archives",
        str(folder),
        "--quiet",
        "--poll",
        "0.01",
    ]
    assert main(["promote", *argv, *flags]) == 0
    out = capsys.readouterr().out
    assert "endpoint mme (us-east-1): created" in out
    assert f"multi-model: ModelDataUrl s3://{BUCKET}/{PREFIX} (Mode=MultiModel)" in out
    for name in ("chain", "lone", "single"):
        assert f"archive s3://{BUCKET}/{PREFIX}{name}.tar.gz (uploaded, TargetModel={name}" in out
    assert main(["teardown", *argv, "--delete-artifacts"]) == 0
    assert "deleted 9 resource(s)" in capsys.readouterr().out  # endpoint, config, model, 3 x 2
    assert (
        boto3.client("s3", region_name="us-east-1").list_objects_v2(Bucket=BUCKET)["KeyCount"] == 0
    )
    del quotas[1:]  # the teardown's client: teardown never asks Service Quotas
