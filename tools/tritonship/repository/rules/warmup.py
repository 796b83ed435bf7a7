"""Warmup samples Triton would refuse, or that would fail on the model's inputs.

Core r24.09 ``src/backend_model_instance.cc`` ``GenerateWarmupData`` (L354-497) reads each
``model_warmup`` sample before the model is ready: a sample it refuses fails the load.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from tritonclient.grpc import model_config_pb2 as mc

from tritonship.repository.config import Finding, Model, compatible, field_pattern, type_name

#: Where Triton reads ``input_data_file`` from: ``<model>/warmup/`` (core r24.09
#: ``src/constants.h`` L83 kWarmupDataFolder, read at backend_model_instance.cc L471-475;
#: common r24.09 ``protobuf/model_config.proto`` L1731-1737).
WARMUP_FOLDER = "warmup"


def check_warmup(model: Model) -> Iterator[Finding]:
    """Warmup samples Triton would refuse, or that would fail on the model's inputs."""
    if model.is_ensemble and model.config.model_warmup:  # model_config_utils.cc L181-186
        yield model.finding(
            f"model_warmup can not be specified for ensemble {model.name!r} (warm up its "
            "steps instead)",
            field_pattern("model_warmup"),
        )
        return
    for sample in model.config.model_warmup:
        yield from _check_warmup_sample(model, sample)


def _check_warmup_sample(model: Model, sample: mc.ModelWarmup) -> Iterator[Finding]:
    where = (field_pattern("model_warmup"), field_pattern("name", sample.name))
    batching = model.config.max_batch_size > 0
    limit = model.config.max_batch_size if batching else 1
    if not 1 <= sample.batch_size <= limit:
        yield model.finding(
            f"warmup sample {sample.name!r}: batch_size {sample.batch_size} is not in 1..{limit} "
            "(Triton skips a sample of batch 0)",
            *where,
        )
    for name in sorted(set(sample.inputs) - set(model.inputs)):
        yield model.finding(
            f"warmup sample {sample.name!r}: {name!r} is not an input of the model "
            f"(inputs: {', '.join(model.inputs)})",
            *where,
            field_pattern("key", name),
        )
    for name, spec in model.inputs.items():
        if name not in sample.inputs and not spec.optional:
            yield model.finding(f"warmup sample {sample.name!r} gives no input {name!r}", *where)
    for name, value in sample.inputs.items():
        if name in model.inputs:
            yield from _check_warmup_input(model, sample.name, name, value, where)


def _check_warmup_input(
    model: Model, sample: str, name: str, value: mc.ModelWarmup.Input, where: tuple[str, ...]
) -> Iterator[Finding]:
    spec = model.inputs[name]
    at = (*where, field_pattern("key", name))
    if value.data_type != spec.data_type:
        yield model.finding(
            f"warmup sample {sample!r}: input {name!r} is {type_name(value.data_type)}, the "
            f"model's is {type_name(spec.data_type)}",
            *at,
        )
    if any(d < 0 for d in value.dims):  # backend_model_instance.cc L374-380, Triton's words
        yield model.finding(
            f"warmup setting expects all variable-size dimensions are specified for input {name!r}",
            *at,
        )
    elif not compatible(list(value.dims), list(spec.dims)):
        yield model.finding(
            f"warmup sample {sample!r}: input {name!r} dims {list(value.dims)} do not fit the "
            f"model's {list(spec.dims)}",
            *at,
        )
    yield from _check_warmup_data(model, name, value, at)


def _check_warmup_data(
    model: Model, name: str, value: mc.ModelWarmup.Input, at: tuple[str, ...]
) -> Iterator[Finding]:
    kind = value.WhichOneof("input_data_type")
    if kind is None:  # backend_model_instance.cc L492-496
        yield model.finding(
            f"warmup setting expects input {name!r} to have input_data_type set "
            "(zero_data, random_data or input_data_file)",
            *at,
        )
        return
    if kind != "input_data_file":
        return
    path = model.folder / WARMUP_FOLDER / value.input_data_file
    if not path.is_file():  # ReadTextFile: "failed to open text file for read"
        yield model.finding(
            f"failed to open text file for read {path}: the warmup input {name!r} must be "
            f"in {model.name}/{WARMUP_FOLDER}/",
            *at,
            field_pattern("input_data_file"),
        )
        return
    expected = math.prod(value.dims) * _element_size(value.data_type)
    if value.data_type != mc.TYPE_STRING and path.stat().st_size < expected:  # L479-488
        yield model.finding(
            f"warmup setting expects {expected} bytes, but the data provided from "
            f"{value.input_data_file} only has {path.stat().st_size} bytes",
            *at,
            field_pattern("input_data_file"),
        )


def _element_size(data_type: int) -> int:
    """Bytes per element of a fixed-size data type (Triton counts 4 for the others)."""
    name = mc.DataType.Name(data_type)
    for size, suffix in ((1, "8"), (2, "16"), (4, "32"), (8, "64")):
        if name.endswith(suffix):
            return size
    return 1 if data_type == mc.TYPE_BOOL else 4
