"""``tritonship validate``: every rule, over a repository loaded once.

:func:`validate_repository` runs the rules of :mod:`tritonship.repository.rules` on a
:class:`~tritonship.repository.config.Repository` (:func:`load_repository`): Triton's
loading rules, SageMaker's serve rules and, for an image tag, the backends it carries.
"""

from __future__ import annotations

from tritonship.errors import TritonshipError
from tritonship.repository.config import Finding, Repository, format_findings
from tritonship.repository.rules.ensemble import check_ensemble
from tritonship.repository.rules.gpu import check_gpu_budget
from tritonship.repository.rules.image import check_image
from tritonship.repository.rules.model import check_model
from tritonship.repository.rules.sagemaker import check_sagemaker
from tritonship.sagemaker.images import backends_for_tag
from tritonship.sagemaker.settings import SageMakerEnv, packaged_env


def validate_repository(
    repository: Repository, image_tag: str | None = None, env: SageMakerEnv | None = None
) -> list[Finding]:
    """Check ``repository`` against Triton's loading rules, SageMaker's serve rules, the image.

    ``env``: the SageMaker variables the server will really get (default: the packaged
    defaults, fitted to the repository).
    """
    backends = backends_for_tag(image_tag) if image_tag else None
    findings = list(repository.findings)
    for model in repository.models.values():
        findings += check_model(model)
        if model.is_ensemble:
            findings += check_ensemble(model, repository)
        if image_tag and backends:
            findings += check_image(model, image_tag, backends)
    findings += check_gpu_budget(repository)
    findings += check_sagemaker(repository, env or packaged_env(repository.root))
    return findings


def summary(repository: Repository) -> str:
    """The clean-case line, e.g. ``model_repository: 3 models OK (ens -> a -> b)``."""
    chains = [
        " -> ".join([m.name, *(s.model_name for s in m.config.ensemble_scheduling.step)])
        for m in repository.models.values()
        if m.is_ensemble
    ]
    in_chains = {name for chain in chains for name in chain.split(" -> ")}
    chains += [name for name in repository.models if name not in in_chains]
    count = len(repository.models)
    noun = "model" if count == 1 else "models"
    return f"{repository.root.name}: {count} {noun} OK ({'; '.join(chains)})"


def refuse_findings(
    repository: Repository,
    findings: list[Finding],
    hint: str,
    error: type[TritonshipError] = TritonshipError,
) -> None:
    """Raise ``error`` listing every finding (below its one line), when there is any."""
    if findings:
        raise error(
            f"{repository.root} has {len(findings)} problem(s):",
            hint=hint,
            details=format_findings(findings),
        )
