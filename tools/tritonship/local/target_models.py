"""The platform's half of a multi-model endpoint (MME): find, unpack and load target models.

On SageMaker, ``InvokeEndpoint(TargetModel=T)`` of a multi-model endpoint names the archive
``T`` under the model's S3 prefix (``ModelDataUrl``). On the first call for ``T`` the
platform downloads it, unpacks it into ``/opt/ml/models/<hash>/model`` and asks the
container to load it (``POST /models``); every call then goes to ``POST
/models/<hash>/invoke`` (AWS guide "Custom containers contract for multi-model endpoints";
server r24.09 ``src/sagemaker_server.cc``). :class:`TargetModels` plays that part for the
local runtime, against a local folder or an S3 prefix (moto works through
``AWS_ENDPOINT_URL``):

- each target model is loaded once, however many first calls arrive together;
- a load that fails (no archive, an archive that cannot be unpacked safely, a model the
  server refuses) is not recorded and leaves no folder behind; the next call tries again;
- a server that no longer knows a loaded model (it was restarted) gets it loaded again.

Not imitated: SageMaker unloads the least recently used models when the instance runs
short of memory (``DELETE /models/<hash>``; on GPU instances a 507 from the container makes
it unload unused models and load again, AWS guide "Invoke a Multi-Model Endpoint"), and it
spreads models over several instances. Here every model stays loaded until the server
stops, and a 507 comes back to the caller as a ``ModelError``.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import logging
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

import requests

from tritonship.artifact.unpack import UnsafeArchive, safe_extract
from tritonship.errors import UsageError

#: The header of InvokeEndpoint's ``TargetModel``; SageMaker passes it on to the container,
#: whose frontend names the loaded model after it (server v2.51.0 src/sagemaker_server.cc,
#: ParseSageMakerRequest and SageMakerMMELoadModel).
TARGET_MODEL = "X-Amzn-SageMaker-Target-Model"
#: Where the archive's content goes inside ``<models_dir>/<hash>/`` (the path the
#: frontend's model_path_regex_ splits: /opt/ml/models/<hash>/model[/<subdir>]).
MODEL_SUBDIR = "model"
#: A downloaded archive, kept only until it is unpacked.
DOWNLOAD_NAME = ".archive.tar.gz"
#: How long a load may go on: "the model continues to download and load into the inference
#: container for up to 360 seconds" after the call's 60 s (AWS guide "Invoke a Multi-Model
#: Endpoint", Retry Requests on ModelNotReadyException Errors).
LOAD_TIMEOUT_SECONDS = 360.0
CONNECT_TIMEOUT_SECONDS = 5.0
#: The container's answer when a model name is mapped already (sagemaker_server.cc,
#: SageMakerMMELoadModel: "If a model_name is reused ... return a 409").
ALREADY_LOADED = 409

log = logging.getLogger("tritonship.local.runtime")


def model_hash(target_model: str) -> str:
    """The folder and model name SageMaker gives a target model in the container.

    SageMaker derives a hash from the target model and does not document how; 32 hex
    digits of SHA-256 keep one folder per target model, stable across runs.
    """
    return hashlib.sha256(target_model.encode("utf-8")).hexdigest()[:32]


@dataclass(frozen=True)
class MultiModelConfig:
    """Where target models come from and go to."""

    model_data: str  # a folder or s3://bucket/prefix/: the model's ModelDataUrl
    models_dir: Path  # where this machine unpacks them
    container_models_dir: str  # the same folder as the server sees it (/opt/ml/models)


# --- errors: what the runtime answers (tritonship.local.runtime turns them into replies) --


class TargetModelError(Exception):
    """A target model could not be made ready."""


class ModelDataMissing(TargetModelError):
    """No archive at ``location`` (or it may not be read)."""

    def __init__(self, location: str, reason: str = "") -> None:
        super().__init__(location)
        self.location, self.reason = location, reason


class LoadFailed(TargetModelError):
    """The archive cannot be unpacked, or the server refused it: ``status`` and its message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class ContainerUnreachable(TargetModelError):
    """The container did not answer the load at all."""


class ModelNotReady(TargetModelError):
    """The load still runs when the request's time is up."""


# --- the model data prefix ----------------------------------------------------------------


class ModelData(Protocol):
    """A model data prefix: where target models are looked up."""

    def fetch(self, target_model: str, scratch: Path) -> Path:
        """The archive of ``target_model`` as a local file (downloaded into ``scratch``)."""

    def describe(self) -> str:
        """The prefix, for the user."""


@dataclass(frozen=True)
class FolderModelData:
    """Target models are files under a local folder."""

    root: Path

    def location(self, target_model: str) -> Path:
        """Where ``target_model``'s archive would be."""
        return self.root / target_model

    def fetch(self, target_model: str, scratch: Path) -> Path:
        """The archive itself; nothing outside the folder is ever read."""
        root = self.root.resolve()
        path = (root / target_model).resolve()
        if not path.is_relative_to(root) or not path.is_file():
            raise ModelDataMissing(f"file: {self.location(target_model)}")
        return path

    def describe(self) -> str:
        """The folder."""
        return str(self.root)


class S3ModelData:
    """Target models are objects under an S3 prefix, read with boto3."""

    def __init__(self, bucket: str, prefix: str) -> None:
        """``prefix``: the key prefix, e.g. ``models/`` (may be empty)."""
        self.bucket, self.prefix = bucket, prefix
        self._lock = threading.Lock()
        self._client = None

    def key(self, target_model: str) -> str:
        """The object key of ``target_model``: the prefix, then the relative path."""
        if self.prefix and not self.prefix.endswith("/"):
            return f"{self.prefix}/{target_model}"
        return f"{self.prefix}{target_model}"

    def fetch(self, target_model: str, scratch: Path) -> Path:
        """Download the object into ``scratch``."""
        from botocore.exceptions import BotoCoreError, ClientError

        key = self.key(target_model)
        dest = scratch / DOWNLOAD_NAME
        scratch.mkdir(parents=True, exist_ok=True)
        try:
            self.client().download_file(self.bucket, key, str(dest))
        except (ClientError, BotoCoreError) as err:
            dest.unlink(missing_ok=True)
            raise ModelDataMissing(f"bucket: {self.bucket}, key: {key}", str(err)) from err
        return dest

    def client(self):  # noqa: ANN201 - a boto3 client, imported lazily
        """One S3 client, made on first use (clients are thread-safe; making one is not)."""
        with self._lock:
            if self._client is None:
                import boto3

                from tritonship.sagemaker.settings import aws_region

                session = boto3.session.Session()
                self._client = session.client("s3", region_name=aws_region() or "us-east-1")
            return self._client

    def describe(self) -> str:
        """The ``s3://`` URL."""
        return f"s3://{self.bucket}/{self.prefix}"


def model_data(location: str | Path) -> ModelData:
    """The model data prefix ``location`` names: ``s3://bucket/prefix/`` or a folder."""
    text = str(location)
    if text.startswith("s3://"):
        parts = urlsplit(text)
        if not parts.netloc:
            raise UsageError(f"{text} names no bucket", hint="e.g. s3://my-bucket/models/")
        return S3ModelData(parts.netloc, parts.path.lstrip("/"))
    if "://" in text:
        raise UsageError(f"{text} is neither a folder nor an s3:// prefix")
    return FolderModelData(Path(text))


# --- loading ------------------------------------------------------------------------------


class TargetModels:
    """The target models one endpoint has loaded in its container, loaded on first use."""

    def __init__(self, config: MultiModelConfig, upstream: str) -> None:
        """``upstream``: the container's base URL."""
        self.config = config
        self.source = model_data(config.model_data)
        self.upstream = upstream
        self._lock = threading.Lock()
        self._loads: dict[str, concurrent.futures.Future[str]] = {}

    def load(self, target_model: str) -> concurrent.futures.Future[str]:
        """The load of ``target_model``: the one that ran or runs, or a new one.

        Every caller gets the same load until it fails (then the next call tries again)
        or is forgotten; its result is the container's name for the model.
        """
        with self._lock:
            load = self._loads.get(target_model)
            if load is None or (load.done() and load.exception() is not None):
                load = self._start(target_model)
            return load

    def ready(self, load: concurrent.futures.Future[str], deadline: float) -> str:
        """Wait for ``load`` until ``deadline`` (``time.monotonic()``); return the name.

        Raises :class:`ModelNotReady` when time is up (the load goes on), else the load's
        own error.
        """
        try:
            return load.result(timeout=max(0.0, deadline - time.monotonic()))
        except concurrent.futures.TimeoutError:
            raise ModelNotReady("the load is still running") from None

    def forget(self, target_model: str, load: concurrent.futures.Future[str]) -> None:
        """The server no longer has what ``load`` loaded (it was restarted): load anew.

        Only that load is forgotten: a newer one, started by a concurrent request, stays.
        """
        with self._lock:
            if self._loads.get(target_model) is load:
                del self._loads[target_model]

    def _start(self, target_model: str) -> concurrent.futures.Future[str]:
        future: concurrent.futures.Future[str] = concurrent.futures.Future()
        self._loads[target_model] = future

        def run() -> None:
            try:
                future.set_result(self._load(target_model))
            except BaseException as err:  # the waiting requests report it
                future.set_exception(err)

        # A daemon thread: a load in progress must not keep the runtime from stopping.
        threading.Thread(target=run, name=f"load {target_model}", daemon=True).start()
        return future

    def _load(self, target_model: str) -> str:
        """Fetch, unpack and load ``target_model``; on any failure leave nothing behind."""
        name = model_hash(target_model)
        folder = self.config.models_dir / name
        started = time.monotonic()
        log.info("loading target model %s (%s) from %s", target_model, name, self.source.describe())
        shutil.rmtree(folder, ignore_errors=True)  # a stale copy from an earlier run
        try:
            self._unpack(target_model, folder)
            unpacked = time.monotonic() - started
            self._post_load(target_model, name)
        except BaseException as err:
            shutil.rmtree(folder, ignore_errors=True)
            log.warning("could not load target model %s: %s", target_model, _describe(err))
            raise
        seconds = time.monotonic() - started
        log.info(
            "loaded target model %s as %s in %.2f s (unpacked in %.2f s)",
            target_model,
            name,
            seconds,
            unpacked,
        )
        return name

    def _unpack(self, target_model: str, folder: Path) -> None:
        archive = self.source.fetch(target_model, folder)
        try:
            safe_extract(archive, folder / MODEL_SUBDIR)
        except UnsafeArchive as err:
            # SageMaker's answer to an archive it cannot unpack is not documented; answer as
            # the container answers a model it cannot load (400, sagemaker_server.cc
            # SageMakerMMEHandleOOMError), with the reason.
            raise LoadFailed(400, f"cannot unpack {target_model}: {err}") from err
        finally:
            if archive.parent == folder:
                archive.unlink(missing_ok=True)

    def _post_load(self, target_model: str, name: str) -> None:
        """``POST /models`` as SageMaker sends it; 200 and 409 (loaded already) are success."""
        url = f"{self.config.container_models_dir.rstrip('/')}/{name}/{MODEL_SUBDIR}"
        try:
            answer = requests.post(
                f"{self.upstream}/models",
                json={"model_name": name, "url": url},
                headers={TARGET_MODEL: target_model},
                timeout=(CONNECT_TIMEOUT_SECONDS, LOAD_TIMEOUT_SECONDS),
            )
        except requests.Timeout as err:
            raise ContainerUnreachable(
                f"{self.upstream} did not finish loading {target_model} within "
                f"{LOAD_TIMEOUT_SECONDS:.0f} s"
            ) from err
        except requests.RequestException as err:
            raise ContainerUnreachable(f"{self.upstream}: {err}") from err
        if answer.status_code not in (200, ALREADY_LOADED):
            raise LoadFailed(answer.status_code, answer.text or answer.reason)


def _describe(err: BaseException) -> str:
    if isinstance(err, ModelDataMissing):
        return f"no archive ({err.location}){f': {err.reason}' if err.reason else ''}"
    if isinstance(err, LoadFailed):
        return f"{err.status} {err.message}"
    return f"{type(err).__name__}: {err}"
