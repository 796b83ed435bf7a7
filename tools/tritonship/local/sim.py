"""The ``tritonserver`` of the stand-in image: the native engine's server, inside a container.

The stand-in of the SageMaker Triton image (``container/sim/``, ``make sim-image``) keeps
NVIDIA's ``serve`` script; the ``tritonserver`` it calls is a shell script that runs
``python -m tritonship.local.sim <flags>`` with the host's Python environment, mounted
read-only at its host path by ``container/compose.sim.yml``. This module does what the
native engine does before it starts the server (:func:`~tritonship.local.native.assemble_backends`:
the wheel's Python backend plus the CPU stand-ins for ``dali`` and ``tensorflow``), then
replaces itself with the wheel's tritonserver, adding ``--backend-directory``. It is NOT
NVIDIA's server build: no GPU, no real DALI or TensorFlow backend.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from tritonship.errors import TritonshipError
from tritonship.local.native import TritonDistribution, assemble_backends
from tritonship.paths import BACKEND_SOURCES

#: Where the backends are assembled inside the container (its own, writable /tmp).
BACKENDS_VARIABLE = "TRITONSHIP_BACKEND_DIRECTORY"


def server_command(
    args: Sequence[str], backends: Path, dist: TritonDistribution
) -> tuple[list[str], dict[str, str]]:
    """The wheel's tritonserver with ``args`` and the assembled backends, and its environment."""
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = ":".join(filter(None, [str(dist.libs), env.get("LD_LIBRARY_PATH")]))
    return [str(dist.server), *args, f"--backend-directory={backends}"], env


def main(argv: Sequence[str] | None = None) -> None:
    """Assemble the backends and exec tritonserver with ``argv`` (serve's flags)."""
    args = list(sys.argv[1:] if argv is None else argv)
    default = Path(tempfile.gettempdir()) / "tritonship-backends"
    try:
        dist = TritonDistribution.locate()
        backends = assemble_backends(
            Path(os.environ.get(BACKENDS_VARIABLE) or default), dist, BACKEND_SOURCES
        )
    except TritonshipError as err:
        print(f"ERROR: {err}", file=sys.stderr)  # noqa: T201 - the container log
        raise SystemExit(1) from err
    command, env = server_command(args, backends, dist)
    sys.stdout.flush()
    os.execve(command[0], command, env)  # noqa: S606 - the wheel's server, serve's flags


if __name__ == "__main__":
    main()
