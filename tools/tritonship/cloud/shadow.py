"""``promote --shadow PCT``: the new build as a shadow variant beside the live one.

A shadow variant gets a copy of live requests and its answers are discarded: "Only the
responses of the production variant are returned to the calling application" (AWS guide
"Shadow tests", awsdocs/amazon-sagemaker-developer-guide ``doc_source/shadow-tests.md``).
The API shape is CreateEndpointConfig's ``ShadowProductionVariants``, a list of the same
``ProductionVariant`` structures as ``ProductionVariants`` ("If you use this field, you can
only specify one variant for ProductionVariants and one variant for
ShadowProductionVariants": botocore's service model, sagemaker 2017-07-24
``service-2.json``, ``CreateEndpointConfigInput.ShadowProductionVariants``); AWS's guide
"Shadow variants" (``doc_source/model-shadow-deployment.md``) deploys one with
``InitialVariantWeight`` 1 beside a production variant of weight 1.

How much traffic the shadow sees: the shadow's ``InitialVariantWeight`` relative to the
production variant's, so ``--shadow PCT`` sets it to ``PCT / 100`` of the live weight. AWS
documents a share only for shadow tests (``ShadowModelVariantConfig.SamplingPercentage``,
"the percentage of inference requests that Amazon SageMaker replicates from the
production variant to the shadow variant"); the weight ratio is how public write-ups of
``ShadowProductionVariants`` describe it, and has not been checked against AWS here.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from tritonship.cloud.guardrails import is_guarded
from tritonship.errors import UsageError

if TYPE_CHECKING:
    from tritonship.cloud.deployed import Deployed
    from tritonship.cloud.metrics import MetricsReport
    from tritonship.cloud.state import Plan, PromoteOptions

#: The shadow variant's name unless --variant names it.
SHADOW_VARIANT = "Shadow"
SHADOWS_KEY = "ShadowProductionVariants"


def check_options(options: PromoteOptions) -> None:
    """Refuse what a shadow cannot be: a share outside 1-100, guardrails, autoscaling."""
    if options.shadow is None:
        return
    if not 1 <= options.shadow <= 100:
        raise UsageError(
            f"--shadow {options.shadow:g} is not a percentage of live requests (1-100)",
            hint="e.g. --shadow 100 sends the shadow a copy of every request",
        )
    if options.autoscale:
        raise UsageError(
            "--autoscale applies to live variants, not to a shadow",
            hint="autoscale it after --shadow-promote makes it live",
        )
    from tritonship.cloud.guardrails import deployment_config

    guarded = deployment_config(options.traffic, options.alarms, options.bake_minutes)
    if is_guarded(guarded):
        raise UsageError(
            "--traffic, --alarm and --bake shift live traffic; a shadow takes none",
            hint="give them to promote --shadow-promote, which makes the shadow live",
        )


def deployed_shadows(deployed: Deployed | None) -> list[dict[str, Any]]:
    """The shadow variants of the config an endpoint serves."""
    return list((deployed.config if deployed else {}).get(SHADOWS_KEY) or [])


def resolve_shadow(plan: Plan, deployed: Deployed | None) -> Plan:
    """Keep the endpoint's one live variant as it is; the new build goes beside it."""
    if deployed is None:
        raise UsageError(
            f"--shadow needs a live variant, and endpoint {plan.endpoint} does not exist",
            hint="promote the current build without --shadow first",
        )
    live = deployed.variants
    if len(live) != 1:
        names = ", ".join(v["VariantName"] for v in live)
        raise UsageError(
            f"endpoint {plan.endpoint} has {len(live)} live variants ({names}); SageMaker takes "
            "a shadow beside exactly one",
            hint="shift all traffic to one variant and promote without --variant first",
        )
    if live[0]["VariantName"] == plan.variant:
        raise UsageError(
            f"the shadow cannot take the live variant's name {plan.variant}",
            hint=f"leave --variant out (the shadow is then named {SHADOW_VARIANT})",
        )
    return replace(plan, others=(_as_deployed(live[0], deployed),))


def _as_deployed(variant: dict[str, Any], deployed: Deployed) -> dict[str, Any]:
    """The live variant as the new config keeps it: its current weight and count."""
    kept = dict(variant)
    current = deployed.summary(variant["VariantName"])
    if current.get("CurrentWeight") is not None:
        kept["InitialVariantWeight"] = float(current["CurrentWeight"])
    if current.get("CurrentInstanceCount") and "InstanceType" in kept:
        kept["InitialInstanceCount"] = int(current["CurrentInstanceCount"])
    return kept


def shadow_variants(plan: Plan) -> list[dict[str, Any]]:
    """``ShadowProductionVariants``: the new build at PCT % of the live weight, or none."""
    if plan.options.shadow is None:
        return []
    live_weight = float((plan.others[0] if plan.others else {}).get("InitialVariantWeight", 1.0))
    weight = round(live_weight * plan.options.shadow / 100, 6)
    return [{**plan.our_variant(), "InitialVariantWeight": weight}]


def change_lines(plan: Plan, deployed: Deployed) -> list[str]:
    """What the update does to the endpoint's shadow variant."""
    before = {v["VariantName"]: v for v in deployed_shadows(deployed)}
    after = shadow_variants(plan)
    lines = []
    for variant in after:
        name, old = variant["VariantName"], before.get(variant["VariantName"])
        live = plan.others[0]["VariantName"] if plan.others else "the live variant"
        verb = "replaced" if old else "added"
        lines.append(
            f"shadow variant {name} {verb}: model {variant['ModelName']} on "
            f"{variant['InitialInstanceCount']} x {variant['InstanceType']}, a copy of "
            f"{plan.options.shadow:g}% of {live}'s requests (weight "
            f"{variant['InitialVariantWeight']:g}); SageMaker discards its answers"
        )
    gone = sorted(set(before) - {v["VariantName"] for v in after})
    lines += [f"shadow variant {name} is removed (this promote names no --shadow)" for name in gone]
    return lines


def variant_roles(sagemaker: Any, endpoint: str) -> dict[str, str]:
    """``{variant: "live" | "shadow"}`` from DescribeEndpoint (``{}`` when it cannot tell)."""
    try:
        described = sagemaker.describe_endpoint(EndpointName=endpoint)
    except Exception:  # noqa: BLE001 - metrics go on without roles (not found, no permission)
        return {}
    roles = {v["VariantName"]: "live" for v in described.get("ProductionVariants") or []}
    roles.update({v["VariantName"]: "shadow" for v in described.get(SHADOWS_KEY) or []})
    return roles


#: The metrics ``tritonship metrics`` sets side by side for a shadow and its live variant.
COMPARED_METRICS = ("Invocations", "ModelLatency", "Invocation4XXErrors", "Invocation5XXErrors")


def comparison_lines(report: MetricsReport, roles: dict[str, str]) -> list[str]:
    """``shadow S vs live L: ModelLatency 12.3 ms vs 10.1 ms (+22%)``, one line per metric."""
    live = [name for name, role in roles.items() if role == "live"]
    shadows = [name for name, role in roles.items() if role == "shadow"]
    if len(live) != 1 or not shadows:
        return []
    lines = []
    for name in shadows:
        cells = [_side_by_side(report, metric, name, live[0]) for metric in COMPARED_METRICS]
        shown = ", ".join(cell for cell in cells if cell)
        lines.append(f"shadow {name} vs live {live[0]}: {shown or 'no data yet'}")
    return lines


def _side_by_side(report: MetricsReport, metric: str, shadow: str, live: str) -> str | None:
    """One metric of both variants over the window, with the relative change."""
    values = {}
    unit = ""
    for series in report.series:
        if series.spec.name == metric and series.variant in (shadow, live):
            values[series.variant] = series.summary()
            unit = "" if series.spec.unit == "count" else f" {series.spec.unit}"
    mine, theirs = values.get(shadow), values.get(live)
    if mine is None and theirs is None:
        return None
    change = f" ({(mine - theirs) / theirs:+.0%})" if mine is not None and theirs else ""
    return f"{metric} {_number(mine)}{unit} vs {_number(theirs)}{unit}{change}"


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:,.4g}"
