"""Serving engines: the same repository behind ``/ping`` and ``/invocations``.

``native`` runs the tritonserver of the ``nvidia-pytriton`` wheel with CPU stand-in
backends; every engine has ``start``, ``wait_ready``, ``is_alive``, ``logs`` and ``stop``.
"""

from tritonship.engines.base import (
    Engine,
    EngineError,
    EngineTimeout,
    PortInUseError,
    free_port,
    ping,
)
from tritonship.engines.native import NativeEngine

__all__ = [
    "Engine",
    "EngineError",
    "EngineTimeout",
    "NativeEngine",
    "PortInUseError",
    "free_port",
    "ping",
]
