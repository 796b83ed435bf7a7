"""A stand-in for ``triton_python_backend_utils``, to run Python-backend models in a test.

Only what our models use: tensors, requests, responses, ``TritonError`` with its codes,
``triton_string_to_numpy`` and the logger. :func:`load_model` imports a ``model.py`` with
this module installed as ``triton_python_backend_utils``.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

_NUMPY_TYPES = {
    "TYPE_BOOL": np.bool_,
    "TYPE_UINT8": np.uint8,
    "TYPE_INT8": np.int8,
    "TYPE_INT16": np.int16,
    "TYPE_INT32": np.int32,
    "TYPE_INT64": np.int64,
    "TYPE_FP16": np.float16,
    "TYPE_FP32": np.float32,
    "TYPE_FP64": np.float64,
    "TYPE_STRING": np.object_,
}


class Tensor:
    """A named numpy array."""

    def __init__(self, name: str, array: Any) -> None:
        self._name, self._array = name, np.asarray(array)

    def name(self) -> str:
        return self._name

    def as_numpy(self) -> np.ndarray:
        return self._array


class TritonError(Exception):
    """An error with a code (the Python backend's default is INTERNAL)."""

    UNKNOWN, INTERNAL, NOT_FOUND, INVALID_ARG = "UNKNOWN", "INTERNAL", "NOT_FOUND", "INVALID_ARG"
    UNAVAILABLE, UNSUPPORTED, ALREADY_EXISTS, CANCELLED = (
        "UNAVAILABLE",
        "UNSUPPORTED",
        "ALREADY_EXISTS",
        "CANCELLED",
    )

    def __init__(self, message: str, code: str = "INTERNAL") -> None:
        super().__init__(message)
        self._message, self._code = message, code

    def message(self) -> str:
        return self._message

    def code(self) -> str:
        return self._code


class InferenceRequest:
    """A request: its input tensors by name, and the outputs it asks for."""

    def __init__(self, requested: list[str] | None = None, **inputs: Any) -> None:
        self._inputs = {name: Tensor(name, array) for name, array in inputs.items()}
        self._requested = list(requested or [])

    def inputs(self) -> list[Tensor]:
        return list(self._inputs.values())

    def requested_output_names(self) -> list[str]:
        return list(self._requested)


class InferenceResponse:
    """Output tensors, or an error."""

    def __init__(self, output_tensors: list[Tensor] | None = None, error: Any = None) -> None:
        self.output_tensors, self.error = output_tensors or [], error

    def has_error(self) -> bool:
        return self.error is not None

    def output(self, name: str) -> np.ndarray:
        return next(t.as_numpy() for t in self.output_tensors if t.name() == name)


def get_input_tensor_by_name(request: InferenceRequest, name: str) -> Tensor | None:
    return request._inputs.get(name)


def triton_string_to_numpy(name: str) -> type:
    return _NUMPY_TYPES[name]


class Logger:
    """Collects what a model logs."""

    lines: list[str] = []

    @classmethod
    def log_error(cls, message: str) -> None:
        cls.lines.append(message)

    log_warn = log_info = log_verbose = log_error


def as_module() -> ModuleType:
    """This module under the name the Python backend gives it."""
    return sys.modules[__name__]


def load_model(path: Path, monkeypatch: Any) -> ModuleType:
    """Import ``path`` (a Python-backend ``model.py``) with this module as pb_utils."""
    monkeypatch.setitem(sys.modules, "triton_python_backend_utils", as_module())
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    monkeypatch.setattr(sys, "path", list(sys.path))  # model.py may add its folder
    spec = importlib.util.spec_from_file_location(f"model_{path.parent.name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
