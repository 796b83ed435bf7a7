"""Every setting tritonship takes from the environment or a file, read in one place.

The SageMaker variables of the container (``SAGEMAKER_*``, and whatever else the model's
``Environment`` should hold) are merged from four sources, each overriding the ones
before it (PyTriton's ``TritonConfig.from_env`` order: flag, file, environment, default):

1. the packaged defaults, ``container/sagemaker.env``;
2. ``SAGEMAKER_*`` variables exported in the shell (only that prefix: the rest of the
   shell is not the model's business);
3. ``--env-file FILE`` (Docker's env-file format);
4. ``--env KEY=VALUE`` (repeatable) and ``--multi-model`` (``SAGEMAKER_MULTI_MODEL=true``).

The packaged defaults name our own ensemble as the default model. For a repository without
that folder the name does not apply; when no source names a default model,
:func:`sagemaker_env` names the repository's only top-level ensemble (an ensemble no other
ensemble uses), else leaves it unset, and the ``serve`` rules decide (one model folder:
that one; several: refused). The result, :class:`SageMakerEnv`, is what the native and
Docker engines start the server with, what ``validate`` checks, what ``package`` records
and what ``promote`` sets as the model's ``Environment``.

The other settings: the AWS region (``AWS_REGION``, then ``AWS_DEFAULT_REGION``, then the
profile's), the endpoint URL overrides (``AWS_ENDPOINT_URL`` and its per-service forms,
the SageMaker runtime's among them), where boto3 finds credentials, the run folder
(``TRITONSHIP_RUN_DIR``), the image (``TRITONSHIP_IMAGE``), extra Compose files
(``TRITONSHIP_COMPOSE_FILES``), the native engine's confinement switch
(``TRITONSHIP_NATIVE_CONFINE``) and TensorFlow's log level (``TF_CPP_MIN_LOG_LEVEL``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tritonship import paths
from tritonship.errors import UsageError, Where
from tritonship.sagemaker.serve import DEFAULT_MODEL_VAR, load_env_file, model_dirs

MULTI_MODEL_VAR = "SAGEMAKER_MULTI_MODEL"
#: The prefix of the variables taken from the shell.
SAGEMAKER_PREFIX = "SAGEMAKER_"
#: Credentials never go into a model's environment (SageMaker gives the container a role).
SECRET_VARIABLES = frozenset(
    {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"}
)
PACKAGED_ENV_FILE = paths.asset_path("container", "sagemaker.env")
RUN_DIR_VARIABLE = "TRITONSHIP_RUN_DIR"
IMAGE_VARIABLE = "TRITONSHIP_IMAGE"
COMPOSE_FILES_VARIABLE = "TRITONSHIP_COMPOSE_FILES"
CONFINE_VARIABLE = "TRITONSHIP_NATIVE_CONFINE"
ENDPOINT_URL_VARIABLE = "AWS_ENDPOINT_URL"
#: TensorFlow's C++ log filter: 2 hides INFO and WARNING, 3 hides ERROR too.
TF_LOG_LEVEL_VARIABLE = "TF_CPP_MIN_LOG_LEVEL"
#: Where a multi-model endpoint's archives are looked up locally, and unpacked to.
DEFAULT_MODELS_SUBDIR = "models"

# Origins of a value, as the dry run and ``serve`` show them.
FROM_DEFAULTS = "packaged default"
FROM_SHELL = "exported"
FROM_FLAG = "--env"
FROM_INFERENCE = "inferred: the repository's only top-level ensemble"


@dataclass(frozen=True)
class EnvSources:
    """Where the user's SageMaker variables come from (the command line's options)."""

    pairs: tuple[str, ...] = ()
    env_file: Path | None = None
    multi_model: bool = False
    defaults: Path | None = PACKAGED_ENV_FILE


@dataclass(frozen=True)
class SageMakerEnv:
    """The merged SageMaker variables, and where each one came from."""

    values: dict[str, str]
    origins: dict[str, str] = field(default_factory=dict)
    #: The file and line of each value an env file set (the user's; not the defaults').
    places: dict[str, Where] = field(default_factory=dict)

    @property
    def multi_model(self) -> bool:
        """Whether the container runs as a multi-model endpoint (``serve``: exactly "true")."""
        return self.values.get(MULTI_MODEL_VAR) == "true"

    @property
    def default_model(self) -> str | None:
        """The model ``/invocations`` serves, when set."""
        return self.values.get(DEFAULT_MODEL_VAR) or None

    def origin(self, key: str) -> str:
        """Where ``key`` was set (``path:line``, ``--env``, ``exported``, ...)."""
        return self.origins.get(key, "unset")

    def describe(self) -> list[str]:
        """``KEY=VALUE  (origin)`` lines, sorted, for the terminal and the dry run."""
        return [
            f"{key}={value}  ({self.origin(key)})" for key, value in sorted(self.values.items())
        ]


def sagemaker_env(
    sources: EnvSources = EnvSources(),
    repository: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> SageMakerEnv:
    """Merge the sources (see the module docstring) for ``repository``."""
    environ = os.environ if environ is None else environ
    env = SageMakerEnv({}, {})
    if sources.defaults is not None and Path(sources.defaults).is_file():
        _merge(env, _file_values(Path(sources.defaults)), FROM_DEFAULTS)
    _drop_foreign_default(env.values, env.origins, repository)
    shell = {k: v for k, v in environ.items() if k.startswith(SAGEMAKER_PREFIX)}
    _merge(env, {k: (v, FROM_SHELL) for k, v in shell.items()})
    if sources.env_file is not None:
        _merge(env, _file_values(sources.env_file))
    _merge(env, {k: (v, FROM_FLAG) for k, v in parse_pairs(sources.pairs).items()})
    if sources.multi_model:
        _merge(env, {MULTI_MODEL_VAR: ("true", "--multi-model")})
    _infer_default_model(env.values, env.origins, repository)
    return env


def packaged_env(repository: Path | None = None) -> SageMakerEnv:
    """The packaged defaults alone (fitted to ``repository``), ignoring the shell."""
    return sagemaker_env(EnvSources(), repository, environ={})


def overlay(
    base: SageMakerEnv, sources: EnvSources, environ: Mapping[str, str] | None = None
) -> SageMakerEnv:
    """``base`` (e.g. what ``package`` recorded) with the shell, file and flags on top."""
    extra = sagemaker_env(replace_defaults(sources), None, environ)
    places = {k: v for k, v in base.places.items() if k not in extra.values}
    return SageMakerEnv(
        {**base.values, **extra.values},
        {**base.origins, **extra.origins},
        {**places, **extra.places},
    )


def replace_defaults(sources: EnvSources) -> EnvSources:
    """``sources`` without the packaged defaults (the base is given elsewhere)."""
    return EnvSources(sources.pairs, sources.env_file, sources.multi_model, defaults=None)


def parse_pairs(pairs: Sequence[str]) -> dict[str, str]:
    """``KEY=VALUE`` arguments as a dict; a malformed or secret one is a UsageError."""
    values: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.isidentifier():
            raise UsageError(f"--env {pair!r} is not KEY=VALUE", hint="e.g. --env KEY=value")
        values[_checked_key(key, "--env")] = value
    return values


def _checked_key(key: str, where: str) -> str:
    """Refuse credentials: they must never reach an archive, a log or a model definition."""
    if key in SECRET_VARIABLES:
        raise UsageError(
            f"{where} sets {key}: credentials never go into the model's environment",
            hint="SageMaker gives the container the execution role's credentials",
        )
    return key


def _file_values(path: Path) -> dict[str, tuple[str, Where]]:
    """An env file's values, each with the line that set it."""
    if not path.is_file():
        raise UsageError(f"env file {path} does not exist", hint="check --env-file")
    values = load_env_file(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    located = {}
    for key, value in values.items():
        _checked_key(key, str(path))
        number = next((n for n, raw in enumerate(lines, 1) if _assigns(raw, key)), None)
        located[key] = (value, Where(path, number))
    return located


def _assigns(raw: str, key: str) -> bool:
    """Whether an env-file line assigns ``key`` (the last such line wins, as in the parser)."""
    line = raw.strip().removeprefix("export ").lstrip()
    return line.startswith(f"{key}=") or line.startswith(f"{key} =")


def _merge(
    env: SageMakerEnv, new: Mapping[str, tuple[str, str | Where]], origin: str | None = None
) -> None:
    """Set ``new``'s values over ``env``'s; ``origin`` names them all (else each its own)."""
    for key, (value, where) in new.items():
        env.values[key] = value
        env.origins[key] = origin or str(where)
        if isinstance(where, Where) and origin is None:
            env.places[key] = where
        else:
            env.places.pop(key, None)


def _drop_foreign_default(values: dict, origins: dict, repository: Path | None) -> None:
    """The packaged default model names our ensemble: drop it where that folder is absent."""
    name = values.get(DEFAULT_MODEL_VAR)
    if name and repository is not None and not (Path(repository) / name).is_dir():
        del values[DEFAULT_MODEL_VAR]
        origins.pop(DEFAULT_MODEL_VAR, None)


def _infer_default_model(values: dict, origins: dict, repository: Path | None) -> None:
    """Name the only top-level ensemble when nothing names a default model."""
    if values.get(DEFAULT_MODEL_VAR) or values.get(MULTI_MODEL_VAR) == "true":
        return
    if repository is None or not Path(repository).is_dir():
        return
    if len(model_dirs(Path(repository))) < 2:
        return  # serve picks the only model folder itself
    ensembles = top_level_ensembles(Path(repository))
    if len(ensembles) == 1:
        values[DEFAULT_MODEL_VAR] = ensembles[0]
        origins[DEFAULT_MODEL_VAR] = FROM_INFERENCE


def top_level_ensembles(repository: Path) -> list[str]:
    """Ensembles of ``repository`` that no other ensemble uses as a step, sorted.

    Configs that cannot be read are skipped: ``validate`` reports them.
    """
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2 as mc

    ensembles: dict[str, set[str]] = {}
    for name in model_dirs(repository):
        config = repository / name / "config.pbtxt"
        try:
            parsed = text_format.Parse(config.read_text(encoding="utf-8"), mc.ModelConfig())
        except (OSError, UnicodeDecodeError, text_format.ParseError):
            continue
        if parsed.platform == "ensemble":
            steps = parsed.ensemble_scheduling.step
            ensembles[name] = {step.model_name for step in steps}
    used = set().union(*ensembles.values()) if ensembles else set()
    return sorted(name for name in ensembles if name not in used)


# --- the other settings ----------------------------------------------------------------------


def run_dir() -> Path:
    """Where servers keep their run state: ``TRITONSHIP_RUN_DIR``, else the default.

    The default is ``.tritonship/`` in a checkout, else ``$XDG_STATE_HOME/tritonship``.
    """
    explicit = os.environ.get(RUN_DIR_VARIABLE)
    return Path(explicit) if explicit else paths.default_run_dir()


def models_dir(explicit: Path | None = None) -> Path:
    """The folder a multi-model endpoint's models are unpacked to (``/opt/ml/models``)."""
    return Path(explicit) if explicit else run_dir() / DEFAULT_MODELS_SUBDIR


def aws_region(explicit: str | None = None) -> str | None:
    """The region: ``explicit``, ``AWS_REGION``, ``AWS_DEFAULT_REGION``, then the profile's.

    boto3 itself reads only ``AWS_DEFAULT_REGION`` and the profile; ``AWS_REGION`` (the
    variable the other AWS SDKs and the CLI v2 read) is honoured here and passed on.
    """
    found = explicit or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if found:
        return found
    import boto3

    return boto3.session.Session().region_name


def region_variables() -> dict[str, str]:
    """``AWS_REGION`` and ``AWS_DEFAULT_REGION`` as set in the shell.

    tritonship reads both, boto3 (and so the SageMaker SDK and the AWS CLI v1) only the
    latter: a shell with only ``AWS_REGION`` works for tritonship and fails for them.
    """
    names = ("AWS_REGION", "AWS_DEFAULT_REGION")
    return {name: os.environ[name] for name in names if os.environ.get(name)}


def require_region(explicit: str | None = None) -> str:
    """:func:`aws_region`, or a UsageError saying how to set one."""
    region = aws_region(explicit)
    if not region:
        raise UsageError("no AWS region configured", hint="set AWS_REGION, e.g. us-east-1")
    return region


def aws_endpoint_url(service: str) -> str:
    """Where ``service`` (e.g. ``sagemaker-runtime``) goes instead of AWS, or "" for AWS.

    ``service`` "" asks for the general ``AWS_ENDPOINT_URL`` alone.

    ``AWS_ENDPOINT_URL_<SERVICE>`` (upper case, ``-`` as ``_``), else ``AWS_ENDPOINT_URL``:
    botocore's order (its config provider ``EnvironmentProvider`` for ``endpoint_url``).
    """
    general = os.environ.get(ENDPOINT_URL_VARIABLE, "")
    if not service:
        return general
    specific = f"{ENDPOINT_URL_VARIABLE}_{service.upper().replace('-', '_').replace(' ', '_')}"
    return os.environ.get(specific) or general


def aws_endpoint_overrides() -> dict[str, str]:
    """Every ``AWS_ENDPOINT_URL*`` variable that is set (``doctor`` shows them)."""
    return {
        key: value
        for key, value in sorted(os.environ.items())
        if key.startswith(ENDPOINT_URL_VARIABLE) and value
    }


def runtime_endpoint_url() -> str:
    """Where InvokeEndpoint goes instead of AWS, or "" for AWS itself.

    ``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME``, else ``AWS_ENDPOINT_URL`` (botocore's order).
    """
    return aws_endpoint_url("sagemaker-runtime")


def is_loopback_url(url: str) -> bool:
    """Whether ``url`` points at this machine (a local stand-in, not AWS)."""
    from urllib.parse import urlparse

    host = urlparse(url).hostname or ""
    return host in ("localhost", "::1") or host.startswith("127.")


def aws_credentials_source() -> str | None:
    """Where boto3 finds credentials (``env``, ``shared-credentials-file``, ...), or None."""
    import boto3

    credentials = boto3.session.Session().get_credentials()
    return getattr(credentials, "method", "found") if credentials is not None else None


def image(explicit: str | None = None, tag: str | None = None, region: str | None = None) -> str:
    """The image the Docker engine runs.

    ``explicit``, else ``TRITONSHIP_IMAGE``, else SageMaker's image of ``tag`` for the
    region (us-east-1 when none is configured).
    """
    from tritonship.sagemaker.images import DEFAULT_TAG, image_uri

    chosen = explicit or os.environ.get(IMAGE_VARIABLE)
    if chosen:
        return chosen
    return image_uri(aws_region(region) or "us-east-1", tag or DEFAULT_TAG)


def compose_file_names(explicit: str | None = None) -> list[str]:
    """Extra Compose files (``TRITONSHIP_COMPOSE_FILES``, ``:``-separated), as named."""
    raw = os.environ.get(COMPOSE_FILES_VARIABLE, "") if explicit is None else explicit
    return [name.strip() for name in raw.split(os.pathsep) if name.strip()]


def quiet_tensorflow() -> str:
    """Set TensorFlow's C++ log level unless the user chose one; return the level in force.

    2 hides INFO and WARNING. Where no CUDA driver library can be loaded (a CPU-only
    machine), 3: TensorFlow's CUDA build then logs at ERROR level, on its first device
    query, "failed call to cuInit: ... UNKNOWN ERROR (303)" (xla ``cuda_platform.cc``;
    303 is CUDA_ERROR_SHARED_OBJECT_INIT_FAILED from its driver stub), which level 2 does
    not hide. ``CUDA_VISIBLE_DEVICES=""`` would not help: without a driver, cuInit fails
    before device visibility matters. With a driver present the level stays 2, so a real
    CUDA failure still shows.
    """
    level = "2" if cuda_driver_present() else "3"
    return os.environ.setdefault(TF_LOG_LEVEL_VARIABLE, level)


def cuda_driver_present() -> bool:
    """Whether the NVIDIA driver's ``libcuda.so.1`` loads (the GPU's user-space driver)."""
    import ctypes

    try:
        ctypes.CDLL("libcuda.so.1")
    except OSError:
        return False
    return True


def confinement_disabled() -> bool:
    """Whether the user turned the native engine's loopback confinement off."""
    return os.environ.get(CONFINE_VARIABLE, "1") == "0"


def server_environ() -> dict[str, str]:
    """Our environment without credentials, for the servers tritonship starts."""
    return {k: v for k, v in os.environ.items() if k not in SECRET_VARIABLES}


def platform_environ() -> dict[str, str]:
    """Our whole environment, credentials included, for a process that plays AWS's part.

    The local runtime of a multi-model endpoint reads the model data prefix from S3 as
    SageMaker does with the execution role; locally only the user's credentials can.
    """
    return dict(os.environ)
