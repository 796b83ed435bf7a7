"""``tritonship promote``: a plan that can be printed (``--dry-run``), then applied.

Applying it: refuse a bucket that does not block public access; upload the archive once
(encrypted, checksummed); create a model ``<endpoint>-<archive sha>`` and an endpoint
config, both reused when they exist; create the endpoint or update it blue/green; wait
with the boto3 waiter; smoke-test one photo; on any failure roll back (update back to the
previous config, or delete what a first deployment created); then autoscaling. What the
plan names and what a run has done so far live in :mod:`tritonship.cloud.state`.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from tritonship.artifact.package import load_package, manifest_path_for
from tritonship.cloud import autoscaling
from tritonship.cloud.aws import AwsClients, aws_errors, is_managed, tag_list, toolkit_tags
from tritonship.cloud.endpoints import DEFAULT_WAITING, KIND_NAMES, Waiting, exists, find_endpoint
from tritonship.cloud.rollback import rollback
from tritonship.cloud.smoke import SmokeResult, photo_bytes, smoke_test
from tritonship.cloud.state import DEFAULT_INSTANCE_TYPE, Plan, PromoteOptions, Run
from tritonship.cloud.upload import PART_SIZE, UploadSpec, check_bucket_private, ensure_uploaded
from tritonship.errors import DeployError, TritonshipError, UsageError
from tritonship.reporting import Reporter, quiet
from tritonship.sagemaker.images import DEFAULT_TAG, backends_for_tag, image_uri
from tritonship.sagemaker.serve import DEFAULT_MODEL_VAR, load_env_file

#: Blue/green: shift all traffic at once to the new fleet, then retire the old one.
BLUE_GREEN = {
    "BlueGreenUpdatePolicy": {
        "TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0},
        "TerminationWaitInSeconds": 0,
    }
}
#: Describe and create calls of the resources a run may reuse, and their name argument.
_RESOURCE_CALLS = {
    "model": ("describe_model", "create_model", "ModelName"),
    "config": ("describe_endpoint_config", "create_endpoint_config", "EndpointConfigName"),
}
_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_ROLE = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/\S+$")


class PromoteInterrupted(TritonshipError):
    """Ctrl-C while deploying: nothing is rolled back; the message says how to go on."""

    exit_code = 130

    @classmethod
    def during(cls, plan: Plan) -> PromoteInterrupted:
        """The error for an interrupt while ``plan`` was being deployed."""
        return cls(
            f"interrupted while deploying {plan.endpoint}: SageMaker goes on with "
            f"{plan.config_name} (model {plan.model_name}), all tagged for teardown",
            hint=f"resume by running the same promote again (it reuses the archive, model and "
            f"config), or remove everything: tritonship teardown --endpoint {plan.endpoint}",
        )


# --- the plan -----------------------------------------------------------------------------


def _check_options(options: PromoteOptions) -> None:
    """Refuse names and values SageMaker would refuse, before anything else."""
    if not _NAME.match(options.endpoint):
        raise UsageError(
            f"endpoint name {options.endpoint!r} is not valid",
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


def _check_package(manifest: dict[str, Any], env: dict[str, str], tag: str) -> None:
    """Refuse an image without a backend the archive needs, or a default model it lacks."""
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


def resource_names(endpoint: str, sha256: str, options: PromoteOptions) -> tuple[str, str]:
    """Model ``<endpoint>-<sha12>``; config ``<endpoint>-<hash of model and instances>``."""
    model = f"{endpoint[:50]}-{sha256[:12]}"
    shape = f"{model}|{options.instance_type}|{options.instance_count}"
    return model, f"{endpoint[:50]}-{hashlib.sha256(shape.encode()).hexdigest()[:12]}"


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
    """Check the options and the packaged archive; name everything. No AWS call."""
    _check_options(options)
    manifest = load_package(options.archive)
    env = load_env_file(options.env_file)
    _check_package(manifest, env, options.image_tag)
    sha = manifest["archive"]["sha256"]
    tags = toolkit_tags(options.endpoint, sha)
    upload = _upload_spec(options, manifest["archive"], tags)
    model, config = resource_names(options.endpoint, sha, options)
    return Plan(
        options, region, image_uri(region, options.image_tag), upload, env, model, config, tags
    )


def _args(params: dict[str, Any]) -> str:
    """Call arguments for display (tags are listed once, at the end)."""
    return ", ".join(f"{k}={json.dumps(v)}" for k, v in params.items() if k != "Tags")


def describe_plan(plan: Plan, waiting: Waiting) -> list[str]:
    """Every AWS call ``apply`` may make, with its key arguments, in order."""
    o, up, name = plan.options, plan.upload, plan.endpoint
    mib = up.size / (1 << 20)
    extra = {k: v for k, v in up.extra_args().items() if k not in ("Tagging", "Metadata")}
    lines = [
        f"s3.get_public_access_block(Bucket={up.bucket})  -> refuse unless all four blocks are on",
        f"s3.head_object(Bucket={up.bucket}, Key={up.key}, ChecksumMode=ENABLED)  -> skip the "
        "upload when this archive (archive-sha256 metadata, size, checksum) is there",
        f"s3.upload_file({o.archive} -> {up.uri}, {mib:.1f} MiB in {PART_SIZE >> 20} MiB parts, "
        f"{_args(extra)}, Metadata archive-sha256={up.sha256})",
        f"s3.put_object(Key={up.manifest_key})  -> the package manifest",
        "s3.head_object(...)  -> verify size, archive-sha256 and S3's SHA-256 checksum",
        f"sagemaker.describe_endpoint(EndpointName={name})  -> create, or update blue/green "
        "(an existing endpoint must be InService and tagged by tritonship)",
        f"sagemaker.create_model({_args(plan.model_request())})  -> unless it exists",
        f"sagemaker.create_endpoint_config({_args(plan.config_request())})  -> unless it exists",
        f"sagemaker.create_endpoint(EndpointName={name}, EndpointConfigName={plan.config_name})"
        f"  or  sagemaker.update_endpoint(..., DeploymentConfig={json.dumps(BLUE_GREEN)})",
        f"waiter endpoint_in_service(EndpointName={name}, every {waiting.delay:g} s, up to "
        f"{waiting.delay * waiting.attempts / 60:.0f} min)",
    ]
    return [*lines, *_tail_lines(plan)]


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
        register = autoscaling.register_request(name, o.autoscale, plan.tags)
        policy = autoscaling.policy_request(name, o.autoscale_target)
        lines += [
            f"application-autoscaling.register_scalable_target({_args(register)})",
            f"application-autoscaling.put_scaling_policy({_args(policy)})",
        ]
    lines += [
        "on failure: sagemaker.update_endpoint back to the previous config, or "
        "delete_endpoint; then delete the config and model this run created",
        "tags on every resource: " + ", ".join(f"{k}={v}" for k, v in plan.tags.items()),
    ]
    return lines


# --- applying it ---


@dataclass(frozen=True)
class PromoteResult:
    """What promote did."""

    endpoint: str
    action: str
    uploaded: bool
    model_name: str
    config_name: str
    smoke: SmokeResult | None
    autoscale: tuple[int, int] | None


def apply(
    plan: Plan,
    clients: AwsClients,
    waiting: Waiting = DEFAULT_WAITING,
    progress: bool = True,
    say: Reporter = quiet,
) -> PromoteResult:
    """Carry the plan out; on a failed deployment roll back and raise :class:`DeployError`."""
    run = Run(plan, clients, waiting, progress, say)
    with aws_errors("promote"):
        uploaded = _upload(run)
        run.previous = _existing_endpoint(clients.sagemaker, plan.endpoint)
        if run.previous_config == plan.config_name:
            say(f"endpoint {plan.endpoint} already serves {plan.config_name}: nothing to deploy")
            return _result(run, "unchanged", uploaded, None, _autoscale(run))
        _ensure_resources(run)
    smoke = _deploy_or_roll_back(run)
    with aws_errors("autoscaling"):
        bounds = _autoscale(run)
    return _result(run, "updated" if run.updated else "created", uploaded, smoke, bounds)


def _upload(run: Run) -> bool:
    """Refuse a public bucket, then upload the archive unless it is there already."""
    manifest = manifest_path_for(run.plan.options.archive).read_bytes()
    s3, spec = run.clients.s3, run.plan.upload
    check_bucket_private(s3, spec.bucket)
    return ensure_uploaded(s3, spec, manifest, run.progress, run.say)


def _existing_endpoint(sagemaker: Any, endpoint: str) -> dict[str, Any] | None:
    """The endpoint to update, if any: it must be ours and InService."""
    found = find_endpoint(sagemaker, endpoint)
    if found is None:
        return None
    if not is_managed(sagemaker.list_tags(ResourceArn=found["EndpointArn"])["Tags"], endpoint):
        raise TritonshipError(
            f"endpoint {endpoint} exists but was not created by tritonship",
            hint="choose another --endpoint name",
        )
    status = found["EndpointStatus"]
    if status != "InService":
        fix = "tritonship teardown --endpoint " + endpoint if status == "Failed" else "wait"
        raise TritonshipError(f"endpoint {endpoint} is {status}", hint=f"{fix}, then promote")
    return found


def _ensure_resources(run: Run) -> None:
    """Create the model and endpoint config unless they exist (same archive, same shape)."""
    _ensure(run, "model", run.plan.model_request())
    _ensure(run, "config", run.plan.config_request())


def _ensure(run: Run, kind: str, request: dict[str, Any]) -> None:
    """Create one resource from ``request`` unless it exists; record it in ``run.created``."""
    describe, create, argument = _RESOURCE_CALLS[kind]
    sagemaker, name = run.clients.sagemaker, request[argument]
    if exists(getattr(sagemaker, describe), **{argument: name}):
        run.say(f"reusing {KIND_NAMES[kind]} {name}")
        return
    getattr(sagemaker, create)(**request)
    run.created.append((kind, name))
    run.say(f"created {KIND_NAMES[kind]} {name}")


def _deploy_or_roll_back(run: Run) -> SmokeResult | None:
    """Deploy and smoke-test; on a failure roll back and raise :class:`DeployError`."""
    plan = run.plan
    try:
        with aws_errors("deploy"):
            _deploy(run)
            return _smoke(run)
    except KeyboardInterrupt:
        raise PromoteInterrupted.during(plan) from None
    except TritonshipError as err:
        raise DeployError(
            f"promote of {plan.endpoint} failed: {err}; {rollback(run)}",
            hint=f"CloudWatch log group /aws/sagemaker/Endpoints/{plan.endpoint}",
        ) from err


def _deploy(run: Run) -> None:
    """Create or update the endpoint and wait until it serves the new config."""
    plan = run.plan
    if run.previous is None:
        _create_endpoint(run)
    else:
        _update_endpoint(run)
    action = "updating" if run.updated else "creating"
    run.say(f"{action} endpoint {plan.endpoint} ({plan.config_name})")
    _check_serves(plan, run.wait_in_service())


def _check_serves(plan: Plan, final: dict[str, Any]) -> None:
    """Raise unless the endpoint serves the new config (SageMaker undoes a failed update)."""
    kept = final.get("EndpointConfigName")
    if kept != plan.config_name:
        reason = final.get("FailureReason") or "no reason given"
        raise DeployError(
            f"the update of {plan.endpoint} failed and SageMaker kept {kept}: {reason}"
        )


def _create_endpoint(run: Run) -> None:
    """CreateEndpoint with the new config; record the endpoint as created by this run."""
    plan = run.plan
    run.clients.sagemaker.create_endpoint(
        EndpointName=plan.endpoint, EndpointConfigName=plan.config_name, Tags=tag_list(plan.tags)
    )
    run.created.append(("endpoint", plan.endpoint))


def _update_endpoint(run: Run) -> None:
    """UpdateEndpoint blue/green to the new config (autoscaling paused if it must be)."""
    plan = run.plan
    _pause_scaling(run)
    run.clients.sagemaker.update_endpoint(
        EndpointName=plan.endpoint, EndpointConfigName=plan.config_name, DeploymentConfig=BLUE_GREEN
    )
    run.updated = True


def _pause_scaling(run: Run) -> None:
    """Deregister autoscaling when the update changes the instance type (AWS requires it)."""
    clients, endpoint = run.clients, run.plan.endpoint
    old = clients.sagemaker.describe_endpoint_config(EndpointConfigName=run.previous_config)
    if old["ProductionVariants"][0].get("InstanceType") == run.plan.options.instance_type:
        return
    run.paused_scaling = autoscaling.current_bounds(clients.autoscaling, endpoint)
    if run.paused_scaling:
        autoscaling.disable(clients.autoscaling, endpoint)


def _smoke(run: Run) -> SmokeResult | None:
    """Run the smoke test unless it was turned off."""
    options = run.plan.options
    if not options.smoke_test:
        run.say("smoke test skipped (--skip-smoke-test)")
        return None
    result = smoke_test(run.clients.runtime, run.plan.endpoint, photo_bytes(options.photo))
    run.say(f"smoke test: {result.detail}")
    return result


def _autoscale(run: Run) -> tuple[int, int] | None:
    """Apply --autoscale, or restore the registration an instance-type change removed."""
    bounds = run.plan.options.autoscale or run.paused_scaling
    if bounds:
        run.enable_autoscaling(bounds)
    return bounds


def _result(
    run: Run, action: str, uploaded: bool, smoke: SmokeResult | None, bounds: tuple[int, int] | None
) -> PromoteResult:
    """The PromoteResult of a run."""
    plan = run.plan
    return PromoteResult(
        plan.endpoint, action, uploaded, plan.model_name, plan.config_name, smoke, bounds
    )


def summary_lines(result: PromoteResult, plan: Plan) -> list[str]:
    """What a promote did, for the terminal."""
    lines = [
        f"endpoint {result.endpoint} ({plan.region}): {result.action}",
        f"  model {result.model_name}, endpoint config {result.config_name}",
        f"  archive {plan.upload.uri} ({'uploaded' if result.uploaded else 'already there'})",
    ]
    if result.smoke is not None:
        lines.append(f"  smoke test: {result.smoke.detail}")
    if result.autoscale:
        lines.append(
            f"  autoscaling: {result.autoscale[0]}..{result.autoscale[1]} instances, "
            f"target {plan.options.autoscale_target:g} invocations/instance/minute"
        )
    return lines
