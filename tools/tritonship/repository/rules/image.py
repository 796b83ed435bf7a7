"""Whether the image a tag names carries the backend each model needs."""

from __future__ import annotations

from tritonship.repository.config import Finding, Model, field_pattern
from tritonship.sagemaker.images import newest_tag


def check_image(model: Model, tag: str, backends: frozenset[str]) -> list[Finding]:
    """A finding when the image ``tag`` lacks the backend ``model`` needs."""
    if not model.backend or model.backend in backends:
        return []
    fieldname = "platform" if model.config.platform else "backend"
    hint = ""
    if model.backend == "tensorflow":
        last = newest_tag(["tensorflow"]).tag
        hint = (
            f" (TensorFlow left Triton in 25.03; last SageMaker tag with it: {last}); fix: "
            f"tritonship build --format onnx --image-tag {tag}, or target {last}"
        )
    return [
        model.finding(
            f"{fieldname} {model.kind!r} needs the {model.backend!r} backend, "
            f"which image {tag} does not have{hint}",
            field_pattern(fieldname, model.kind),
        )
    ]
