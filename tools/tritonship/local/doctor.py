"""``tritonship doctor``: what this machine has for each step of the flow, with the fixes.

Every check returns a :class:`Check`: what was found and, when something is missing or
needs care, the command or setting that fixes it. Only queries: nothing is installed,
started or changed (``docker info``-style calls, ``unshare`` in a throwaway probe, a TCP
connect to a local AWS stand-in).

**Essential** are the checks the local flow (``make demo``: build, serve natively, invoke)
cannot do without: a supported Python, the package with its required dependencies,
tritonserver from the nvidia-pytriton wheel with a Python backend stub for this Python, and
the CPU stand-in backends with their libraries. Everything else (Docker, Compose, the
stand-in image, AWS, the bench extra, loopback confinement, a built repository) is
reported with its fix but does not fail the command: each serves only some steps.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import socket
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from tritonship import __version__, paths
from tritonship.sagemaker import settings

if TYPE_CHECKING:
    from tritonship.repository.manifest import BuildManifest

OK, WARN, MISSING, INFO = "ok", "warn", "missing", "info"
PYTHONS = ((3, 10), (3, 12))  # pyproject.toml: requires-python = ">=3.10,<3.13"
SETUP = "make setup (pip install -e '.[dev]' in .venv), then source .venv/bin/activate"
#: The stand-in backends, and the library (module, distribution) each one runs on.
STANDIN_LIBRARIES = {
    "dali": ("nvidia.dali", "nvidia-dali-cuda120"),
    "tensorflow": ("tensorflow", "tensorflow"),
    "onnxruntime": ("onnxruntime", "onnxruntime"),
    "identity": ("numpy", "numpy"),
}
#: The packages shown by name in the dependency line (all required ones are checked).
SHOWN = ("tensorflow", "nvidia-dali-cuda120", "nvidia-pytriton", "tritonclient", "boto3")
BENCH_EXTRA = ("aiohttp", "matplotlib")


@dataclass(frozen=True)
class Check:
    """One finding: its status (ok, warn, missing, info), what was found, how to fix it."""

    section: str
    name: str
    status: str
    detail: str
    fix: str | None = None
    essential: bool = False

    @property
    def failed(self) -> bool:
        """Whether an essential is missing (``doctor`` then exits 1)."""
        return self.essential and self.status == MISSING


def run_checks(repository: Path = paths.DEFAULT_REPOSITORY) -> list[Check]:
    """Every check, in the order of the flow."""
    checks = [python_check(), package_check(), dependencies_check(), bench_extra_check()]
    checks += [tritonserver_check(), *standin_checks(), confinement_check()]
    checks += docker_checks()
    checks += [credentials_check(), region_check(), *endpoint_checks()]
    checks.append(repository_check(repository))
    return checks


def as_json(checks: list[Check]) -> str:
    """The report for ``--json``: every check, and whether the essentials are there."""
    report = {"ok": not any(c.failed for c in checks), "checks": [asdict(c) for c in checks]}
    return json.dumps(report, indent=2)


# --- Python and the package ----------------------------------------------------------------


def python_check() -> Check:
    """A Python the package supports."""
    version = sys.version_info[:2]
    found = f"{sys.version.split()[0]} ({sys.executable})"
    if PYTHONS[0] <= version <= PYTHONS[1]:
        return Check("python", "python", OK, found, essential=True)
    return Check(
        "python",
        "python",
        MISSING,
        f"{found}: tritonship needs Python 3.10 to 3.12",
        fix="make setup PYTHON=python3.12 (any 3.10-3.12 interpreter)",
        essential=True,
    )


def package_check() -> Check:
    """The tritonship package itself: its version and where it runs from."""
    root = paths.checkout_root()
    where = f"checkout {root}" if root else f"installed in {Path(paths.__file__).parent}"
    return Check("python", "tritonship", OK, f"{__version__} ({where})", essential=True)


def _requirements(extra: str | None = None) -> list[Any]:
    """The package's requirements (``packaging`` objects), without extras or with one."""
    from packaging.requirements import Requirement

    found = []
    for line in importlib.metadata.requires("tritonship") or []:
        requirement = Requirement(line)
        marker = requirement.marker
        wanted = (
            marker is None if extra is None else bool(marker and marker.evaluate({"extra": extra}))
        )
        if wanted:
            found.append(requirement)
    return found


def _unmet(requirements: list[Any]) -> tuple[dict[str, str], list[str]]:
    """Installed versions by name, and the requirements that are missing or too old/new."""
    versions, unmet = {}, []
    for requirement in requirements:
        try:
            version = importlib.metadata.version(requirement.name)
        except importlib.metadata.PackageNotFoundError:
            unmet.append(f"{requirement} (not installed)")
            continue
        versions[requirement.name] = version
        if not requirement.specifier.contains(version, prereleases=True):
            unmet.append(f"{requirement} ({version} installed)")
    return versions, unmet


def dependencies_check() -> Check:
    """Every required dependency installed at a version the package accepts."""
    try:
        versions, unmet = _unmet(_requirements())
    except (ImportError, importlib.metadata.PackageNotFoundError) as err:
        return Check("python", "dependencies", INFO, f"not checked: {err}")
    shown = ", ".join(f"{name} {versions[name]}" for name in SHOWN if name in versions)
    if unmet:
        return Check("python", "dependencies", MISSING, "; ".join(unmet), fix=SETUP, essential=True)
    return Check("python", "dependencies", OK, f"all {len(versions)}: {shown}", essential=True)


def bench_extra_check() -> Check:
    """The bench extra (aiohttp, matplotlib): only ``bench`` and ``metrics --plot`` need it."""
    missing = [name for name in BENCH_EXTRA if importlib.util.find_spec(name) is None]
    if not missing:
        versions = ", ".join(f"{n} {importlib.metadata.version(n)}" for n in BENCH_EXTRA)
        return Check("python", "bench extra", OK, versions)
    return Check(
        "python",
        "bench extra",
        WARN,
        f"{', '.join(missing)} missing: `tritonship bench` and `metrics --plot` cannot run",
        fix="pip install 'tritonship[bench]' (make setup installs it)",
    )


# --- the native engine ----------------------------------------------------------------------


def tritonserver_check() -> Check:
    """The nvidia-pytriton wheel's tritonserver, and its Python backend stub for us."""
    from tritonship.local.engine import EngineError
    from tritonship.local.native import TritonDistribution

    try:
        dist = TritonDistribution.locate()
        dist.stub(f"{sys.version_info.major}.{sys.version_info.minor}")
    except EngineError as err:
        return Check("native", "tritonserver", MISSING, str(err.args[0]), err.hint or SETUP, True)
    version = importlib.metadata.version("nvidia-pytriton")
    return Check(
        "native", "tritonserver", OK, f"nvidia-pytriton {version}: {dist.server}", None, True
    )


def standin_checks() -> list[Check]:
    """Each CPU stand-in backend: its source and the library it runs on."""
    return [_standin(name, *library) for name, library in STANDIN_LIBRARIES.items()]


def _standin(name: str, module: str, distribution: str) -> Check:
    source = paths.BACKEND_SOURCES / name / "model.py"
    label = f"stand-in {name}"
    if not source.is_file():
        return Check("native", label, MISSING, f"{source} is missing", SETUP, True)
    if not _importable(module):
        return Check("native", label, MISSING, f"{module} is not installed", SETUP, True)
    version = importlib.metadata.version(distribution)
    return Check("native", label, OK, f"{distribution} {version}", None, True)


def _importable(module: str) -> bool:
    """Whether ``module`` can be found (without importing it, beyond its parents)."""
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def confinement_check() -> Check:
    """Whether the native server can be confined to 127.0.0.1 (private namespaces)."""
    from tritonship.local.confine import unavailable_reason

    reason = unavailable_reason()
    if reason is None:
        return Check(
            "native",
            "loopback confinement",
            OK,
            "user, network and mount namespaces permitted: the native server listens on "
            "127.0.0.1 only and sees the container's paths",
        )
    return Check(
        "native",
        "loopback confinement",
        WARN,
        f"{reason}: the native server would listen on every interface",
        fix="serve with --engine docker (binds 127.0.0.1), or allow unprivileged user "
        "namespaces (sysctl user.max_user_namespaces=15000; on Ubuntu 24.04 also "
        "kernel.apparmor_restrict_unprivileged_userns=0)",
    )


# --- Docker ---------------------------------------------------------------------------------


def docker_checks() -> list[Check]:
    """The engine, Compose, the locked-memory limit and the stand-in image."""
    client, engine = _docker_engine()
    checks = [engine, _compose_check()]
    if client is None:
        skipped = "not checked: no Docker engine answers"
        checks += [Check("docker", "memlock override", INFO, skipped)]
        checks += [Check("docker", "stand-in image", INFO, skipped)]
        return checks
    checks += [_memlock_check(client), _sim_image_check(client)]
    return checks


def _docker_engine() -> tuple[Any, Check]:
    """A Docker SDK client that answered, and the check that says so (or why not)."""
    try:
        import docker

        client = docker.from_env(timeout=10)
        version = client.version().get("Version", "?")
    except Exception as err:  # docker-py raises DockerException, requests errors, OSError
        reason = " ".join(str(err).split())[:200]
        fix = "install Docker Engine and start it (docker info must answer); "
        fix += "the native engine needs no Docker"
        return None, Check("docker", "docker engine", WARN, f"none answers: {reason}", fix)
    return client, Check("docker", "docker engine", OK, f"{version} at {client.api.base_url}")


def _compose_check() -> Check:
    """Compose v2 (the docker plugin) or v1 (docker-compose), as the engine would pick."""
    from tritonship.local.docker import compose_command
    from tritonship.local.engine import EngineError

    try:
        command = compose_command()
    except EngineError as err:
        return Check("docker", "compose", WARN, str(err.args[0]), err.hint)
    kind = "v2" if len(command) == 2 else "v1"
    version = _output([*command, "version", "--short"]) or "version unknown"
    return Check("docker", "compose", OK, f"{kind}: {' '.join(command)} {version}")


def _output(command: list[str]) -> str:
    """A quick command's first output line, "" when it fails."""
    import subprocess

    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip().splitlines()[0] if done.returncode == 0 and done.stdout else ""


def dockerd_memlock(proc: Path = Path("/proc")) -> str | None:
    """The hard RLIMIT_MEMLOCK of this machine's dockerd (``unlimited`` or bytes), or None.

    Containers inherit the daemon's limits: where its hard limit is finite, Compose's
    ``memlock: -1`` fails with "error setting rlimit type 8: operation not permitted".
    """
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != "dockerd":
                continue
            limits = (entry / "limits").read_text().splitlines()
        except OSError:
            continue
        for line in limits:
            if line.startswith("Max locked memory"):
                return line.split()[4]
    return None


def _memlock_check(client: Any) -> Check:
    """Whether ``compose.local.yml`` (memlock 8 MiB) is needed here, and whether it is set."""
    local = str(client.api.base_url).startswith(("http+docker://localhost", "http+unix", "unix"))
    limit = dockerd_memlock() if local else None
    chosen = "compose.local.yml" in {Path(n).name for n in settings.compose_file_names()}
    if limit is None:
        return Check(
            "docker",
            "memlock override",
            INFO,
            'dockerd\'s limits cannot be read here: if `make up` fails with "rlimit type 8", '
            "add compose.local.yml",
        )
    if limit == "unlimited":
        return Check("docker", "memlock override", OK, "not needed: dockerd may lock memory")
    detail = f"needed: dockerd's locked-memory limit is {int(limit) // 1024} KiB"
    if chosen:
        return Check("docker", "memlock override", OK, f"{detail}; compose.local.yml is set")
    return Check(
        "docker",
        "memlock override",
        WARN,
        f'{detail}, so memlock: -1 fails ("error setting rlimit type 8")',
        fix="export TRITONSHIP_COMPOSE_FILES=compose.local.yml "
        "(or make up COMPOSE_FILES=compose.local.yml)",
    )


def _sim_image_check(client: Any) -> Check:
    """The local stand-in of the SageMaker image (``make sim-image``)."""
    from tritonship.local.docker import SIM_IMAGE

    try:
        image = client.images.get(SIM_IMAGE)
    except Exception:  # docker.errors.ImageNotFound, or an engine error
        return Check(
            "docker",
            "stand-in image",
            WARN,
            f"{SIM_IMAGE} is not built: the Docker engine has no image to run here (no "
            "registry login, no GPU)",
            fix="make sim-image (needs root, Docker and debootstrap)",
        )
    created = str(image.attrs.get("Created", ""))[:19]
    return Check("docker", "stand-in image", OK, f"{SIM_IMAGE} (built {created})")


# --- AWS ------------------------------------------------------------------------------------


def credentials_check() -> Check:
    """Whether boto3 finds credentials, and where (their values are never shown)."""
    try:
        source = settings.aws_credentials_source()
    except Exception as err:  # a broken profile or config file
        return Check(
            "aws",
            "credentials",
            WARN,
            f"cannot be read: {err}",
            "check AWS_PROFILE and ~/.aws/config",
        )
    if source:
        return Check("aws", "credentials", OK, f"found ({source})")
    return Check(
        "aws",
        "credentials",
        WARN,
        "none: promote, teardown, logs, metrics and the ECR login need them",
        fix="aws configure, or AWS_PROFILE=...; against a moto server any values do: "
        "export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing",
    )


def region_check() -> Check:
    """The region, and whether scripts that read only AWS_DEFAULT_REGION see it too."""
    variables = settings.region_variables()
    try:
        region = settings.aws_region()
    except Exception as err:  # a broken profile
        return Check("aws", "region", WARN, f"cannot be read: {err}", "check AWS_PROFILE")
    if not region:
        return Check(
            "aws",
            "region",
            WARN,
            "none configured: promote and teardown need one",
            fix="export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1",
        )
    if "AWS_REGION" in variables and "AWS_DEFAULT_REGION" not in variables:
        return Check(
            "aws",
            "region",
            WARN,
            f"{region} from AWS_REGION: tritonship reads it, but boto3 scripts, the SageMaker "
            "SDK and the AWS CLI v1 read only AWS_DEFAULT_REGION (NoRegionError)",
            fix=f"export AWS_DEFAULT_REGION={region}",
        )
    where = ", ".join(variables) or "the AWS profile"
    return Check("aws", "region", OK, f"{region} (from {where})")


def endpoint_checks() -> list[Check]:
    """Endpoint URL overrides (``AWS_ENDPOINT_URL*``): local stand-ins must answer."""
    overrides = settings.aws_endpoint_overrides()
    if not overrides:
        return [Check("aws", "endpoint override", INFO, "none: AWS calls go to AWS itself")]
    return [_endpoint_check(name, url) for name, url in overrides.items()]


def _endpoint_check(name: str, url: str) -> Check:
    if not settings.is_loopback_url(url):
        return Check("aws", name, INFO, f"{url} (not checked: not on this machine)")
    if _answers(url):
        return Check(
            "aws", name, OK, f"{url} answers (a local stand-in: moto, or the local runtime)"
        )
    port = urlparse(url).port or 80
    return Check(
        "aws",
        name,
        WARN,
        f"{url} does not answer",
        fix=f"start it (moto: python -m moto.server -p {port}; the local runtime: tritonship "
        f"serve), or unset {name}",
    )


def _answers(url: str, timeout: float = 1.0) -> bool:
    """Whether something accepts TCP connections at ``url``'s host and port."""
    parsed = urlparse(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


# --- the repository -------------------------------------------------------------------------


def repository_check(repository: Path) -> Check:
    """The built repository: its weights (official or random) and whether it is intact."""
    from tritonship.repository.build import read_manifest

    manifest = read_manifest(repository)
    if manifest is None:
        return Check(
            "repository",
            "built repository",
            WARN,
            f"{repository} is not built (no build manifest)",
            fix="make artifacts (offline: make artifacts WEIGHTS=random)",
        )
    changed = list(_changed_files(repository, manifest.files))
    if changed:
        return Check(
            "repository",
            "built repository",
            WARN,
            f"{repository}: {len(changed)} file(s) changed since the build: "
            f"{', '.join(changed[:3])}",
            fix="make artifacts (rebuild so the provenance stays true)",
        )
    return _weights_check(repository, manifest)


def _weights_check(repository: Path, manifest: BuildManifest) -> Check:
    weights = manifest.weights.source
    classifier = manifest.classifier.format if manifest.classifier else "tf"
    detail = f"{repository}: {weights} weights, {classifier} classifier"
    if weights == "random":
        return Check(
            "repository",
            "built repository",
            WARN,
            f"{detail}: the labels it predicts are meaningless",
            fix="make artifacts WEIGHTS=official where the network allows",
        )
    return Check("repository", "built repository", OK, detail)


def _changed_files(repository: Path, files: dict[str, str]) -> Iterator[str]:
    """The manifest's files whose SHA-256 no longer matches (or that are gone)."""
    from tritonship.fileio import sha256_file

    for relative, digest in sorted(files.items()):
        path = repository / relative
        if not path.is_file() or sha256_file(path) != digest:
            yield relative


#: The order and titles of the report's sections.
SECTIONS: dict[str, str] = {
    "python": "Python and the package",
    "native": "the native engine (no Docker, no GPU)",
    "docker": "the Docker engine",
    "aws": "AWS (promote, teardown, invoke --endpoint)",
    "repository": "the model repository",
}
