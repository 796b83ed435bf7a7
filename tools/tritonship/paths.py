"""Where things live: the checkout (if any), the packaged assets, caches and run state.

tritonship runs from a checkout (``pip install -e .``) or from a wheel. The assets
(``container/``, ``dali/``, ``models/``) are the packages ``tritonship.assets.*`` and are
read with importlib.resources, so both installs find them. What depends on the install:

==================  ===================================  ====================================
                    in a checkout                        installed from a wheel
==================  ===================================  ====================================
repository          ``<checkout>/model_repository``      ``./model_repository``
archive             ``<checkout>/dist/model.tar.gz``     ``./dist/model.tar.gz``
#: The model data prefix of a multi-model endpoint, as a local folder: ``package
#: --multi-model`` writes one archive per target model there, ``promote --multi-model``
#: uploads them, and ``serve --multi-model`` looks each target model up there (its
#: ``TargetModel`` is the archive's path inside).
DEFAULT_MODEL_DATA_DIR = _in_checkout("dist/models")
download cache      ``<checkout>/models/cache``          ``$XDG_CACHE_HOME/tritonship/models``
run state           ``<checkout>/.tritonship``           ``$XDG_STATE_HOME/tritonship``
==================  ===================================  ====================================

``TRITONSHIP_RUN_DIR`` overrides the run state folder in both
(:func:`tritonship.sagemaker.settings.run_dir`, which reads every setting).
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
from importlib.resources import as_file, files
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

ASSETS_PACKAGE = "tritonship.assets"
MANIFEST_NAME = "build-manifest.json"

#: Assets extracted to temporary files (only if the package is not on the file system,
#: e.g. zipped), kept until the interpreter exits.
_extracted = contextlib.ExitStack()
atexit.register(_extracted.close)


@functools.cache
def checkout_root() -> Path | None:
    """The checkout this package runs from, or None when it is installed from a wheel.

    A checkout is recognised by its layout: this package in ``tools/tritonship`` beside a
    ``pyproject.toml``.
    """
    package = Path(__file__).resolve().parent
    root = package.parents[1]
    if package.parent.name == "tools" and (root / "pyproject.toml").is_file():
        return root
    return None


def asset(folder: str, *parts: str) -> Traversable:
    """A packaged asset, e.g. ``asset("container", "sagemaker.env")``."""
    resource = files(f"{ASSETS_PACKAGE}.{folder}")
    for part in parts:
        resource = resource / part
    return resource


@functools.cache
def asset_path(folder: str, *parts: str) -> Path:
    """A packaged asset as a real file system path (a file or a folder).

    Wheels and checkouts hold real files, returned as they are; an asset of a zipped
    install is extracted once and kept until the interpreter exits.
    """
    return _extracted.enter_context(as_file(asset(folder, *parts)))


def _in_checkout(relative: str) -> Path:
    """``relative`` inside the checkout, else relative to the working directory."""
    root = checkout_root()
    return root / relative if root else Path(relative)


def _xdg(variable: str, default: str) -> Path:
    """An XDG base directory (relative values are ignored, as the spec says)."""
    value = os.environ.get(variable, "")
    return Path(value) if Path(value).is_absolute() else Path.home() / default


#: The model repository commands use without ``--repo``.
DEFAULT_REPOSITORY = _in_checkout("model_repository")
#: Where ``tritonship package`` writes and ``tritonship promote`` reads the archive.
DEFAULT_ARCHIVE = _in_checkout("dist/model.tar.gz")
#: The model data prefix of a multi-model endpoint, as a local folder: ``package
#: --multi-model`` writes one archive per target model there, ``promote --multi-model``
#: uploads them, and ``serve --multi-model`` looks each target model up there (its
#: ``TargetModel`` is the archive's path inside).
DEFAULT_MODEL_DATA_DIR = _in_checkout("dist/models")

COMPOSE_FILE = asset_path("container", "docker-compose.yml")
BACKEND_SOURCES = asset_path("container", "backends")
DALI_PIPELINE_SOURCE = asset_path("dali", "pipeline.py")


def models_cache() -> Path:
    """Where downloaded model archives are kept (``models/cache`` in a checkout)."""
    root = checkout_root()
    if root:
        return root / "models" / "cache"
    return _xdg("XDG_CACHE_HOME", ".cache") / "tritonship" / "models"


def default_run_dir() -> Path:
    """Where servers keep their run state unless ``TRITONSHIP_RUN_DIR`` says otherwise.

    ``.tritonship/`` in the checkout, else ``$XDG_STATE_HOME/tritonship``
    (``~/.local/state/tritonship``).
    """
    root = checkout_root()
    if root:
        return root / ".tritonship"
    return _xdg("XDG_STATE_HOME", ".local/state") / "tritonship"
