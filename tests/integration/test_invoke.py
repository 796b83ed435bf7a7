"""Invocation over HTTP and through the local SageMaker runtime with unmodified boto3."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import numpy as np
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.integration.conftest import RUNTIME_ENDPOINT, Endpoint
from tritonship import cli
from tritonship.bench.hostile import corrupt_jpeg
from tritonship.repository.config import load_repository
from tritonship.repository.labels import load_labels
from tritonship.sagemaker.client import HttpTransport, SageMakerTransport, classify
from tritonship.sagemaker.wire import decode_response, encode_request
from tritonship.samples import photo_jpeg

NAME = RUNTIME_ENDPOINT


@pytest.fixture()
def sagemaker_runtime(runtime: str):
    """An unmodified boto3 client pointed at the local runtime (fake credentials)."""
    return boto3.client(
        "sagemaker-runtime",
        endpoint_url=runtime,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106
        config=Config(retries={"max_attempts": 1}),
    )


def test_http_and_boto3_give_the_same_probabilities(endpoint: Endpoint, sagemaker_runtime):
    images = {"chelsea": photo_jpeg("chelsea")}
    over_http = classify(HttpTransport(endpoint.url), images, k=1001)
    over_boto3 = classify(SageMakerTransport(NAME, client=sagemaker_runtime), images, k=1001)
    http_top, boto3_top = over_http[0].predictions, over_boto3[0].predictions
    assert [p.index for p in http_top] == [p.index for p in boto3_top]
    np.testing.assert_allclose(
        [p.probability for p in http_top], [p.probability for p in boto3_top], atol=1e-6
    )


def test_boto3_passes_the_content_type_both_ways(sagemaker_runtime):
    request = encode_request([photo_jpeg("coffee")])
    response = sagemaker_runtime.invoke_endpoint(
        EndpointName=NAME, Body=request.body, ContentType=request.content_type
    )
    assert response["ContentType"].startswith("application/vnd.sagemaker-triton.binary+json")
    assert response["InvokedProductionVariant"] == "AllTraffic"
    output = decode_response(response["Body"].read(), response["ContentType"])
    assert output.shape == (1, 1001)


def test_binary_and_json_agree_through_the_runtime(sagemaker_runtime):
    images = {"rocket": photo_jpeg("rocket")}
    transport = SageMakerTransport(NAME, client=sagemaker_runtime)
    binary = classify(transport, images, binary=True, k=10)[0].predictions
    as_json = classify(transport, images, binary=False, k=10)[0].predictions
    assert [p.index for p in binary] == [p.index for p in as_json]


def test_oversized_payload_is_refused_like_sagemaker(sagemaker_runtime, endpoint: Endpoint):
    with pytest.raises(ClientError) as info:
        sagemaker_runtime.invoke_endpoint(
            EndpointName=NAME, Body=bytes(6_291_457), ContentType="application/json"
        )
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
    assert "content length exceeded 6291456 bytes" in str(info.value)
    assert classify(HttpTransport(endpoint.url), {"a": photo_jpeg("astronaut")}, k=1)


def test_container_error_reaches_boto3_as_model_error(sagemaker_runtime):
    request = encode_request([corrupt_jpeg()])  # past the guard step, refused by DALI
    with pytest.raises(sagemaker_runtime.exceptions.ModelError) as info:
        sagemaker_runtime.invoke_endpoint(
            EndpointName=NAME, Body=request.body, ContentType=request.content_type
        )
    response = info.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert response["OriginalStatusCode"] == 400
    assert "decoders.image" in response["OriginalMessage"]
    assert "Received client error (400) from primary" in response["Error"]["Message"]


def test_unknown_endpoint_name_is_a_validation_error(sagemaker_runtime):
    with pytest.raises(ClientError) as info:
        sagemaker_runtime.invoke_endpoint(
            EndpointName="nope", Body=b"{}", ContentType="application/json"
        )
    assert info.value.response["Error"]["Code"] == "ValidationError"


@pytest.fixture()
def photo(tmp_path: Path) -> Path:
    path = tmp_path / "chelsea.jpg"
    path.write_bytes(photo_jpeg("chelsea"))
    return path


def test_cli_table_names_labels_from_the_labels_file(endpoint: Endpoint, photo: Path, capsys):
    labels = load_labels(load_repository(endpoint.repository))
    top1 = classify(HttpTransport(endpoint.url), {"c": photo.read_bytes()}, k=1, labels=labels)[
        0
    ].predictions[0]
    assert (
        cli.main(["invoke", str(photo), "--url", endpoint.url, "--repo", str(endpoint.repository)])
        == 0
    )
    out = capsys.readouterr().out
    assert "chelsea.jpg" in out and top1.label in out and " ms" in out


def test_cli_json_parses(endpoint: Endpoint, photo: Path, capsys):
    assert (
        cli.main(
            [
                "invoke",
                str(photo),
                str(photo),
                "--url",
                endpoint.url,
                "--json",
                "--format",
                "json",
                "--top-k",
                "3",
                "--repo",
                str(endpoint.repository),
            ]
        )
        == 0
    )
    rows = json.loads(capsys.readouterr().out)
    assert [len(row["top"]) for row in rows] == [3, 3]
    assert rows[0]["top"] == rows[1]["top"]
    assert rows[0]["latency_ms"] > 0


def test_cli_reaches_the_local_runtime_through_boto3_without_credentials(
    runtime: str, endpoint: Endpoint, photo: Path, monkeypatch, tmp_path: Path, capsys
):
    for variable in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
    ):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_ENDPOINT_URL", runtime)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    assert (
        cli.main(
            ["invoke", str(photo), "--endpoint", NAME, "--json", "--repo", str(endpoint.repository)]
        )
        == 0
    )
    assert len(json.loads(capsys.readouterr().out)[0]["top"]) == 5


def test_cli_reports_a_refused_image_in_one_line(endpoint: Endpoint, tmp_path: Path, capsys):
    bad = tmp_path / "notes.txt"
    bad.write_text("not an image")
    assert (
        cli.main(["invoke", str(bad), "--url", endpoint.url, "--repo", str(endpoint.repository)])
        == 1
    )
    err = capsys.readouterr().err
    assert "answered 400" in err and "Traceback" not in err
