"""Where promote's plan meets data capture and shadow variants (``--capture``, ``--shadow``).

:mod:`.capture` and :mod:`.shadow` hold the two features; this module is what the plan
(:mod:`.state`, :mod:`.planning`) calls: the checks, the endpoint config's extra fields
and the lines the dry run shows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tritonship.cloud import shadow
from tritonship.cloud.capture import data_capture_config, describe_capture

if TYPE_CHECKING:
    from tritonship.cloud.deployed import Deployed
    from tritonship.cloud.state import Plan, PromoteOptions


def check_options(options: PromoteOptions) -> None:
    """Refuse capture and shadow options SageMaker would refuse (the capture spec checks itself)."""
    shadow.check_options(options)


def capture_config(plan: Plan) -> dict[str, Any] | None:
    """The plan's DataCaptureConfig, or None without ``--capture``."""
    options = plan.options
    if options.capture is None:
        return None
    return data_capture_config(options.capture, options.bucket, options.prefix, options.kms_key)


def config_extras(plan: Plan) -> dict[str, Any]:
    """CreateEndpointConfig's ``DataCaptureConfig`` and ``ShadowProductionVariants``, if any."""
    extras: dict[str, Any] = {}
    capture = capture_config(plan)
    if capture is not None:
        extras["DataCaptureConfig"] = capture
    shadows = shadow.shadow_variants(plan)
    if shadows:
        extras[shadow.SHADOWS_KEY] = shadows
    return extras


def change_lines(plan: Plan, deployed: Deployed) -> list[str]:
    """What the update changes in data capture and shadow variants."""
    before = describe_capture(deployed.config.get("DataCaptureConfig"))
    after = describe_capture(capture_config(plan))
    lines = [] if before == after else [f"data capture: {before} -> {after}"]
    return lines + shadow.change_lines(plan, deployed)


def plan_lines(plan: Plan) -> list[str]:
    """The dry run's notes on capture and shadow (what the calls alone do not say)."""
    lines = []
    capture = capture_config(plan)
    if capture is not None:
        lines.append(
            f"data capture: {describe_capture(capture)}; SageMaker writes JSON Lines under "
            f"{capture['DestinationS3Uri'].rstrip('/')}/{plan.endpoint}/<variant>/yyyy/mm/dd/hh/"
            " (read them with tritonship capture decode or tritonship replay)"
        )
    if plan.options.shadow is not None and not plan.others:
        lines.append(
            "shadow: the live variant is read from the endpoint when promote runs; "
            "ProductionVariants below lacks it (the endpoint could not be described)"
        )
    if plan.options.shadow is not None:
        lines.append(
            f"shadow: the smoke test reaches the live variant (SageMaker discards the shadow's "
            f"answers); compare them with tritonship metrics --endpoint {plan.endpoint}, then "
            f"make the shadow live with promote --shadow-promote"
        )
    return lines
