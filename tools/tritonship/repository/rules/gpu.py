"""A GPU build's memory budget: the decoded images one GPU may have to hold must fit.

:mod:`tritonship.repository.memory` bounds what the DALI runs on one GPU decode at once;
the build manifest's ``gpu`` record (``tritonship build --device gpu``) gives the budget.
"""

from __future__ import annotations

from tritonclient.grpc import model_config_pb2 as mc

from tritonship.repository import memory
from tritonship.repository.config import Finding, Model, Repository, field_pattern
from tritonship.repository.manifest import GpuBuild, read_manifest


def _int_parameter(model: Model, key: str) -> int | None:
    value = model.config.parameters[key].string_value if key in model.config.parameters else ""
    return int(value) if value.strip().isdigit() else None


def _dali_instances_per_gpu(model: Model) -> int:
    """DALI instances on one GPU: a GPU (or AUTO) group's count is per GPU; default one."""
    gpu_kinds = (mc.ModelInstanceGroup.KIND_GPU, mc.ModelInstanceGroup.KIND_AUTO)
    groups = [g for g in model.config.instance_group if g.kind in gpu_kinds]
    return sum(max(g.count, 1) for g in groups) if groups else 1


def check_gpu_budget(repository: Repository) -> list[Finding]:
    """A GPU build: the decoded images of the DALI runs on one GPU must fit its budget."""
    manifest = read_manifest(repository.root)
    record = manifest.gpu if manifest else None
    if record is None:
        return []
    guard = next(
        (m for m in repository.models.values() if "max_pixels" in m.config.parameters), None
    )
    findings = []
    for model in (m for m in repository.models.values() if m.kind == "dali"):
        if guard is None or _int_parameter(guard, "max_pixels") is None:
            findings.append(
                model.finding(
                    "nothing bounds the size of the images this GPU model decodes: add a guard "
                    "step with max_pixels (and max_request_pixels) before it",
                    field_pattern("max_batch_size"),
                )
            )
            continue
        findings += _budget_finding(model, guard, record)
    return findings


def _budget_finding(model: Model, guard: Model, record: GpuBuild) -> list[Finding]:
    batched = model.config.HasField("dynamic_batching")  # a run then mixes requests
    bound = memory.DecodeBound(
        images=max(model.config.max_batch_size, 1),
        max_pixels=_int_parameter(guard, "max_pixels") or 0,
        max_request_pixels=None if batched else _int_parameter(guard, "max_request_pixels"),
        instances=_dali_instances_per_gpu(model),
    )
    budget = record.dali_memory_budget_bytes
    if bound.bytes <= budget:
        return []
    limits = f"max_batch_size {bound.images} x the guard's max_pixels {bound.max_pixels / 1e6:g} MP"
    if bound.max_request_pixels:
        limits += f", or max_request_pixels {bound.max_request_pixels / 1e6:g} MP"
    message = (
        f"one GPU may have to hold {memory.gib(bound.bytes)} of decoded images "
        f"({bound.instances} instance(s) x {bound.pixels_per_run / 1e6:g} megapixels x "
        f"{memory.BYTES_PER_PIXEL} bytes: {limits}), more than the DALI budget of "
        f"{memory.gib(budget)} on {record.instance_type}: lower the "
        "guard's max_request_pixels (tritonship build --device gpu sets it) or max_batch_size"
    )
    return [model.finding(message, field_pattern("max_batch_size"))]
