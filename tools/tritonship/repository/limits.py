"""How many images one request may carry: the served model's ``max_batch_size``.

``invoke`` pads a set of images into one ``[N, L]`` batch; Triton refuses N above the
model's ``max_batch_size`` ("batch-size must be <= 256"). The limit is read from the model
repository (``--repo``): the model ``/invocations`` serves, as ``serve`` picks it
(``SAGEMAKER_TRITON_DEFAULT_MODEL_NAME`` of the merged SageMaker environment, else the
ensemble).
Without a readable repository (``invoke --endpoint`` from another machine) the shipped
ensemble's value applies: 256 (model_repository/ensemble_dali_inception/config.pbtxt).
"""

from __future__ import annotations

from tritonship.repository.build import ENSEMBLE_MODEL
from tritonship.repository.config import Repository
from tritonship.sagemaker.settings import SageMakerEnv, sagemaker_env

#: The shipped ensemble's max_batch_size, used when no repository can be read.
DEFAULT_MAX_BATCH = 256
DEFAULT_SOURCE = "the shipped ensemble's default"


def request_batch_limit(
    repository: Repository | None, env: SageMakerEnv | None = None
) -> tuple[int, str]:
    """(images per request, where the number came from) for the model ``repository`` serves.

    None: no repository to read (the shipped ensemble's value).
    """
    if repository is None:
        return DEFAULT_MAX_BATCH, DEFAULT_SOURCE
    name = (env or sagemaker_env(repository=repository.root)).default_model or ENSEMBLE_MODEL
    model = repository.models.get(name)
    if model is None:
        return DEFAULT_MAX_BATCH, DEFAULT_SOURCE
    return max(model.config.max_batch_size, 1), str(repository.root / name)
