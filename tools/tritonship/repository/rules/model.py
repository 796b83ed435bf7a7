"""Rules every model meets on its own: name, kind, batching, tensors, versions, files.

Triton's loading rules (core r24.09 ``src/model_config_utils.cc``) as they apply to one
folder, plus the execution accelerators its backend accepts
(:mod:`tritonship.repository.accelerators`) and its warmup (:mod:`.warmup`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from tritonclient.grpc import model_config_pb2 as mc

from tritonship.repository import accelerators
from tritonship.repository.config import (
    CONFIG_NAME,
    DALI_AUTOSERIALIZE,
    DEFAULT_ARTIFACTS,
    PLATFORM_BACKENDS,
    Finding,
    Model,
    field_pattern,
    tensor_patterns,
)
from tritonship.repository.rules.warmup import check_warmup


def _check_name(model: Model) -> Iterator[Finding]:
    name = model.config.name
    if name and name != model.name:
        yield model.finding(
            f"name {name!r} does not match its folder {model.name!r}",
            field_pattern("name", name),
        )


def _check_kind(model: Model) -> Iterator[Finding]:
    platform, backend = model.config.platform, model.config.backend
    if not platform and not backend:
        yield model.finding("neither platform nor backend is set", field_pattern("name"))
    elif platform and platform not in PLATFORM_BACKENDS:
        known = ", ".join(PLATFORM_BACKENDS)
        yield model.finding(
            f"unknown platform {platform!r} (known: {known})", field_pattern("platform")
        )
    elif platform and backend and PLATFORM_BACKENDS[platform] != backend:
        yield model.finding(
            f"backend {backend!r} contradicts platform {platform!r} "
            f"(which runs on {PLATFORM_BACKENDS[platform]!r})",
            field_pattern("backend", backend),
        )


def _check_batch(model: Model) -> Iterator[Finding]:
    size = model.config.max_batch_size
    if size < 0:
        yield model.finding(
            f"max_batch_size {size} is negative (0 disables batching)",
            field_pattern("max_batch_size"),
        )


def _check_duplicates(model: Model) -> Iterator[Finding]:
    for kind, tensors in (("input", model.config.input), ("output", model.config.output)):
        seen: set[str] = set()
        for tensor in tensors:
            if tensor.name in seen:
                yield model.finding(
                    f"duplicate {kind} name {tensor.name!r}",
                    *tensor_patterns(kind, tensor.name, occurrence=2),
                )
            seen.add(tensor.name)


def _check_versions(model: Model) -> Iterator[Finding]:
    if not model.versions():
        yield Finding(
            model.folder,
            None,
            f"no numeric version folder (such as {model.name}/1/) next to {CONFIG_NAME}",
        )


def expected_artifacts(model: Model) -> tuple[str, ...] | None:
    """File names any one of which must be in each version folder (None: unknown backend)."""
    if model.is_ensemble:
        return ()
    custom = model.config.default_model_filename
    if model.kind == "dali":
        return (custom or DEFAULT_ARTIFACTS["dali"][0], DALI_AUTOSERIALIZE)
    if custom:
        return (custom,)
    return DEFAULT_ARTIFACTS.get(model.config.platform) or DEFAULT_ARTIFACTS.get(model.backend)


def _check_artifacts(model: Model) -> Iterator[Finding]:
    names = expected_artifacts(model)
    if not names:
        return
    what = f"platform {model.kind!r}" if model.config.platform else f"backend {model.kind!r}"
    for version in model.versions():
        folder = model.folder / str(version)
        if not any((folder / name).exists() for name in names):
            wanted = " or ".join(f"{version}/{name}" for name in names)
            yield Finding(folder / names[0], None, f"missing artifact for {what}: {wanted}")


def _check_labels(model: Model) -> Iterator[Finding]:
    for output in model.config.output:
        if output.label_filename:
            yield from _check_label_file(model, output)


def _check_label_file(model: Model, output: mc.ModelOutput) -> Iterator[Finding]:
    path = model.folder / output.label_filename
    if not path.is_file():
        yield model.finding(
            f"label_filename {output.label_filename!r} of output {output.name!r} not found",
            *tensor_patterns("output", output.name),
            field_pattern("label_filename"),
        )
        return
    classes = math.prod(output.dims)
    lines = len(path.read_text(encoding="utf-8", errors="replace").splitlines())
    if classes > 0 and lines != classes:
        yield Finding(
            path,
            None,
            f"{lines} labels, but output {output.name!r} of {model.name!r} has "
            f"dims {list(output.dims)} ({classes} classes)",
        )


def _check_accelerators(model: Model) -> Iterator[Finding]:
    """Execution accelerators the model's backend would refuse (repository/accelerators.py)."""
    for problem in accelerators.problems(model.backend, model.config):
        yield model.finding(
            problem.message,
            field_pattern("optimization"),
            field_pattern("execution_accelerators"),
            field_pattern(problem.field, problem.value),
        )


MODEL_RULES = (
    _check_name,
    _check_kind,
    _check_batch,
    _check_duplicates,
    _check_versions,
    _check_artifacts,
    _check_labels,
    _check_accelerators,
    check_warmup,
)


def check_model(model: Model) -> list[Finding]:
    """Findings from the rules that apply to every model on its own."""
    return [finding for rule in MODEL_RULES for finding in rule(model)]
