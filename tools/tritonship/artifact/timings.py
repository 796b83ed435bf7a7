"""How long an archive took to unpack and to load here (``serve --archive``), for promote.

On SageMaker a new instance downloads and unpacks ``model.tar.gz`` within the variant's
``ModelDataDownloadTimeoutInSeconds``, then the container must answer ``/ping`` within its
``ContainerStartupHealthCheckTimeoutInSeconds`` (botocore's ProductionVariant, 60-3600 s
each). ``serve --archive`` measures the local counterparts: the safe unpack, and the
server's start until ``/ping`` answers 200 (the load of every model). They are recorded per
archive (its SHA-256) in the run folder, and promote's preflight warns when a budget is
below a measurement times :data:`MARGIN`.

Why a margin of 3: the local numbers leave out the download from S3 (unpack only), come
from this machine's disk and CPU rather than the instance's, and from a warm page cache;
on a fresh instance the image layers, the CUDA context and the GPU memory of every model
come on top. Three times the local time is a floor below which a budget is likely too
short, not a promise that one above it is enough (docs/deploying.md).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from tritonship.fileio import write_text_atomic
from tritonship.sagemaker.settings import run_dir

#: Budget / local measurement below which promote warns (see the module docstring).
MARGIN = 3.0
TIMINGS_DIR = "timings"


@dataclass(frozen=True)
class Timing:
    """The local measurements of one archive (None: not measured)."""

    sha256: str
    unpack_seconds: float | None = None
    load_seconds: float | None = None
    engine: str = ""
    measured_at: float = 0.0


def _path(sha256: str, folder: Path | None) -> Path:
    return (folder or run_dir()) / TIMINGS_DIR / f"{sha256}.json"


def read_timing(sha256: str, folder: Path | None = None) -> Timing | None:
    """The recorded measurements of the archive ``sha256``, if any."""
    try:
        data = json.loads(_path(sha256, folder).read_text(encoding="utf-8"))
        return Timing(**data)
    except (OSError, ValueError, TypeError):
        return None


def record_timing(
    sha256: str,
    unpack_seconds: float | None,
    load_seconds: float | None,
    engine: str,
    folder: Path | None = None,
) -> Timing:
    """Record (or update) the measurements; an unmeasured one keeps its earlier value."""
    before = read_timing(sha256, folder) or Timing(sha256)
    timing = Timing(
        sha256,
        unpack_seconds if unpack_seconds is not None else before.unpack_seconds,
        load_seconds if load_seconds is not None else before.load_seconds,
        engine or before.engine,
        time.time(),
    )
    path = _path(sha256, folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(asdict(timing), indent=2))
    return timing
