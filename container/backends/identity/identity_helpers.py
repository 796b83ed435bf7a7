"""The identity stand-in's pure helpers: no ``triton_python_backend_utils``, so tests load them.

``model.py`` (loaded by the Python backend stub) imports this sibling module; the unit tests
load it by file path (tests/unit/assets/test_identity_standin.py). Source of every rule:
github.com/triton-inference-server/identity_backend, branch r24.09, ``src/identity.cc``
(line numbers of that file); shapes are printed as ``ShapeToString`` in backend r24.09
``src/backend_common.cc`` prints them (``[-1,16]``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

#: ``std::stoi`` accepts leading blanks, a sign and digits, ignoring what follows them.
_STOI = re.compile(r"^\s*([+-]?\d+)")
_INSTANCE_INDEX = re.compile(r"_(\d+)$")


class ConfigError(ValueError):
    """A model the real backend refuses to load (its message is the backend's)."""


class Settings(NamedTuple):
    """What ``ValidateModelConfig`` keeps from a valid config (L259-422).

    A NamedTuple, not a dataclass: the tests load this file without registering it as a
    module, which dataclasses need.
    """

    execute_delay_ms: int = 0
    delay_multiplier: int = 0
    creation_delay_sec: int = 0
    #: Optional inputs by index: (config data type, config shape with -1 made 1), L340-350.
    optional: Mapping[int, tuple[str, list[int]]] = {}


def stoi(text: str) -> int:
    """``std::stoi`` as the backend applies it to parameter values."""
    match = _STOI.match(str(text))
    if match is None:
        raise ConfigError(f"stoi: no conversion of {text!r}")  # std::invalid_argument
    return int(match.group(1))


def _shape(tensor: Mapping[str, Any]) -> list[int]:
    """``reshape.shape`` when present, else ``dims`` (L320-330)."""
    reshape = tensor.get("reshape")
    dims = reshape.get("shape", []) if reshape is not None else tensor.get("dims", [])
    return [int(d) for d in dims]


def shape_text(shape: Sequence[int]) -> str:
    """``ShapeToString``: ``[-1,16]``."""
    return "[" + ",".join(str(int(d)) for d in shape) + "]"


def _pairs(config: Mapping[str, Any]) -> tuple[dict, dict, dict[int, tuple[str, list[int]]]]:
    """Inputs and outputs by index string, and the optional inputs (L271-351)."""
    inputs, outputs = config.get("input", []), config.get("output", [])
    if len(inputs) != len(outputs):
        raise ConfigError("model configuration must have equal input/output pairs")
    input_infos, output_infos, optional = {}, {}, {}
    for spec_in, spec_out in zip(inputs, outputs, strict=True):
        name_in, name_out = spec_in["name"], spec_out["name"]
        if not name_in.startswith("INPUT"):
            raise ConfigError(
                f"expected input name to follow INPUT<index> pattern, got '{name_in}'"
            )
        if not name_out.startswith("OUTPUT"):
            raise ConfigError(
                f"expected output name to follow OUTPUT<index> pattern, got '{name_out}'"
            )
        shape_in = _shape(spec_in)
        input_infos.setdefault(name_in[5:], (spec_in.get("data_type", ""), shape_in))
        output_infos.setdefault(name_out[6:], (spec_out.get("data_type", ""), _shape(spec_out)))
        if spec_in.get("optional"):
            optional[stoi(name_in[5:])] = (
                spec_in.get("data_type", ""),
                [1 if d == -1 else d for d in shape_in],
            )
    return input_infos, output_infos, optional


def check_config(config: Mapping[str, Any]) -> Settings:
    """Validate ``config`` as ``ValidateModelConfig`` does; return what execute needs.

    Pairs must match by index (OUTPUTn needs INPUTn), with the same data type and the same
    shape (reshaped shape when given), L353-374. Parameters: ``execute_delay_ms`` and,
    only with it, ``instance_wise_delay_multiplier`` (L376-393); ``creation_delay_sec``
    (``CreationDelay``, L236-256).
    """
    input_infos, output_infos, optional = _pairs(config)
    for index, (dtype_out, shape_out) in sorted(output_infos.items()):
        if index not in input_infos:
            raise ConfigError("expected input and output indices to match")
        dtype_in, shape_in = input_infos[index]
        if dtype_in != dtype_out:
            raise ConfigError(
                f"expected input and output datatype to match, got {dtype_in} and {dtype_out}"
            )
        if shape_in != shape_out:
            raise ConfigError(
                "expected input and output shape to match, got "
                f"{shape_text(shape_in)} and {shape_text(shape_out)}"
            )
    params = {k: v.get("string_value", "") for k, v in (config.get("parameters") or {}).items()}
    delay = stoi(params["execute_delay_ms"]) if "execute_delay_ms" in params else 0
    multiplier = 0
    if "execute_delay_ms" in params and "instance_wise_delay_multiplier" in params:
        multiplier = stoi(params["instance_wise_delay_multiplier"])
    creation = stoi(params["creation_delay_sec"]) if "creation_delay_sec" in params else 0
    return Settings(delay, multiplier, creation, optional)


def instance_index(instance_name: str) -> int:
    """The instance's index: the trailing ``_N`` of ``model_instance_name``.

    The real backend numbers instances in the order they are created (``instance_count_++``,
    L460-462); Triton names them ``<group>_<N>`` in that order within one instance group.
    """
    match = _INSTANCE_INDEX.search(instance_name)
    return int(match.group(1)) if match else 0


def delay_seconds(settings: Settings, instance: int) -> float:
    """The sleep before each execute call (L856-866): delay x max(multiplier x instance, 1)."""
    if settings.execute_delay_ms <= 0:
        return 0.0
    multiplier = settings.delay_multiplier
    if multiplier > 0:
        multiplier *= instance
    return settings.execute_delay_ms * max(multiplier, 1) / 1000.0


def missing_input_error(index: str) -> str:
    """The error of a requested output whose input is absent and not optional (L1132-1145)."""
    return f"failed to get input 'INPUT{index}'"


def zero_shape(settings: Settings, index: int, batch_dim: int) -> list[int] | None:
    """The shape of the zero tensor for an absent optional input (L1075-1131), or None.

    The config shape (-1 made 1), with the request's batch size in front when the model
    batches (``batch_dim`` 0: it does not).
    """
    if index not in settings.optional:
        return None
    shape = list(settings.optional[index][1])
    return [batch_dim, *shape] if batch_dim != 0 else shape
