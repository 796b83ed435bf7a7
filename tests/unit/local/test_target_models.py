"""The local runtime as SageMaker's multi-model platform, against a stub of the MME API.

The stub container answers the SageMaker frontend's multi-model API as tritonserver does
(server v2.51.0 src/sagemaker_server.cc): ``POST /models`` loads (400 on a folder it cannot
load, 507 on out of memory, 409 on a name loaded already), ``POST /models/<name>/invoke``
answers 404 for a name it has not loaded. It reads the unpacked files through the
``/opt/ml/models`` path the runtime sends, mapped to the test's folder. boto3 reaches the
runtime as in tests/unit/local/test_runtime.py.
"""

from __future__ import annotations

import io
import json
import logging
import tarfile
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.support.servers import QuietHandler, serving
from tritonship.errors import UsageError
from tritonship.local.endpoint import (
    ServeOptions,
    multi_model_config,
    multi_model_lines,
    server_models_dir,
)
from tritonship.local.runtime import (
    RuntimeConfig,
    RuntimeServer,
    check_target_model,
    target_model_reply,
)
from tritonship.local.runtime import main as runtime_main
from tritonship.local.runtime_proxy import RuntimeProxy
from tritonship.local.target_models import (
    TARGET_MODEL,
    ContainerUnreachable,
    FolderModelData,
    LoadFailed,
    ModelDataMissing,
    ModelNotReady,
    MultiModelConfig,
    S3ModelData,
    TargetModels,
    model_data,
    model_hash,
)
from tritonship.sagemaker.settings import EnvSources, sagemaker_env

NAME = "mme-endpoint"
CONTAINER_MODELS = "/opt/ml/models"
DEADLINE = 0.5  # the runtime's 60 s, shortened


# --- the stub container -------------------------------------------------------------------


@dataclass
class Container:
    """What the stub has loaded and seen; ``release`` holds loads while it is unset."""

    host_models: Path
    loaded: dict[str, str] = field(default_factory=dict)
    loads: list[tuple[str, str, str | None]] = field(default_factory=list)
    invokes: list[tuple[str, str | None]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    load_seen: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.release.set()

    def host_path(self, url: str) -> Path:
        """The folder the server would read for ``url`` (it sees /opt/ml/models)."""
        return self.host_models / Path(url).relative_to(CONTAINER_MODELS)


class ContainerHandler(QuietHandler):
    """The multi-model routes of sagemaker_server.cc, with the status codes it sends."""

    protocol_version = "HTTP/1.1"
    server: ContainerServer

    def do_GET(self) -> None:  # noqa: N802 - http.server API
        """``/ping`` (live) and ``GET /models``."""
        if self.path == "/ping":
            self.reply(200, b"")
            return
        models = [{"modelName": k, "modelUrl": v} for k, v in self.server.state.loaded.items()]
        self.reply(200, json.dumps({"models": models}).encode())

    def do_POST(self) -> None:  # noqa: N802 - http.server API
        """``POST /models`` (load) or ``POST /models/<name>/invoke``."""
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path == "/models":
            self._load(json.loads(body))
        elif self.path.startswith("/models/") and self.path.endswith("/invoke"):
            self._invoke(self.path.split("/")[2])
        else:
            self.reply(400, b"")

    def _load(self, request: dict[str, str]) -> None:
        state = self.server.state
        name, url = request["model_name"], request["url"]
        with state.lock:
            state.loads.append((name, url, self.headers.get(TARGET_MODEL)))
        state.load_seen.set()
        state.release.wait(30)
        if name in state.loaded:  # "If a model_name is reused ... return a 409"
            self.reply(409, b'{"error":"already loaded"}')
            return
        problem = _load_problem(state.host_path(url))
        if problem:  # SageMakerMMEHandleOOMError: 507 on out of memory, else 400
            status = 507 if "out of memory" in problem else 400
            self.reply(status, json.dumps({"error": problem}).encode())
            return
        state.loaded[name] = url
        self.reply(200, b"")

    def _invoke(self, name: str) -> None:
        state = self.server.state
        target = self.headers.get(TARGET_MODEL)
        with state.lock:
            state.invokes.append((name, target))
        if name not in state.loaded:  # INVOKE MODEL: 404 when the hash is not in its list
            self.reply(404, b"")
            return
        self.reply(200, json.dumps({"model_name": target, "outputs": []}).encode())


def _load_problem(folder: Path) -> str | None:
    """Why the stub cannot load the repository at ``folder``: Triton reads its configs."""
    configs = sorted(folder.glob("*/config.pbtxt"))
    if not configs:
        return f"failed to load model from {folder}: no model found"
    text = "".join(config.read_text() for config in configs)
    if "out_of_memory" in text:
        return "failed to load: CUDA out of memory"
    if "unknown_backend" in text:
        return "failed to load: unable to find backend library for 'unknown_backend'"
    return None


class ContainerServer(ThreadingHTTPServer):
    """The stub container."""

    daemon_threads = True

    def __init__(self, host_models: Path) -> None:
        super().__init__(("127.0.0.1", 0), ContainerHandler)
        self.state = Container(host_models)


# --- archives -----------------------------------------------------------------------------


def write_archive(path: Path, members: dict[str, bytes]) -> Path:
    """A ``.tar.gz`` holding ``members`` (name -> content)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return path


def ensemble(backend: str = "python") -> dict[str, bytes]:
    """A two-model repository: an ensemble and its step."""
    return {
        "ensemble_a/config.pbtxt": b'name: "ensemble_a"\nplatform: "ensemble"\n',
        "step/config.pbtxt": f'name: "step"\nbackend: "{backend}"\n'.encode(),
        "step/1/model.py": b"# the step\n",
    }


@pytest.fixture()
def prefix(tmp_path: Path) -> Path:
    """A model data folder: two good archives and three bad ones."""
    root = tmp_path / "prefix"
    write_archive(root / "model_a.tar.gz", ensemble())
    write_archive(root / "nested/model_b.tar.gz", ensemble())
    write_archive(root / "refused.tar.gz", ensemble("unknown_backend"))
    write_archive(root / "too_big.tar.gz", ensemble("out_of_memory"))
    write_archive(root / "unsafe.tar.gz", {"../escaped.txt": b"x", **ensemble()})
    (root / "not_gzip.tar.gz").write_bytes(b"this is not a gzip file at all")
    write_archive(tmp_path / "outside.tar.gz", ensemble())  # reachable only with '..'
    return root


# --- the runtime in front of the stub -------------------------------------------------------


@dataclass
class Mme:
    """A multi-model runtime, its stub container and a boto3 client for it."""

    client: Any
    container: Container
    models_dir: Path
    upstream: str  # the stub container

    def invoke(self, target: str | None = None, **extra: Any) -> dict[str, Any]:
        """InvokeEndpoint with ``TargetModel=target`` (none if None); the parsed answer."""
        if target is not None:
            extra["TargetModel"] = target
        answer = self.client.invoke_endpoint(
            EndpointName=NAME, Body=b"{}", ContentType="application/json", **extra
        )
        return {**answer, "Body": json.loads(answer["Body"].read())}


def runtime_client(session: boto3.session.Session, url: str) -> Any:
    """A sagemaker-runtime client of the runtime at ``url`` (fake credentials)."""
    config = Config(retries={"max_attempts": 1}, read_timeout=30)
    return session.client("sagemaker-runtime", endpoint_url=url, config=config)


def start_mme(
    stack: ExitStack,
    tmp_path: Path,
    location: str,
    multi_model: bool = True,
    deadline: float = DEADLINE,
):
    """Serve the stub and a runtime of ``location`` (multi-model unless told otherwise)."""
    models_dir = tmp_path / "models"
    container = ContainerServer(models_dir)
    upstream = stack.enter_context(serving(container))
    stack.callback(container.state.release.set)  # runs first: frees a held load
    mme = MultiModelConfig(location, models_dir, CONTAINER_MODELS) if multi_model else None
    config = RuntimeConfig(upstream, endpoint_name=NAME, timeout=deadline, multi_model=mme)
    url = stack.enter_context(serving(RuntimeServer(("127.0.0.1", 0), config)))
    return container.state, models_dir, upstream, url


@pytest.fixture()
def mme(prefix: Path, tmp_path: Path, session: boto3.session.Session) -> Iterator[Mme]:
    """A multi-model runtime over the ``prefix`` folder."""
    with ExitStack() as stack:
        container, models_dir, upstream, url = start_mme(stack, tmp_path, str(prefix))
        yield Mme(runtime_client(session, url), container, models_dir, upstream)


def error_of(call, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """The botocore error of a call that must fail: code, status, message and the rest."""
    with pytest.raises(ClientError) as caught:
        call(*args, **kwargs)
    response = caught.value.response
    return {
        **response,
        "Code": response["Error"]["Code"],
        "Status": response["ResponseMetadata"]["HTTPStatusCode"],
        "Message": response["Error"]["Message"],
    }


# --- pure parts -------------------------------------------------------------------------------


def test_the_hash_is_one_stable_folder_name_per_target_model() -> None:
    first = model_hash("model_tf_dali.tar.gz")
    assert first == model_hash("model_tf_dali.tar.gz")
    assert first != model_hash("model_onnx_dali.tar.gz")
    assert len(first) == 32
    assert set(first) <= set("0123456789abcdef")


def test_an_mme_refuses_a_call_without_target_model() -> None:
    config = RuntimeConfig("http://x", endpoint_name=NAME, multi_model=_mme_config())
    reply = check_target_model(config, None, "req-1")
    assert reply is not None
    assert (reply.status, reply.headers["x-amzn-ErrorType"]) == (400, "ValidationError")
    assert json.loads(reply.body)["message"] == "Request req-1 is missing a target model header."
    assert check_target_model(config, "model.tar.gz", "req-1") is None


def test_a_single_model_endpoint_refuses_a_target_model() -> None:
    reply = check_target_model(RuntimeConfig("http://x", endpoint_name=NAME), "m.tar.gz", "r")
    assert reply is not None
    assert (reply.status, reply.headers["x-amzn-ErrorType"]) == (400, "ValidationError")
    assert json.loads(reply.body) == {
        "ErrorCode": "TARGET_MODEL_HEADER_NOT_SUPPORTED",
        "Message": f"Endpoint {NAME} is not a multi-model endpoint and does not support "
        "target model header.",
    }
    assert check_target_model(RuntimeConfig("http://x"), None, "r") is None


def test_load_errors_become_sagemakers_replies() -> None:
    config = RuntimeConfig("http://x", endpoint_name=NAME, multi_model=_mme_config())
    missing = target_model_reply(config, "m.tar.gz", ModelDataMissing("bucket: b, key: p/m"))
    assert (missing.status, missing.headers["x-amzn-ErrorType"]) == (400, "ValidationError")
    assert json.loads(missing.body)["message"].startswith(
        "Failed to download model data(bucket: b, key: p/m) for target model m.tar.gz. "
        "Please ensure that there is an object located at the URL"
    )
    refused = target_model_reply(config, "m.tar.gz", LoadFailed(507, '{"error":"OOM"}'))
    payload = json.loads(refused.body)
    assert (refused.status, refused.headers["x-amzn-ErrorType"]) == (424, "ModelError")
    assert (payload["OriginalStatusCode"], payload["OriginalMessage"]) == (507, '{"error":"OOM"}')
    busy = target_model_reply(config, "m.tar.gz", ModelNotReady("loading"))
    assert (busy.status, busy.headers["x-amzn-ErrorType"]) == (429, "ModelNotReadyException")
    assert "m.tar.gz is still being downloaded or loaded" in json.loads(busy.body)["Message"]
    gone = target_model_reply(config, "m.tar.gz", ContainerUnreachable("refused"))
    assert (gone.status, gone.headers["x-amzn-ErrorType"]) == (503, "ServiceUnavailable")


def test_model_data_is_a_folder_or_an_s3_prefix() -> None:
    assert model_data("dist/models") == FolderModelData(Path("dist/models"))
    s3 = model_data("s3://bucket/some/prefix/")
    assert isinstance(s3, S3ModelData)
    assert (s3.bucket, s3.key("a/m.tar.gz")) == ("bucket", "some/prefix/a/m.tar.gz")
    assert S3ModelData("bucket", "no-slash").key("m.tar.gz") == "no-slash/m.tar.gz"
    assert S3ModelData("bucket", "").key("m.tar.gz") == "m.tar.gz"
    for bad in ("s3:///prefix/", "https://example.com/models/"):
        with pytest.raises(UsageError):
            model_data(bad)


def test_a_folder_prefix_finds_archives_and_nothing_outside_it(prefix: Path, tmp_path: Path):
    source = FolderModelData(prefix)
    assert source.fetch("nested/model_b.tar.gz", tmp_path) == prefix / "nested/model_b.tar.gz"
    for target in ("absent.tar.gz", "../outside.tar.gz", str(tmp_path / "outside.tar.gz")):
        with pytest.raises(ModelDataMissing):
            source.fetch(target, tmp_path)


def _mme_config(tmp: Path = Path("/unused")) -> MultiModelConfig:
    return MultiModelConfig(str(tmp), tmp, CONTAINER_MODELS)


# --- through boto3 ----------------------------------------------------------------------------


def test_the_first_call_unpacks_and_loads_and_later_calls_hit(mme: Mme) -> None:
    answer = mme.invoke("model_a.tar.gz")
    name = model_hash("model_a.tar.gz")
    assert answer["Body"] == {"model_name": "model_a.tar.gz", "outputs": []}
    assert mme.container.loads == [(name, f"{CONTAINER_MODELS}/{name}/model", "model_a.tar.gz")]
    assert (mme.models_dir / name / "model" / "ensemble_a" / "config.pbtxt").is_file()
    assert not (mme.models_dir / name / ".archive.tar.gz").exists()
    mme.invoke("model_a.tar.gz")
    assert len(mme.container.loads) == 1  # a hit
    assert mme.container.invokes == [(name, "model_a.tar.gz")] * 2
    assert answer["InvokedProductionVariant"] == "AllTraffic"


def test_target_models_are_paths_under_the_prefix(mme: Mme) -> None:
    mme.invoke("nested/model_b.tar.gz")
    mme.invoke("model_a.tar.gz")
    assert {load[2] for load in mme.container.loads} == {"nested/model_b.tar.gz", "model_a.tar.gz"}


def test_concurrent_first_calls_share_one_load(mme: Mme, prefix: Path) -> None:
    config = MultiModelConfig(str(prefix), mme.models_dir, CONTAINER_MODELS)
    models = TargetModels(config, mme.upstream)
    mme.container.release.clear()  # every caller asks while the first load is held
    barrier = threading.Barrier(8)
    futures: list[Any] = []

    def ask() -> None:
        barrier.wait()
        futures.append(models.load("model_a.tar.gz"))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(future is futures[0] for future in futures)
    mme.container.release.set()
    assert futures[0].result(timeout=10) == model_hash("model_a.tar.gz")
    assert len(mme.container.loads) == 1


def test_concurrent_first_invocations_load_once(mme: Mme) -> None:
    errors: list[BaseException] = []

    def call() -> None:
        try:
            mme.invoke("model_a.tar.gz")
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=call) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(mme.container.loads) == 1
    assert len(mme.container.invokes) == 6


def test_a_load_that_outlasts_the_deadline_is_model_not_ready_and_goes_on(mme: Mme) -> None:
    mme.container.release.clear()
    error = error_of(mme.invoke, "model_a.tar.gz")
    assert (error["Code"], error["Status"]) == ("ModelNotReadyException", 429)
    assert "still being downloaded or loaded" in error["Message"]
    assert mme.container.load_seen.is_set()
    mme.container.release.set()
    assert mme.invoke("model_a.tar.gz")["Body"]["model_name"] == "model_a.tar.gz"
    assert len(mme.container.loads) == 1  # the retry waited for the same load


def test_a_missing_target_model_header_is_a_validation_error(mme: Mme) -> None:
    error = error_of(mme.invoke)
    request_id = error["ResponseMetadata"]["RequestId"]
    assert (error["Code"], error["Status"]) == ("ValidationError", 400)
    assert error["Message"] == f"Request {request_id} is missing a target model header."
    assert mme.container.loads == []


def test_an_unknown_target_model_is_a_validation_error_naming_the_file(
    mme: Mme, prefix: Path
) -> None:
    for target in ("absent.tar.gz", "../outside.tar.gz"):
        error = error_of(mme.invoke, target)
        assert (error["Code"], error["Status"]) == ("ValidationError", 400)
        assert error["Message"].startswith(
            f"Failed to download model data(file: {prefix / target}) for target model {target}."
        )
    assert mme.container.loads == []
    assert list(mme.models_dir.glob("*")) == []  # nothing unpacked, no folder left


@pytest.mark.parametrize(
    ("target", "status", "words"),
    [
        ("not_gzip.tar.gz", 400, "not a readable tar archive"),
        ("unsafe.tar.gz", 400, "climbs out of the archive"),
        ("refused.tar.gz", 400, "unable to find backend library"),
        ("too_big.tar.gz", 507, "CUDA out of memory"),
    ],
)
def test_a_corrupt_archive_is_a_model_error_and_the_others_keep_working(
    mme: Mme, tmp_path: Path, target: str, status: int, words: str
) -> None:
    mme.invoke("model_a.tar.gz")
    error = error_of(mme.invoke, target)
    assert (error["Code"], error["Status"]) == ("ModelError", 424)
    assert error["OriginalStatusCode"] == status
    assert words in error["OriginalMessage"]
    assert not (mme.models_dir / model_hash(target)).exists()  # nothing left behind
    assert not (tmp_path / "escaped.txt").exists()
    assert not (mme.models_dir / "escaped.txt").exists()
    assert mme.invoke("model_a.tar.gz")["Body"]["model_name"] == "model_a.tar.gz"
    assert mme.invoke("nested/model_b.tar.gz")["Body"]["model_name"] == "nested/model_b.tar.gz"


def test_a_failed_load_is_not_recorded_the_next_call_tries_again(mme: Mme) -> None:
    error_of(mme.invoke, "refused.tar.gz")
    error_of(mme.invoke, "refused.tar.gz")
    assert [load[2] for load in mme.container.loads] == ["refused.tar.gz"] * 2


def test_a_model_the_server_has_already_counts_as_loaded(mme: Mme) -> None:
    name = model_hash("model_a.tar.gz")
    mme.container.loaded[name] = "loaded by an earlier runtime"
    assert mme.invoke("model_a.tar.gz")["Body"]["model_name"] == "model_a.tar.gz"  # 409 = ok


def test_a_restarted_server_gets_the_model_loaded_again(mme: Mme) -> None:
    mme.invoke("model_a.tar.gz")
    mme.container.loaded.clear()  # the server restarted: it knows no model
    assert mme.invoke("model_a.tar.gz")["Body"]["model_name"] == "model_a.tar.gz"
    assert len(mme.container.loads) == 2


def test_the_payload_limit_and_ping_still_apply(mme: Mme) -> None:
    import requests

    error = error_of(
        mme.client.invoke_endpoint,
        EndpointName=NAME,
        Body=b"x" * (6_291_456 + 1),
        TargetModel="model_a.tar.gz",
    )
    assert error["Status"] == 413
    assert mme.container.loads == []
    runtime_url = mme.client.meta.endpoint_url
    assert requests.get(f"{runtime_url}/ping", timeout=5).status_code == 200


def test_the_log_says_which_model_loaded_and_how_long_it_took(
    mme: Mme, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="tritonship.local.runtime"):
        mme.invoke("model_a.tar.gz")
        error_of(mme.invoke, "refused.tar.gz")
    text = caplog.text
    assert f"loaded target model model_a.tar.gz as {model_hash('model_a.tar.gz')} in " in text
    assert "could not load target model refused.tar.gz: 400" in text


def test_a_single_model_runtime_refuses_target_model_through_boto3(
    tmp_path: Path, session: boto3.session.Session
) -> None:
    with ExitStack() as stack:
        container, _, _, url = start_mme(stack, tmp_path, "", multi_model=False)
        client = runtime_client(session, url)
        error = error_of(
            client.invoke_endpoint, EndpointName=NAME, Body=b"{}", TargetModel="m.tar.gz"
        )
    assert (error["Code"], error["Status"]) == ("ValidationError", 400)
    assert "is not a multi-model endpoint" in error["Message"]
    assert container.loads == container.invokes == []


# --- an S3 prefix (moto) ------------------------------------------------------------------


@pytest.fixture()
def s3_prefix(aws_env: str, prefix: Path) -> str:
    """The folder's good archives uploaded under s3://models-bucket/mme/."""
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="models-bucket")
    for name in ("model_a.tar.gz", "nested/model_b.tar.gz", "not_gzip.tar.gz"):
        s3.upload_file(str(prefix / name), "models-bucket", f"mme/{name}")
    return "s3://models-bucket/mme/"


def test_an_s3_prefix_downloads_what_is_there_and_names_what_is_not(
    s3_prefix: str, tmp_path: Path
) -> None:
    source = model_data(s3_prefix)
    archive = source.fetch("nested/model_b.tar.gz", tmp_path / "scratch")
    with tarfile.open(archive) as tar:
        assert tar.getnames()[0] == "ensemble_a/config.pbtxt"
    with pytest.raises(ModelDataMissing) as caught:
        source.fetch("absent.tar.gz", tmp_path / "scratch2")
    assert caught.value.location == "bucket: models-bucket, key: mme/absent.tar.gz"
    assert not (tmp_path / "scratch2" / ".archive.tar.gz").exists()


def test_an_s3_prefix_through_the_runtime(
    s3_prefix: str, tmp_path: Path, session: boto3.session.Session
) -> None:
    with ExitStack() as stack:
        # A real deadline: the download from the moto server is not what is timed here.
        container, models_dir, _, url = start_mme(stack, tmp_path, s3_prefix, deadline=60.0)
        client = runtime_client(session, url)
        mme = Mme(client, container, models_dir, "")
        assert mme.invoke("nested/model_b.tar.gz")["Body"]["model_name"] == "nested/model_b.tar.gz"
        missing = error_of(mme.invoke, "absent.tar.gz")
        corrupt = error_of(mme.invoke, "not_gzip.tar.gz")
        assert mme.invoke("model_a.tar.gz")["Body"]["model_name"] == "model_a.tar.gz"
    assert missing["Code"] == "ValidationError"
    assert "(bucket: models-bucket, key: mme/absent.tar.gz)" in missing["Message"]
    assert (corrupt["Code"], corrupt["OriginalStatusCode"]) == ("ModelError", 400)
    assert len(container.loads) == 2


# --- serve's wiring ----------------------------------------------------------------------------


class _Engine:
    url = "http://127.0.0.1:1"


class _MappedEngine(_Engine):
    container_models_dir = CONTAINER_MODELS


def test_serve_gives_the_runtime_the_prefix_and_both_views_of_the_models_folder(
    prefix: Path, tmp_path: Path
) -> None:
    env = sagemaker_env(EnvSources(multi_model=True), environ={})
    options = ServeOptions(models_dir=tmp_path / "models", model_data=str(prefix))
    mapped = multi_model_config(options, env, _MappedEngine())
    assert mapped == MultiModelConfig(str(prefix.resolve()), tmp_path / "models", CONTAINER_MODELS)
    host = server_models_dir(_Engine(), tmp_path / "models")
    assert host == str(tmp_path / "models")  # no mapping: the server reads the host folder
    s3 = ServeOptions(model_data="s3://bucket/models/")
    assert multi_model_config(s3, env, _Engine()).model_data == "s3://bucket/models/"


def test_serve_refuses_model_data_it_cannot_use(tmp_path: Path) -> None:
    single = sagemaker_env(EnvSources(), environ={})
    multi = sagemaker_env(EnvSources(multi_model=True), environ={})
    with pytest.raises(UsageError, match="--multi-model"):
        multi_model_config(ServeOptions(model_data=str(tmp_path)), single, _Engine())
    assert multi_model_config(ServeOptions(), single, _Engine()) is None
    with pytest.raises(UsageError, match="does not exist"):
        multi_model_config(ServeOptions(model_data=str(tmp_path / "no")), multi, _Engine())
    no_runtime = ServeOptions(model_data=str(tmp_path / "no"), runtime_port=0)
    assert multi_model_config(no_runtime, multi, _Engine()) is None, (
        "without the runtime the client drives /models itself (NVIDIA's tests do)"
    )


def test_serve_names_the_target_models_a_folder_holds(prefix: Path, tmp_path: Path) -> None:
    lines = multi_model_lines(MultiModelConfig(str(prefix), tmp_path, CONTAINER_MODELS))
    assert "TargetModel='model_a.tar.gz'" in lines[1]
    assert f"(the server sees {CONTAINER_MODELS})" in lines[1]
    assert "model_a.tar.gz, nested/model_b.tar.gz" in lines[2]


def test_only_a_runtime_that_reads_s3_gets_the_credentials(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")

    def environ(location: str) -> dict[str, str]:
        config = MultiModelConfig(location, tmp_path, CONTAINER_MODELS)
        return RuntimeProxy("http://x", 1, run_dir=tmp_path, multi_model=config)._environ()

    assert environ("s3://bucket/models/")["AWS_SECRET_ACCESS_KEY"] == "secret"
    assert "AWS_SECRET_ACCESS_KEY" not in environ(str(tmp_path))
    assert "AWS_SECRET_ACCESS_KEY" not in RuntimeProxy("http://x", 1, run_dir=tmp_path)._environ()


def test_the_runtime_process_needs_both_folders_with_model_data() -> None:
    with pytest.raises(SystemExit) as caught:
        runtime_main(["--upstream", "http://x", "--port", "1", "--model-data", "dist/models"])
    assert caught.value.code == 2
