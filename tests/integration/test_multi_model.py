"""The multi-model round trip: two ensembles as target models of one native endpoint.

As AWS's notebook serves this DALI + Inception ensemble as a multi-model endpoint (AWS
guide "Custom containers contract for multi-model endpoints"), the session's TensorFlow
build and its ONNX build are packaged, one archive each, under one model data prefix (a
folder, then a moto S3 prefix), and ``serve --multi-model`` runs the real tritonserver
with the local runtime in SageMaker's part.
boto3 invokes each archive by ``TargetModel``: the first call loads it (it appears in the
container's ``GET /models``), later calls hit it, and an unknown archive, a corrupt one and
one the server refuses answer as SageMaker would, leaving both good models working.
"""

from __future__ import annotations

import io
import re
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from tritonship.artifact.package import package_repository
from tritonship.local.endpoint import LocalEndpoint, ServeOptions
from tritonship.local.engine import free_port
from tritonship.local.target_models import model_hash
from tritonship.sagemaker.settings import EnvSources
from tritonship.sagemaker.wire import decode_response, encode_request
from tritonship.samples import photo_jpeg

ENDPOINT = "mme-local"
TF, ONNX = "model_tf_dali.tar.gz", "model_onnx_dali.tar.gz"
GOOD = (TF, ONNX)
#: A tar.gz file that is not one, and a repository the server cannot load (no such backend).
CORRUPT, REFUSED = "corrupt.tar.gz", "refused.tar.gz"
#: ModelNotReadyException answers: SageMaker's guide says to retry; a load goes on for up
#: to 360 s, so six 60 s calls cover it.
NOT_READY_RETRIES = 6


@pytest.fixture(scope="module")
def model_prefix(
    built_repository: Path, onnx_repository: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """One archive per ensemble (as ``package --multi-model`` writes), plus two bad ones."""
    prefix = tmp_path_factory.mktemp("model-data")
    for repo, name in ((built_repository, TF), (onnx_repository, ONNX)):
        package_repository(repo, prefix / name, allow_random_weights=True, progress=False)
    (prefix / CORRUPT).write_bytes(b"this is no gzip archive\n")
    config = b'name: "broken"\nbackend: "no_such_backend"\nmax_batch_size: 0\n'
    with tarfile.open(prefix / REFUSED, "w:gz") as tar:
        info = tarfile.TarInfo("broken/config.pbtxt")
        info.size = len(config)
        tar.addfile(info, io.BytesIO(config))
    return prefix


@contextmanager
def multi_model_endpoint(repo: Path, model_data: str, run_dir: Path) -> Iterator[LocalEndpoint]:
    """``tritonship serve --multi-model --model-data ...`` on the native engine; stopped."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TRITONSHIP_RUN_DIR", str(run_dir))
        options = ServeOptions(
            repo=repo,
            engine="native",
            port=free_port(),
            runtime_port=free_port(),
            endpoint_name=ENDPOINT,
            env_sources=EnvSources(multi_model=True),
            models_dir=run_dir / "models",
            model_data=model_data,
            timeout=180,
        )
        endpoint = LocalEndpoint.open(options)
        try:
            yield endpoint
        finally:
            endpoint.stop()


def runtime_client(endpoint: LocalEndpoint) -> Any:
    """boto3's sagemaker-runtime client of the local runtime (fake credentials)."""
    assert endpoint.runtime is not None
    session = boto3.session.Session(
        region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    config = Config(retries={"max_attempts": 1}, read_timeout=90)
    return session.client("sagemaker-runtime", endpoint_url=endpoint.runtime.url, config=config)


def classify(client: Any, target: str) -> np.ndarray:
    """The cat photo through ``target``; retried on ModelNotReadyException, as AWS advises."""
    request = encode_request([photo_jpeg("chelsea")])
    for _ in range(NOT_READY_RETRIES):
        try:
            answer = client.invoke_endpoint(
                EndpointName=ENDPOINT,
                TargetModel=target,
                Body=request.body,
                ContentType=request.content_type,
            )
        except client.exceptions.ModelNotReadyException:
            continue
        return decode_response(answer["Body"].read(), answer["ContentType"])
    pytest.fail(f"{target} was not ready after {NOT_READY_RETRIES} calls")


def assert_probabilities(output: np.ndarray) -> None:
    """One softmax row over Inception's 1001 classes."""
    assert output.shape == (1, 1001)
    assert np.all(output >= 0)
    assert output.sum() == pytest.approx(1.0, abs=1e-3)


def listed(endpoint: LocalEndpoint) -> dict[str, str]:
    """What the container has loaded: model name (the hash) -> the folder it loaded.

    Read per model with ``GET /models/<hash>``: ``GET /models`` shows a model loaded under
    its TargetModel name as ``{}``, since it asks Triton whether the *hash* is ready
    (server v2.51.0 src/sagemaker_server.cc, SageMakerMMEListModel); its length still counts
    the loaded models.
    """
    base = endpoint.engine.url
    entries = requests.get(f"{base}/models", timeout=10).json()["models"]
    found = {}
    candidates = [*GOOD, CORRUPT, REFUSED, "absent.tar.gz"]
    for name in (model_hash(target) for target in candidates):
        answer = requests.get(f"{base}/models/{name}", timeout=10)
        if answer.status_code == 200:
            found[answer.json()["modelName"]] = answer.json()["modelUrl"]
        else:
            assert answer.status_code == 404  # "not loaded" (SageMakerMMEGetModel)
    assert len(entries) == len(found)
    return found


def loads(endpoint: LocalEndpoint, target: str) -> int:
    """How often the server was asked to load ``target`` (its log says each time)."""
    log = Path(endpoint.engine.log_location).read_text(errors="replace")
    return len(re.findall(rf'Loading SageMaker TargetModel: {re.escape(target)}"?$', log, re.M))


def models_url(endpoint: LocalEndpoint, target: str) -> str:
    """The folder the server is told to load ``target`` from (the server's own path)."""
    assert endpoint.multi_model is not None
    root = endpoint.multi_model.container_models_dir
    expected = getattr(endpoint.engine, "container_models_dir", None) or str(
        endpoint.multi_model.models_dir
    )
    assert root == expected  # /opt/ml/models where the engine maps it, else the host folder
    return f"{root}/{model_hash(target)}/model"


def client_error(call: Any, **kwargs: Any) -> dict[str, Any]:
    """The botocore error of a call that must fail."""
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    return caught.value.response


def test_each_target_model_loads_on_first_use_and_is_hit_afterwards(
    built_repository: Path, model_prefix: Path, tmp_path: Path
) -> None:
    with multi_model_endpoint(built_repository, str(model_prefix), tmp_path) as endpoint:
        client = runtime_client(endpoint)
        assert listed(endpoint) == {}
        for target in GOOD:
            assert_probabilities(classify(client, target))
            assert listed(endpoint)[model_hash(target)] == models_url(endpoint, target)
            assert loads(endpoint, target) == 1
            assert_probabilities(classify(client, target))  # a hit: no second load
            assert loads(endpoint, target) == 1
        assert set(listed(endpoint)) == {model_hash(t) for t in GOOD}
        log = endpoint.runtime.log_path.read_text() if endpoint.runtime else ""
    for target in GOOD:
        assert log.count(f"loaded target model {target} as {model_hash(target)} in ") == 1


def test_errors_answer_as_sagemaker_and_the_good_models_keep_working(
    built_repository: Path, model_prefix: Path, tmp_path: Path
) -> None:
    with multi_model_endpoint(built_repository, str(model_prefix), tmp_path) as endpoint:
        client = runtime_client(endpoint)
        invoke = client.invoke_endpoint
        assert_probabilities(classify(client, TF))
        body = {"EndpointName": ENDPOINT, "Body": b"{}", "ContentType": "application/json"}

        unknown = client_error(invoke, TargetModel="absent.tar.gz", **body)
        assert unknown["Error"]["Code"] == "ValidationError"
        assert unknown["Error"]["Message"].startswith(
            f"Failed to download model data(file: {model_prefix.resolve() / 'absent.tar.gz'})"
        )
        missing = client_error(invoke, **body)
        assert missing["Error"]["Code"] == "ValidationError"
        assert "is missing a target model header" in missing["Error"]["Message"]

        corrupt = client_error(invoke, TargetModel=CORRUPT, **body)
        refused = client_error(invoke, TargetModel=REFUSED, **body)
        for error in (corrupt, refused):
            assert (error["Error"]["Code"], error["OriginalStatusCode"]) == ("ModelError", 400)
        assert "not a readable tar archive" in corrupt["OriginalMessage"]
        assert (
            f"load failed for model '{models_url(endpoint, REFUSED)}" in refused["OriginalMessage"]
        )  # the server's own words
        assert loads(endpoint, REFUSED) == 1 and loads(endpoint, CORRUPT) == 0

        assert set(listed(endpoint)) == {model_hash(TF)}  # failures are not loaded
        models_dir = endpoint.multi_model.models_dir if endpoint.multi_model else Path()
        for target in ("absent.tar.gz", CORRUPT, REFUSED):
            assert not (models_dir / model_hash(target)).exists()
        for target in GOOD:
            assert_probabilities(classify(client, target))
        assert set(listed(endpoint)) == {model_hash(t) for t in GOOD}


def test_target_models_from_an_s3_prefix(
    aws_env: str, built_repository: Path, model_prefix: Path, tmp_path: Path
) -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="mme-models")
    for target in GOOD:
        s3.upload_file(str(model_prefix / target), "mme-models", f"ensembles/{target}")
    prefix = "s3://mme-models/ensembles/"
    with multi_model_endpoint(built_repository, prefix, tmp_path) as endpoint:
        client = runtime_client(endpoint)
        for target in GOOD:
            assert_probabilities(classify(client, target))
        unknown = client_error(
            client.invoke_endpoint, EndpointName=ENDPOINT, Body=b"{}", TargetModel="absent.tar.gz"
        )
        assert set(listed(endpoint)) == {model_hash(t) for t in GOOD}
    assert unknown["Error"]["Code"] == "ValidationError"
    message = unknown["Error"]["Message"]
    assert message.startswith("Failed to download model data(bucket: mme-models, key: ")
    assert "key: ensembles/absent.tar.gz)" in message
