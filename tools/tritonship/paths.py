"""Where things live in a checkout of the project."""

from __future__ import annotations

import os
from pathlib import Path

#: The checkout this package was installed from (``pip install -e .``).
PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_REPOSITORY = PROJECT_ROOT / "model_repository"
DALI_PIPELINE_SOURCE = PROJECT_ROOT / "dali" / "pipeline.py"
MODELS_CACHE = PROJECT_ROOT / "models" / "cache"
SAGEMAKER_ENV_FILE = PROJECT_ROOT / "container" / "sagemaker.env"
MANIFEST_NAME = "build-manifest.json"


def run_dir() -> Path:
    """Where servers keep their run state (``TRITONSHIP_RUN_DIR``, else ``.tritonship/``)."""
    return Path(os.environ.get("TRITONSHIP_RUN_DIR") or PROJECT_ROOT / ".tritonship")
