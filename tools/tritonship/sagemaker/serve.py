"""The SageMaker Triton image's ``serve`` entry point, as a pure function.

SageMaker starts the image as ``docker run IMAGE serve``; ``/usr/bin/serve`` (source:
``docker/sagemaker/serve`` in github.com/triton-inference-server/server) maps ``SAGEMAKER_*``
variables to tritonserver flags and refuses some repository layouts. The native engine uses
:func:`serve_args` so that it starts tritonserver exactly as the container would, and
:func:`serve_env` for the variables the server itself reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from tritonship.errors import TritonshipError, Where
from tritonship.sagemaker.images import parse_tag

DEFAULT_MODEL_VAR = "SAGEMAKER_TRITON_DEFAULT_MODEL_NAME"
#: The fixed flags of the script's final ``tritonserver`` command line.
BASE_FLAGS = ("--allow-sagemaker=true", "--allow-http=false", "--model-control-mode=explicit")
#: Where SageMaker puts the model archive, and the script's ``--model-repository``
#: (``SAGEMAKER_SINGLE_MODEL_REPO``, docker/sagemaker/serve r24.09 L28; trailing slash theirs).
CONTAINER_MODEL_DIR = "/opt/ml/model/"
#: Where SageMaker unpacks each target model of a multi-model endpoint, as
#: ``/opt/ml/models/<hash>/model`` (server r24.09 src/sagemaker_server.cc).
CONTAINER_MODELS_DIR = "/opt/ml/models"
#: Where the script points ``--model-repository`` in multi-model mode (it mkdirs it).
MULTI_MODEL_REPOSITORY = Path("/tmp/sagemaker")  # noqa: S108 - the image's own path
PING_MODE_VAR = "SAGEMAKER_TRITON_PING_MODE"
OVERRIDE_PING_MODE_VAR = "SAGEMAKER_TRITON_OVERRIDE_PING_MODE"

#: ``(variable, flag, default)`` in the script's order; no default: only when set (non-empty).
_FLAGS: tuple[tuple[str, str, str | None], ...] = (
    ("SAGEMAKER_TRITON_DISABLE_MODEL_NAMESPACING", "--model-namespacing", "true"),
    ("SAGEMAKER_BIND_TO_PORT", "--sagemaker-port", None),
    ("SAGEMAKER_SAFE_PORT_RANGE", "--sagemaker-safe-port-range", None),
    ("SAGEMAKER_TRITON_ALLOW_GRPC", "--allow-grpc", "false"),
    ("SAGEMAKER_TRITON_ALLOW_METRICS", "--allow-metrics", "false"),
    ("SAGEMAKER_TRITON_METRICS_PORT", "--metrics-port", None),
    ("SAGEMAKER_TRITON_GRPC_PORT", "--grpc-port", None),
    ("SAGEMAKER_TRITON_BUFFER_MANAGER_THREAD_COUNT", "--buffer-manager-thread-count", None),
    ("SAGEMAKER_TRITON_THREAD_COUNT", "--sagemaker-thread-count", None),
    ("SAGEMAKER_TRITON_LOG_VERBOSE", "--log-verbose", "true"),
    ("SAGEMAKER_TRITON_LOG_INFO", "--log-info", None),
    ("SAGEMAKER_TRITON_LOG_WARNING", "--log-warning", None),
    ("SAGEMAKER_TRITON_LOG_ERROR", "--log-error", None),
    (
        "SAGEMAKER_TRITON_SHM_DEFAULT_BYTE_SIZE",
        "--backend-config=python,shm-default-byte-size",
        "16777216",
    ),
    (
        "SAGEMAKER_TRITON_SHM_GROWTH_BYTE_SIZE",
        "--backend-config=python,shm-growth-byte-size",
        "1048576",
    ),
    ("SAGEMAKER_TRITON_TENSORFLOW_VERSION", "--backend-config=tensorflow,version", None),
)
_INFERENCE_TYPES = ("infer", "generate", "generate_stream")
#: The first release whose ``serve`` checks SAGEMAKER_TRITON_INFERENCE_TYPE
#: (docker/sagemaker/serve, r25.03 L143-155; absent from r25.02 and older).
INFERENCE_TYPE_SINCE = "25.03"


class ServeRefused(TritonshipError):
    """The ``serve`` script would exit 1 before starting tritonserver."""


def serve_args(
    env: Mapping[str, str],
    model_dir: Path,
    gpu_count: int = 0,
    image_tag: str | None = None,
    repository: str | Path | None = None,
) -> list[str]:
    """Return the tritonserver arguments (without the program) ``serve`` would use.

    ``env`` holds the ``SAGEMAKER_*`` variables; ``model_dir`` is the host folder that
    stands for ``/opt/ml/model``, on which the script's checks run; ``repository`` is the
    ``--model-repository`` value as the server sees it (default: ``model_dir``, or
    ``/tmp/sagemaker`` in multi-model mode; the native engine passes ``/opt/ml/model/``
    where it maps the container's paths). ``gpu_count`` replaces the script's ``nvidia-smi
    -L`` count; ``image_tag`` picks the script's release (None: the newest rules). Raises
    :class:`ServeRefused` where the script exits 1. Like the script's unquoted
    ``$SAGEMAKER_ARGS``, values are split on whitespace (so
    ``SAGEMAKER_TRITON_ADDITIONAL_ARGS`` may hold several flags).
    """
    multi_model = is_multi_model(env)
    if repository is None:
        repository = MULTI_MODEL_REPOSITORY if multi_model else model_dir
    flags = _variable_flags(env, gpu_count)
    if not multi_model:
        _check_layout(model_dir)
    check_inference_type(env, image_tag)
    if not multi_model:
        flags.append(f"--load-model={default_model_name(env, model_dir)}")
    return [*BASE_FLAGS, f"--model-repository={repository}", *flags]


def serve_env(env: Mapping[str, str], model_dir: Path) -> dict[str, str]:
    """Return the variables tritonserver sees: ``env`` as the script changes them.

    The server reads ``SAGEMAKER_TRITON_DEFAULT_MODEL_NAME`` to route ``/invocations``; the
    script exports it when it picks the only model folder itself (r24.09 L158). The ping
    mode: see :func:`ping_mode`.
    """
    exported = dict(env)
    if not is_multi_model(env):
        exported[DEFAULT_MODEL_VAR] = default_model_name(env, model_dir)
    if PING_MODE_VAR in env:
        exported[PING_MODE_VAR] = ping_mode(env)
    return exported


def ping_mode(env: Mapping[str, str]) -> str:
    """The ``SAGEMAKER_TRITON_PING_MODE`` the script computes (docker/sagemaker/serve r24.09).

    L32-36: ``SAGEMAKER_TRITON_OVERRIDE_PING_MODE`` when non-empty, else "ready"; L49-57: in
    multi-model mode the override, else "live". The script assigns the variable without
    ``export``, so tritonserver (which reads it, default "ready": src/sagemaker_server.h
    L83-84) sees the computed value only when the variable was already in the container's
    environment (bash then updates the exported copy); otherwise the server sees nothing
    and pings in "ready" mode, in either hosting mode. :func:`serve_env` does the same.
    """
    override = _value(env, OVERRIDE_PING_MODE_VAR)
    if override:
        return override
    return "live" if is_multi_model(env) else "ready"


def is_multi_model(env: Mapping[str, str]) -> bool:
    """Whether the script runs in multi-model mode (``SAGEMAKER_MULTI_MODEL`` exactly "true")."""
    return _value(env, "SAGEMAKER_MULTI_MODEL") == "true"


def default_model_name(env: Mapping[str, str], model_dir: Path) -> str:
    """Return the model ``/invocations`` serves, applying the script's refusal rules."""
    name = _value(env, DEFAULT_MODEL_VAR)
    if name:
        if not (model_dir / name).is_dir():
            raise ServeRefused(
                f"{DEFAULT_MODEL_VAR}={name}, but {model_dir}/{name} is not a directory",
                hint=f"set {DEFAULT_MODEL_VAR} to one of: {', '.join(model_dirs(model_dir))}",
            )
        return name
    if not model_dir.is_dir():
        raise ServeRefused(
            f"model repository {model_dir} does not exist",
            hint="build it first (tritonship build) or pass --repo",
        )
    found = model_dirs(model_dir)
    if len(found) == 1:
        return found[0]
    if not found:
        raise ServeRefused(
            f"no model found in model repository {model_dir}",
            hint="build the repository first (tritonship build)",
        )
    raise ServeRefused(
        f"more than 1 model directory in {model_dir} ({', '.join(found)}) and "
        f"{DEFAULT_MODEL_VAR} is not set",
        hint=f"set {DEFAULT_MODEL_VAR} to the model /invocations should serve",
    )


def load_env_file(path: Path) -> dict[str, str]:
    """Read a Docker-style env file: ``KEY=VALUE`` lines, ``#`` comments, blank lines.

    An optional ``export`` prefix and one pair of matching surrounding quotes are removed;
    nothing is interpolated. A malformed line raises :class:`TritonshipError`.
    """
    values: dict[str, str] = {}
    for number, raw in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.removeprefix("export ").partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise TritonshipError(
                f"expected KEY=VALUE, got {raw!r}",
                hint="fix or comment out that line",
                where=Where(path, number),
            )
        values[key] = _unquote(value.strip())
    return values


def _variable_flags(env: Mapping[str, str], gpu_count: int) -> list[str]:
    """Map the variables to flags, in the script's order."""
    flags = [
        f"{flag}={_value(env, var) or default}"
        for var, flag, default in _FLAGS
        if _value(env, var) or default is not None
    ]
    limit = _value(env, "SAGEMAKER_TRITON_MODEL_LOAD_GPU_LIMIT")
    if limit:
        for gpu in range(gpu_count):
            flags += ["--model-load-gpu-limit", f"{gpu}:{limit}"]
    flags.append(_value(env, "SAGEMAKER_TRITON_ADDITIONAL_ARGS"))
    return [word for flag in flags for word in flag.split()]


def _check_layout(model_dir: Path) -> None:
    """Refuse a repository packed one level too deep or too shallow."""
    if (model_dir / "config.pbtxt").is_file():
        raise ServeRefused(
            f"incorrect directory structure: {model_dir}/config.pbtxt exists",
            hint="the model directory must contain one folder per model, not a model itself",
        )


def check_inference_type(env: Mapping[str, str], image_tag: str | None = None) -> None:
    """Refuse an unknown ``SAGEMAKER_TRITON_INFERENCE_TYPE`` where ``serve`` checks it.

    Only the images from 25.03 on check (and use) the variable; older ones ignore it. A
    ``None`` tag applies the newest script's rule.
    """
    if image_tag is not None and parse_tag(image_tag).version < INFERENCE_TYPE_SINCE:
        return
    kind = _value(env, "SAGEMAKER_TRITON_INFERENCE_TYPE")
    if kind and kind not in _INFERENCE_TYPES:
        raise ServeRefused(
            f"invalid SAGEMAKER_TRITON_INFERENCE_TYPE {kind!r}",
            hint=f"use one of: {', '.join(_INFERENCE_TYPES)}",
        )


def model_dirs(model_dir: Path) -> list[str]:
    """List the repository's top-level folders like ``find -maxdepth 1 -type d`` does."""
    return sorted(p.name for p in model_dir.iterdir() if p.is_dir() and not p.is_symlink())


def _value(env: Mapping[str, str], name: str) -> str:
    """Return a variable's value; unset and empty are the same (``[ -n "$VAR" ]``)."""
    return env.get(name) or ""


def _unquote(value: str) -> str:
    """Strip one pair of matching surrounding quotes."""
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value
