"""Promote's plan: checked offline, resolved against what is deployed, printed by --dry-run.

:func:`build_plan` checks the options and the packaged archive and names everything
without calling AWS (it also reads the smoke-test photo, so that a missing one fails
before anything happens). :func:`resolve` fits it to the endpoint as deployed (the
variants kept beside a new one). :func:`changes` says what the update changes, and
:func:`describe_plan` lists every AWS call, in order, with its key arguments.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import Any

from tritonship.artifact.package import load_package, manifest_path_for
from tritonship.cloud import autoscaling
from tritonship.cloud.aws import AwsClients, aws_errors, toolkit_tags
from tritonship.cloud.deployed import Deployed, container_changes, read_deployed, variant_changes
from tritonship.cloud.deployment import deployment_config, is_guarded
from tritonship.cloud.endpoints import Waiting
from tritonship.cloud.preflight import describe_checks
from tritonship.cloud.smoke import photo_bytes
from tritonship.cloud.state import DEFAULT_INSTANCE_TYPE, Plan, PromoteOptions
from tritonship.cloud.upload import PART_SIZE, UploadSpec
from tritonship.errors import TritonshipError, UsageError
from tritonship.repository.accelerators import startup_notes
from tritonship.sagemaker.images import DEFAULT_TAG, backends_for_tag, image_uri
from tritonship.sagemaker.serve import DEFAULT_MODEL_VAR, check_inference_type
from tritonship.sagemaker.settings import SageMakerEnv, env_from_values, overlay

_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_ROLE = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/\S+$")


def _check_options(options: PromoteOptions) -> None:
    """Refuse names and values SageMaker would refuse, before anything else."""
    for what, name in (("endpoint", options.endpoint), ("variant", options.variant or "x")):
        if not _NAME.match(name):
            raise UsageError(
                f"{what} name {name!r} is not valid",
                hint="1-63 letters, digits and hyphens, starting with a letter or digit",
            )
    if not _ROLE.match(options.role):
        raise UsageError(
            f"--role {options.role!r} is not an IAM role ARN",
            hint="arn:aws:iam::<account>:role/<name>",
        )
    if not options.instance_type.startswith("ml.") or options.instance_count < 1:
        raise UsageError(
            f"{options.instance_count} x {options.instance_type} is not valid",
            hint=f"for example --instance-type {DEFAULT_INSTANCE_TYPE} --instance-count 1",
        )
    if options.weight < 0:
        raise UsageError(f"--weight {options.weight:g} is negative", hint="e.g. --weight 0.1")


def _check_package(manifest: dict[str, Any], env: dict[str, str], tag: str) -> None:
    """Refuse an image without a backend the archive needs, or an env its serve refuses."""
    missing = set(manifest["image"]["backends_needed"]) - backends_for_tag(tag)
    if missing:
        raise UsageError(
            f"image {tag} lacks the {', '.join(sorted(missing))} backend(s) the archive needs",
            hint=f"use --image-tag {DEFAULT_TAG}",
        )
    default = env.get(DEFAULT_MODEL_VAR)
    if default not in manifest["directories"]:
        raise UsageError(
            f"{DEFAULT_MODEL_VAR}={default} names no model folder of the archive",
            hint="fix container/sagemaker.env and package again",
        )
    check_inference_type(env, tag)


def promoted_env(manifest: dict[str, Any], options: PromoteOptions) -> SageMakerEnv:
    """What ``package`` recorded, with the shell, ``--env-file`` and ``--env`` on top."""
    recorded = env_from_values(manifest.get("environment") or {}, "package manifest")
    return overlay(recorded, options.env_sources)


def _upload_spec(
    options: PromoteOptions, archive: dict[str, Any], tags: dict[str, str]
) -> UploadSpec:
    """Where the archive goes: ``<prefix>/<endpoint>/<sha16>/<file name>``."""
    sha = archive["sha256"]
    key = f"{options.prefix.strip('/')}/{options.endpoint}/{sha[:16]}/{options.archive.name}"
    return UploadSpec(
        options.archive, options.bucket, key, sha, archive["bytes"], options.kms_key, tags
    )


def build_plan(options: PromoteOptions, region: str) -> Plan:
    """Check the options, the packaged archive and the photo; name everything. No AWS call."""
    _check_options(options)
    deployment = deployment_config(options.traffic, options.alarms, options.bake_minutes)
    manifest = load_package(options.archive)
    env = promoted_env(manifest, options).values
    _check_package(manifest, env, options.image_tag)
    tags = toolkit_tags(options.endpoint, manifest["archive"]["sha256"])
    upload = _upload_spec(options, manifest["archive"], tags)
    photo = photo_bytes(options.photo) if options.smoke_test else None
    image = image_uri(region, options.image_tag)
    return Plan(options, region, image, upload, env, tags, deployment, photo)


# --- against the deployed endpoint -------------------------------------------------------


def resolve(plan: Plan, deployed: Deployed | None) -> Plan:
    """Fit the plan to the endpoint as deployed: with --variant, keep the other variants."""
    others: tuple[dict[str, Any], ...] = ()
    if deployed is not None and plan.options.variant:
        others = tuple(
            _kept(variant, deployed.summary(variant["VariantName"]))
            for variant in deployed.variants
            if variant["VariantName"] != plan.variant
        )
    resolved = replace(plan, others=others)
    if deployed is not None and not same_variants(resolved, deployed):
        _refuse_guardrails(resolved, deployed)
    return resolved


def _kept(variant: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    """A deployed variant as the new config keeps it: at its current weight and count."""
    kept = dict(variant)
    if current.get("CurrentWeight") is not None:
        kept["InitialVariantWeight"] = float(current["CurrentWeight"])
    if current.get("CurrentInstanceCount") and "InstanceType" in kept:
        kept["InitialInstanceCount"] = int(current["CurrentInstanceCount"])
    return kept


def same_variants(plan: Plan, deployed: Deployed) -> bool:
    """Whether the new config keeps exactly the deployed variant names."""
    return {v["VariantName"] for v in plan.variants} == {
        v["VariantName"] for v in deployed.variants
    }


def _refuse_guardrails(plan: Plan, deployed: Deployed) -> None:
    """Guardrails need the same variant names (AWS guide "Exclusions"): refuse them."""
    if is_guarded(plan.deployment):
        raise UsageError(
            f"--traffic/--alarm/--bake need the same variant names, and this promote changes "
            f"{_names(deployed.variants)} to {_names(plan.variants)}",
            hint="add the variant first (without guardrails), then shift traffic with "
            "tritonship traffic, or promote into an existing variant",
        )


def _names(variants: list[dict[str, Any]]) -> str:
    return ", ".join(v["VariantName"] for v in variants)


def update_request(plan: Plan, deployed: Deployed) -> dict[str, Any]:
    """UpdateEndpoint's arguments: guardrails, and the capacity kept when autoscaled."""
    request: dict[str, Any] = {
        "EndpointName": plan.endpoint,
        "EndpointConfigName": plan.config_name,
    }
    if same_variants(plan, deployed):
        request["DeploymentConfig"] = plan.deployment
    if deployed.autoscaled:
        request["RetainAllVariantProperties"] = True
        if plan.options.variant:
            request["ExcludeRetainedVariantProperties"] = [{"VariantPropertyType": "DesiredWeight"}]
    return request


def changes(plan: Plan, deployed: Deployed | None) -> list[str]:
    """What promoting ``plan`` changes on the endpoint as deployed, for the terminal."""
    name = plan.endpoint
    if deployed is None:
        return [f"endpoint {name} does not exist: it will be created ({_shape(plan)})"]
    lines = [f"endpoint {name} is {deployed.status}, serving {deployed.config_name}"]
    if deployed.status != "InService":
        lines.append(f"promote refuses it until it is InService again ({deployed.status} now)")
    if deployed.config_name == plan.config_name:
        return [*lines, f"it serves {plan.config_name} already: nothing to deploy"]
    old = deployed.variant(plan.variant)
    if old is None:
        lines.append(f"variant {plan.variant} is new ({_shape(plan)})")
    else:
        model = deployed.models.get(old.get("ModelName", ""))
        same_model = old.get("ModelName") == plan.model_name
        diff = [] if same_model else container_changes(model, plan.model_request())
        diff += variant_changes(old, plan.our_variant())
        lines += [f"variant {plan.variant}: {line}" for line in diff] or [
            f"variant {plan.variant}: unchanged"
        ]
    return lines + _variant_lines(plan, deployed) + _capacity_lines(plan, deployed)


def _shape(plan: Plan) -> str:
    o = plan.options
    return f"{o.instance_count} x {o.instance_type}, weight {o.weight:g}"


def _variant_lines(plan: Plan, deployed: Deployed) -> list[str]:
    """The variant set, when it changes (and what that means for the DeploymentConfig)."""
    if same_variants(plan, deployed):
        return []
    return [
        f"variants: {_names(deployed.variants)} -> {_names(plan.variants)} (weights "
        + ", ".join(
            f"{v['VariantName']}={v.get('InitialVariantWeight', 1.0):g}" for v in plan.variants
        )
        + "); no DeploymentConfig is sent: SageMaker applies one only to the same variants"
    ]


def _capacity_lines(plan: Plan, deployed: Deployed) -> list[str]:
    """Item 1 of issue 11: what happens to the instance count at cutover."""
    if not deployed.autoscaled:
        return ["not autoscaled: the new fleet starts at the config's instance counts"]
    scaled = ", ".join(
        f"{variant} {low}..{high} ({deployed.summary(variant).get('CurrentInstanceCount', '?')} "
        "now)"
        for variant, (low, high) in sorted(deployed.scaling.items())
    )
    return [
        f"autoscaled ({scaled}): UpdateEndpoint gets RetainAllVariantProperties=True, so the "
        f"new fleet keeps the current instance counts (--instance-count "
        f"{plan.options.instance_count} applies to new variants only)"
    ]


# --- the dry run -----------------------------------------------------------------------------


def preview(plan: Plan, clients: AwsClients, waiting: Waiting) -> tuple[list[str], list[str]]:
    """The dry run: (what changes, the calls). Only Describe/List calls reach AWS."""
    try:
        with aws_errors("describe"):
            deployed = read_deployed(clients, plan.endpoint)
    except TritonshipError as err:
        unknown = [f"the deployed endpoint cannot be described ({err}): differences not shown"]
        return unknown, describe_plan(plan, waiting, None, known=False)
    plan = resolve(plan, deployed)
    return changes(plan, deployed), describe_plan(plan, waiting, deployed, known=True)


def _args(params: dict[str, Any]) -> str:
    """Call arguments for display (tags are listed once, at the end)."""
    return ", ".join(f"{k}={json.dumps(v)}" for k, v in params.items() if k != "Tags")


def describe_plan(
    plan: Plan, waiting: Waiting, deployed: Deployed | None = None, known: bool = False
) -> list[str]:
    """Every AWS call ``apply`` may make, with its key arguments, in order."""
    o, up, name = plan.options, plan.upload, plan.endpoint
    mib = up.size / (1 << 20)
    extra = {k: v for k, v in up.extra_args().items() if k not in ("Tagging", "Metadata")}
    return [
        f"sagemaker.describe_endpoint(EndpointName={name}), describe_endpoint_config, "
        "describe_model, application-autoscaling.describe_scalable_targets  -> what is "
        "deployed (an existing endpoint must be InService and tagged by tritonship)",
        *describe_checks(plan, deployed),
        f"s3.get_public_access_block(Bucket={up.bucket})  -> refuse unless all four blocks are on",
        f"s3.head_object(Bucket={up.bucket}, Key={up.key}, ChecksumMode=ENABLED)  -> skip the "
        "upload when this archive (archive-sha256 metadata, size, checksum) is there",
        f"s3.upload_file({o.archive} -> {up.uri}, {mib:.1f} MiB in {PART_SIZE >> 20} MiB parts, "
        f"{_args(extra)}, Metadata archive-sha256={up.sha256})",
        f"s3.put_object(Key={up.manifest_key})  -> the package manifest",
        "s3.head_object(...)  -> verify size, archive-sha256 and S3's SHA-256 checksum",
        f"sagemaker.create_model({_args(plan.model_request())})  -> unless it exists",
        f"sagemaker.create_endpoint_config({_args(plan.config_request())})  -> unless it exists",
        _deploy_line(plan, deployed, known),
        f"waiter endpoint_in_service (also failing on every terminal status) "
        f"(EndpointName={name}, every {waiting.delay:g} s, up to "
        f"{waiting.delay * waiting.attempts / 60:.0f} min)  -> on a terminal status: the "
        "FailureReason and the tail of the endpoint's CloudWatch log streams",
        *(f"  start-up: {note}" for note in _startup_notes(plan)),
        *_tail_lines(plan),
    ]


def _startup_notes(plan: Plan) -> list[str]:
    """What delays InService after each start (TensorRT builds), from the package manifest."""
    try:
        manifest = json.loads(manifest_path_for(plan.options.archive).read_text("utf-8"))
    except (OSError, ValueError):
        return []
    return startup_notes(manifest)


def _deploy_line(plan: Plan, deployed: Deployed | None, known: bool) -> str:
    """CreateEndpoint, or UpdateEndpoint with its whole DeploymentConfig."""
    create = (
        f"sagemaker.create_endpoint(EndpointName={plan.endpoint}, "
        f"EndpointConfigName={plan.config_name})"
    )
    if known and deployed is None:
        return create
    if deployed is not None:
        return f"sagemaker.update_endpoint({_args(update_request(plan, deployed))})"
    return (
        f"{create}  or  sagemaker.update_endpoint(EndpointName={plan.endpoint}, "
        f"EndpointConfigName={plan.config_name}, DeploymentConfig={json.dumps(plan.deployment)}"
        "[, RetainAllVariantProperties=true when the endpoint is autoscaled])"
    )


def _tail_lines(plan: Plan) -> list[str]:
    """The smoke test, autoscaling, rollback and tags lines of the plan."""
    o, name = plan.options, plan.endpoint
    lines = []
    if o.smoke_test:
        photo = o.photo or "scikit-image's cat photo"
        lines.append(
            f"sagemaker-runtime.invoke_endpoint(EndpointName={name}, {photo} as "
            "JSON)  -> OUTPUT must be [1,1001] summing to 1"
        )
    if o.autoscale:
        register = autoscaling.register_request(name, o.autoscale, plan.tags, plan.variant)
        policy = autoscaling.policy_request(name, o.autoscale_target, plan.variant)
        lines += [
            f"application-autoscaling.register_scalable_target({_args(register)})",
            f"application-autoscaling.put_scaling_policy({_args(policy)})",
        ]
    lines += [
        "on any failure after the first write (not Ctrl-C): sagemaker.update_endpoint back "
        "to the previous config, or delete_endpoint; autoscaling as it was; then delete the "
        "config and model this run created",
        "tags on every resource: " + ", ".join(f"{k}={v}" for k, v in plan.tags.items()),
    ]
    return lines
