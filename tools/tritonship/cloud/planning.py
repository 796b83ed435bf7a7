"""Promote's plan: checked offline, resolved against what is deployed, printed by --dry-run.

:func:`build_plan` checks the options and the packaged archive(s) and names everything
without calling AWS (it also makes the smoke-test request, reading the photo, so that a
missing one fails before anything happens). :func:`resolve` fits it to the endpoint as
deployed (the variants kept beside a new one). :func:`changes` says what the update
changes, and :func:`describe_plan` lists every AWS call, in order, with its key arguments.

A single-model endpoint's model names one archive and takes the environment its package
recorded, with the user's on top. A multi-model endpoint's model (``--multi-model``)
names an S3 prefix holding every archive, a target model each; its environment is the
container's own (:func:`multi_model_env`), whatever the archives recorded.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from tritonship.artifact.manifest import (
    ArchiveRecord,
    Invocation,
    PackageError,
    PackageManifest,
    load_package,
    manifest_path_for,
    read_package_manifest,
)
from tritonship.cloud import autoscaling, traffic_loop
from tritonship.cloud.asynchronous import scaling_lines, smoke_input
from tritonship.cloud.aws import AwsClients, aws_errors, toolkit_tags
from tritonship.cloud.deployed import Deployed, container_changes, read_deployed, variant_changes
from tritonship.cloud.endpoints import Waiting
from tritonship.cloud.guardrails import (
    Budget,
    budget_of,
    check_variant_timeouts,
    deployment_config,
    is_guarded,
    provisioning_seconds,
)
from tritonship.cloud.preflight import describe_checks
from tritonship.cloud.shadow import resolve_shadow
from tritonship.cloud.smoke import (
    CLASSIFIER_ENSEMBLE,
    SmokeRequest,
    generic_request,
    photo_request,
)
from tritonship.cloud.state import DEFAULT_INSTANCE_TYPE, MODELS_FOLDER, Plan, PromoteOptions
from tritonship.cloud.upload import MANIFEST_OBJECT, PART_SIZE, UploadSpec
from tritonship.errors import TritonshipError, UsageError
from tritonship.repository.accelerators import startup_notes
from tritonship.sagemaker.images import DEFAULT_TAG, backends_for_tag, image_uri, newest_tag
from tritonship.sagemaker.serve import DEFAULT_MODEL_VAR, check_inference_type
from tritonship.sagemaker.settings import (
    FROM_DEFAULTS,
    MULTI_MODEL_VAR,
    SageMakerEnv,
    overlay,
    packaged_env,
)

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
    check_variant_timeouts(options.startup_timeout, options.download_timeout)
    _check_async(options)
    traffic_loop.check_options(options)


def _check_async(options: PromoteOptions) -> None:
    """Refuse what an asynchronous endpoint cannot be, and scaling to 0 without one."""
    if options.asynchronous is None:
        if options.autoscale and options.autoscale[0] == 0:
            raise UsageError(
                "--autoscale 0:MAX scales to zero, which only an asynchronous endpoint can",
                hint="add --async --output s3://BUCKET/PREFIX/, or start at 1",
            )
        return
    options.asynchronous.check()
    if options.multi_model:
        raise UsageError(
            "--async and --multi-model cannot be combined: SageMaker runs asynchronous "
            "inference on single-model endpoints",
            hint="promote the archives to separate asynchronous endpoints",
        )
    if options.variant:
        raise UsageError(
            "--async with --variant: InvokeEndpointAsync cannot name a variant "
            "(no TargetVariant), so the smoke test could not reach the new one",
            hint="give each version its own asynchronous endpoint",
        )


def _check_backends(manifests: list[PackageManifest], tag: str) -> None:
    """Refuse an image without a backend some archive needs."""
    needed = {b for manifest in manifests for b in manifest.image.backends_needed}
    missing = needed - backends_for_tag(tag)
    if missing:
        what = "the archive needs" if len(manifests) == 1 else "the archives need"
        raise UsageError(
            f"image {tag} lacks the {', '.join(sorted(missing))} backend(s) {what}",
            hint=f"use --image-tag {_tag_for(needed)}",
        )


def _tag_for(backends: set[str]) -> str:
    """The newest tag with every backend, else the default (validation says what lacks)."""
    try:
        return newest_tag(backends).tag
    except UsageError:
        return DEFAULT_TAG


def served_model(manifest: PackageManifest, env: dict[str, str]) -> str | None:
    """The model ``/invocations`` serves: the env's default, else the archive's only model."""
    models = manifest.models
    return env.get(DEFAULT_MODEL_VAR) or (models[0] if len(models) == 1 else None)


def _check_package(manifest: PackageManifest, env: dict[str, str], tag: str) -> None:
    """Refuse an image without a backend the archive needs, or an env its serve refuses."""
    _check_backends([manifest], tag)
    if env.get(MULTI_MODEL_VAR) == "true":
        raise UsageError(
            f"{MULTI_MODEL_VAR}=true makes the container a multi-model one, and this model "
            "names one archive",
            hint="promote --multi-model (ModelDataUrl then names an S3 prefix)",
        )
    default = served_model(manifest, env)
    if default not in manifest.directories:
        raise UsageError(
            f"{DEFAULT_MODEL_VAR}={default} names no model folder of the archive",
            hint=f"set --env {DEFAULT_MODEL_VAR}=<model folder> (or package again)",
        )
    check_inference_type(env, tag)


def promoted_env(manifest: PackageManifest, options: PromoteOptions) -> SageMakerEnv:
    """What ``package`` recorded, with the shell, ``--env-file`` and ``--env`` on top."""
    values = manifest.environment
    recorded = manifest.environment_origins
    origins = {
        key: f"package manifest, {recorded[key]}" if key in recorded else "package manifest"
        for key in values
    }
    return overlay(SageMakerEnv(dict(values), origins), options.env_sources)


def multi_model_env(options: PromoteOptions) -> SageMakerEnv:
    """A multi-model endpoint's one environment: the packaged defaults and the user's.

    Not what any archive recorded: the environment is the container's, shared by every
    archive under the prefix, and part of the model's identity, which must not change
    when an archive is added. The packaged default model names our ensemble; each
    request names its model here, so it is dropped (``--env`` may still set one, as
    AWS's multi-model Triton example does). ``SAGEMAKER_MULTI_MODEL=true`` is set:
    SageMaker exports it itself for ``Mode=MultiModel`` (an endpoint's container
    environment shows it: pytorch/serve issue #1028; AWS's notebook
    sagemaker-triton/ensemble/mme_gpu_ensemble sets only the default model name), and
    setting it too keeps the container's definition true to what ``serve
    --multi-model`` runs locally.
    """
    base = packaged_env()
    values, origins = dict(base.values), dict(base.origins)
    if origins.get(DEFAULT_MODEL_VAR) == FROM_DEFAULTS:
        values.pop(DEFAULT_MODEL_VAR, None)
        origins.pop(DEFAULT_MODEL_VAR, None)
    sources = replace(options.env_sources, multi_model=True)
    return overlay(SageMakerEnv(values, origins), sources)


def _upload_spec(
    options: PromoteOptions,
    path: Path,
    manifest: PackageManifest,
    key: str,
    manifest_name: str = MANIFEST_OBJECT,
) -> UploadSpec:
    """The upload of one archive to ``key``, tagged for teardown with its SHA-256."""
    archive = _archive(manifest, path)
    tags = toolkit_tags(options.endpoint, archive.sha256)
    return UploadSpec(
        path,
        options.bucket,
        key,
        archive.sha256,
        archive.size,
        options.kms_key,
        tags,
        manifest_name,
    )


def _archive(manifest: PackageManifest, path: Path) -> ArchiveRecord:
    """The archive record of a loaded manifest (load_package refuses one without it)."""
    if manifest.archive is None:
        raise PackageError(f"{manifest_path_for(path).name} records no archive")
    return manifest.archive


def _smoke_request(
    options: PromoteOptions, manifest: PackageManifest, model: str | None, target: str | None
) -> tuple[SmokeRequest | None, tuple[str, ...]]:
    """The smoke test for ``model`` (the photo for our ensemble), or None and why."""
    if not options.smoke_test:
        return None, ()
    if model == CLASSIFIER_ENSEMBLE and manifest.weights_source is not None:
        return photo_request(options.photo, target), ()
    if options.photo is not None:
        raise UsageError(
            f"--photo is for the Inception ensemble, and the smoke test reaches {model}",
            hint="leave --photo out: the smoke test sends zeros for the model's inputs",
        )
    invocation: Invocation | None = manifest.invocation
    if invocation is None or invocation.model != model:
        return None, (f"smoke test skipped: the package manifest records no inputs of {model}",)
    request, reason = generic_request(invocation, target)
    return request, (() if request else (f"smoke test skipped: {reason}",))


def build_plan(options: PromoteOptions, region: str) -> Plan:
    """Check the options, the packaged archive(s) and the photo; name everything. No AWS call."""
    _check_options(options)
    provisioning = provisioning_seconds(
        options.startup_timeout, options.download_timeout, options.multi_model
    )
    deployment = deployment_config(
        options.traffic, options.alarms, options.bake_minutes, provisioning
    )
    if options.multi_model:
        return _multi_model_plan(options, region, deployment)
    if options.archives[1:] or options.smoke_target_model:
        raise UsageError(
            "several archives, or a smoke test's target model, need a multi-model endpoint",
            hint="add --multi-model",
        )
    manifest = load_package(options.archive)
    env = promoted_env(manifest, options)
    _check_package(manifest, env.values, options.image_tag)
    sha = _archive(manifest, options.archive).sha256
    key = f"{options.prefix.strip('/')}/{options.endpoint}/{sha[:16]}/{options.archive.name}"
    upload = _upload_spec(options, options.archive, manifest, key)
    smoke, notes = _smoke_request(options, manifest, served_model(manifest, env.values), None)
    return Plan(
        options,
        region,
        image_uri(region, options.image_tag),
        (upload,),
        env.values,
        toolkit_tags(options.endpoint, sha),
        deployment,
        smoke,
        env_origins=env.origins,
        model_data_url=upload.uri,
        notes=notes,
    )


# --- multi-model endpoints -------------------------------------------------------------------


def models_prefix(options: PromoteOptions) -> str:
    """The S3 key prefix a multi-model endpoint's archives go under (ends in "/")."""
    return f"{options.prefix.strip('/')}/{options.endpoint}/{MODELS_FOLDER}/"


def _check_archives(options: PromoteOptions, manifests: list[PackageManifest]) -> str:
    """Refuse archives a multi-model endpoint cannot serve; return the smoke target's name."""
    names = [path.name for path in options.all_archives()]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise UsageError(
            f"two archives are named {twice[0]}: each is a target model under one prefix",
            hint="package them with different --suffix values",
        )
    for path, manifest in zip(options.all_archives(), manifests, strict=True):
        if manifest.target_model is None:
            raise UsageError(
                f"{path} holds {len(manifest.models)} models and no single "
                "ensemble: SageMaker's multi-model frontend cannot tell which one to load",
                hint="tritonship package --multi-model (one archive per ensemble)",
            )
    target = options.smoke_target_model or names[0]
    if target not in names:
        raise UsageError(
            f"--smoke-target-model {target} is none of the archives given",
            hint=f"choose one of {', '.join(names)}",
        )
    _check_backends(manifests, options.image_tag)
    return target


def _env_notes(
    manifests: list[PackageManifest], archives: tuple[Path, ...], env: dict[str, str]
) -> list[str]:
    """Where an archive was packaged with a variable the endpoint's environment does not set."""
    ignored = {DEFAULT_MODEL_VAR, MULTI_MODEL_VAR}
    notes = []
    for path, manifest in zip(archives, manifests, strict=True):
        for key, value in sorted(manifest.environment.items()):
            if key not in ignored and env.get(key) != value:
                notes.append(
                    f"{path.name} was packaged with {key}={value}; the endpoint's one "
                    f"environment has {key}={env.get(key, '(unset)')} (set it with --env)"
                )
    return notes


def _multi_model_plan(options: PromoteOptions, region: str, deployment: dict[str, Any]) -> Plan:
    """The plan of a multi-model endpoint: one model on a prefix, every archive under it."""
    archives = options.all_archives()
    manifests = [load_package(path) for path in archives]
    target = _check_archives(options, manifests)
    env = multi_model_env(options)
    check_inference_type(env.values, options.image_tag)
    prefix = models_prefix(options)
    uploads = tuple(
        _upload_spec(options, p, m, prefix + p.name, manifest_path_for(p).name)
        for p, m in zip(archives, manifests, strict=True)
    )
    chosen = manifests[[p.name for p in archives].index(target)]
    model = chosen.target_model
    smoke, notes = _smoke_request(options, chosen, model, target)
    return Plan(
        options,
        region,
        image_uri(region, options.image_tag),
        uploads,
        env.values,
        toolkit_tags(options.endpoint, None),
        deployment,
        smoke,
        env_origins=env.origins,
        model_data_url=f"s3://{options.bucket}/{prefix}",
        notes=(*notes, *_env_notes(manifests, archives, env.values)),
    )


# --- against the deployed endpoint -------------------------------------------------------


def resolve(plan: Plan, deployed: Deployed | None) -> Plan:
    """Fit the plan to the endpoint as deployed: with --variant, keep the other variants."""
    if plan.options.shadow is not None:  # the live variant stays; the build goes beside it
        return resolve_shadow(plan, deployed)
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
        if plan.multi_model:
            return [
                *lines,
                f"it serves {plan.config_name} already (same image, environment, prefix and "
                "role): the archives are the whole change, an upload with no endpoint update",
            ]
        return [*lines, f"it serves {plan.config_name} already: nothing to deploy"]
    if plan.options.shadow is None:  # a shadow keeps the live variant as it is
        lines += _promoted_variant_lines(plan, deployed)
    loop = traffic_loop.change_lines(plan, deployed)
    return lines + loop + _variant_lines(plan, deployed) + _capacity_lines(plan, deployed)


def _promoted_variant_lines(plan: Plan, deployed: Deployed) -> list[str]:
    """What changes in the variant the archive goes to."""
    old = deployed.variant(plan.variant)
    if old is None:
        return [f"variant {plan.variant} is new ({_shape(plan)})"]
    model = deployed.models.get(old.get("ModelName", ""))
    same_model = old.get("ModelName") == plan.model_name
    diff = [] if same_model else container_changes(model, plan.model_request())
    diff += variant_changes(old, plan.our_variant())
    return [f"variant {plan.variant}: {line}" for line in diff] or [
        f"variant {plan.variant}: unchanged"
    ]


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
    """What happens to the instance count at cutover (autoscaling would otherwise be undone)."""
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
        waiting = waiting.fit(plan_budget(plan, True).client_minutes)
        return unknown, describe_plan(plan, waiting, None, known=False)
    plan = resolve(plan, deployed)
    waiting = waiting.fit(plan_budget(plan, deployed is not None).client_minutes)
    return changes(plan, deployed), describe_plan(plan, waiting, deployed, known=True)


def _args(params: dict[str, Any]) -> str:
    """Call arguments for display (tags are listed once, at the end)."""
    return ", ".join(f"{k}={json.dumps(v)}" for k, v in params.items() if k != "Tags")


def describe_plan(
    plan: Plan, waiting: Waiting, deployed: Deployed | None = None, known: bool = False
) -> list[str]:
    """Every AWS call ``apply`` may make, with its key arguments, in order."""
    name = plan.endpoint
    bucket = plan.upload.bucket
    lines = [
        f"sagemaker.describe_endpoint(EndpointName={name}), describe_endpoint_config, "
        "describe_model, application-autoscaling.describe_scalable_targets  -> what is "
        "deployed (an existing endpoint must be InService and tagged by tritonship)",
        *describe_checks(plan, deployed),
        *budget_lines(plan, deployed, known),
        *_mode_lines(plan),
        *traffic_loop.plan_lines(plan),
        f"s3.get_public_access_block(Bucket={bucket})  -> refuse unless all four blocks are on",
    ]
    for upload in plan.uploads:
        lines += _upload_lines(plan, upload)
    if deployed is not None and deployed.config_name == plan.config_name:
        return [*lines, *_serving_already(plan)]
    return [
        *lines,
        f"sagemaker.create_model({_args(plan.model_request())})  -> unless it exists",
        f"sagemaker.create_endpoint_config({_args(plan.config_request())})  -> unless it exists",
        _deploy_line(plan, deployed, known),
        f"waiter endpoint_in_service (also failing on every terminal status) "
        f"(EndpointName={name}, every {waiting.delay:g} s, up to "
        f"{waiting.delay * waiting.attempts / 60:.0f} min)  -> on a terminal status: the "
        "FailureReason and the tail of the endpoint's CloudWatch log streams; an update "
        "still Updating when the wait ends: no rollback (SageMaker refuses UpdateEndpoint "
        "then), sagemaker.add_tags(tritonship:deploying, tritonship:pending-autoscaling) "
        f"and exit 3: follow it with tritonship status --endpoint {name}",
        *(f"  start-up: {note}" for note in _startup_notes(plan)),
        *_tail_lines(plan),
    ]


def plan_budget(plan: Plan, updating: bool) -> Budget:
    """The time budget of deploying ``plan``: an update's guardrails, or a creation."""
    if updating:
        return budget_of(plan.deployment, plan.provisioning)
    return Budget(plan.provisioning, 0, 0, 0, termination=0)


def budget_lines(plan: Plan, deployed: Deployed | None, known: bool) -> list[str]:
    """The dry run's time budget: each part, the execution timeout, the client's wait."""
    o = plan.options
    timeouts = f"ContainerStartupHealthCheckTimeoutInSeconds={o.startup_timeout}"
    if not plan.multi_model:
        timeouts += f", ModelDataDownloadTimeoutInSeconds={o.download_timeout}"
    lines = [f"variant {plan.variant}: {timeouts} (--startup-timeout, --download-timeout)"]
    if deployed is not None or not known:
        lines.append(f"update {plan_budget(plan, True).describe()}")
    if deployed is None:
        create = plan_budget(plan, False)
        lines.append(
            f"creation time budget: {create.total} s ({create.total / 60:.0f} min) of "
            f"provisioning; promote waits up to {create.client_minutes:.0f} min"
        )
    return lines


def _mode_lines(plan: Plan) -> list[str]:
    """What a multi-model or asynchronous endpoint is: its mode, prefix, target models, S3."""
    if plan.options.asynchronous is not None:
        config = plan.options.asynchronous.request()
        return [
            f"asynchronous endpoint: AsyncInferenceConfig={json.dumps(config)}; requests go "
            "through S3 (InvokeEndpointAsync: up to 1 GB, up to an hour each)"
        ]
    if not plan.multi_model:
        return []
    names = ", ".join(upload.name for upload in plan.uploads)
    return [
        f"multi-model endpoint: Mode=MultiModel, ModelDataUrl={plan.model_data_url} (a "
        f"prefix: every *.tar.gz under it is a target model); the archives given: {names}; "
        "adding an archive later is an upload, with no endpoint update"
    ]


def _upload_lines(plan: Plan, up: UploadSpec) -> list[str]:
    """The calls that put one archive (and its manifest) in S3, once."""
    mib = up.size / (1 << 20)
    extra = {k: v for k, v in up.extra_args().items() if k not in ("Tagging", "Metadata")}
    other = (
        "refuse when another archive is there (AWS: never overwrite a target model)"
        if plan.multi_model
        else "re-upload when another archive is there"
    )
    return [
        f"s3.head_object(Bucket={up.bucket}, Key={up.key}, ChecksumMode=ENABLED)  -> skip the "
        f"upload when this archive (archive-sha256 metadata, size, checksum) is there; {other}",
        f"s3.upload_file({up.path} -> {up.uri}, {mib:.1f} MiB in {PART_SIZE >> 20} MiB parts, "
        f"{_args(extra)}, Metadata archive-sha256={up.sha256})",
        f"s3.put_object(Key={up.manifest_key})  -> the package manifest",
        "s3.head_object(...)  -> verify size, archive-sha256 and S3's SHA-256 checksum",
    ]


def _serving_already(plan: Plan) -> list[str]:
    """The rest of a run against an endpoint that serves this config already."""
    lines = [
        f"no create_model, create_endpoint_config or update_endpoint: {plan.endpoint} serves "
        f"{plan.config_name} (model {plan.model_name}) already"
    ]
    if plan.multi_model:
        lines += _smoke_lines(plan)
        if plan.smoke is not None:
            lines.append("if it fails: s3.delete_object of what this run uploaded")
    return lines + _autoscale_lines(plan)


def _smoke_lines(plan: Plan) -> list[str]:
    """The smoke test's InvokeEndpoint, or why there is none."""
    smoke = plan.smoke
    if smoke is None:
        return [note for note in plan.notes if note.startswith("smoke test skipped")]
    target = f", TargetModel={smoke.target_model}" if smoke.target_model else ""
    check = (
        f"the answer must carry {', '.join(smoke.outputs)}"
        if smoke.outputs
        else "OUTPUT must be [1,1001] summing to 1"
    )
    if plan.options.asynchronous is not None:
        where = smoke_input(
            plan.upload.bucket, plan.options.prefix, plan.endpoint, plan.upload.sha256
        )
        return [
            f"s3.upload_fileobj(-> {where}), sagemaker-runtime.invoke_endpoint_async("
            f"EndpointName={plan.endpoint}, InputLocation={where}, {smoke.description}), then "
            f"s3.get_object of the OutputLocation (or the FailureLocation)  -> {check}"
        ]
    return [
        f"sagemaker-runtime.invoke_endpoint(EndpointName={plan.endpoint}, "
        f"TargetVariant={plan.smoke_variant}{target}, {smoke.description})  -> {check}"
    ]


def _startup_notes(plan: Plan) -> list[str]:
    """What delays InService after each start (TensorRT builds), from the package manifest."""
    try:
        manifest = read_package_manifest(plan.options.archive)
    except PackageError:
        return []
    return startup_notes(manifest.classifier)


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


def _autoscale_lines(plan: Plan) -> list[str]:
    """The calls that register --autoscale on the promoted variant."""
    o, name = plan.options, plan.endpoint
    if not o.autoscale:
        return []
    if o.asynchronous is not None:
        return scaling_lines(name, o.autoscale, o.autoscale_target, plan.variant)
    register = autoscaling.register_request(name, o.autoscale, plan.tags, plan.variant)
    policy = autoscaling.policy_request(name, o.autoscale_target, plan.variant)
    return [
        f"application-autoscaling.register_scalable_target({_args(register)})",
        f"application-autoscaling.put_scaling_policy({_args(policy)})",
    ]


def _tail_lines(plan: Plan) -> list[str]:
    """The smoke test, autoscaling, rollback and tags lines of the plan."""
    lines = _smoke_lines(plan) if plan.options.smoke_test else []
    lines += _autoscale_lines(plan)
    lines += [
        "on any failure after the first write (not Ctrl-C): sagemaker.update_endpoint back "
        "to the previous config, or delete_endpoint; autoscaling as it was; then delete the "
        "config and model this run created",
        "tags on every resource: " + ", ".join(f"{k}={v}" for k, v in plan.tags.items()),
    ]
    return lines
