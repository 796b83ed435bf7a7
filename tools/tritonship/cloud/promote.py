"""``tritonship promote``: a plan that can be printed (``--dry-run``), then applied.

Applying it: refuse a bucket that does not block public access; upload the archive once
(encrypted, checksummed); create a model ``<endpoint>-<archive sha>`` and an endpoint
config, both reused when they exist; create the endpoint or update it blue/green; wait
with the boto3 waiter; smoke-test one photo; on any failure roll back (update back to the
previous config, or delete what a first deployment created); then autoscaling.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tritonship.artifact.package import DEFAULT_ARCHIVE, load_package, manifest_path_for
from tritonship.cloud import autoscaling
from tritonship.cloud.aws import AwsClients, aws_errors, is_managed, tag_list, toolkit_tags
from tritonship.cloud.endpoints import (
    DEFAULT_WAITING,
    Waiting,
    exists,
    find_endpoint,
    wait_in_service,
)
from tritonship.cloud.rollback import rollback
from tritonship.cloud.smoke import SmokeResult, photo_bytes, smoke_test
from tritonship.cloud.upload import PART_SIZE, UploadSpec, check_bucket_private, ensure_uploaded
from tritonship.errors import DeployError, TritonshipError, UsageError
from tritonship.paths import SAGEMAKER_ENV_FILE
from tritonship.sagemaker.images import DEFAULT_TAG, backends_for_tag, image_uri
from tritonship.sagemaker.serve import DEFAULT_MODEL_VAR, load_env_file

#: A GPU type the 24.09 GPU image runs on (moto's list rejects ml.g5.*; AWS accepts both).
DEFAULT_INSTANCE_TYPE = "ml.g4dn.xlarge"
DEFAULT_PREFIX = "tritonship"
VARIANT = autoscaling.VARIANT
#: Blue/green: shift all traffic at once to the new fleet, then retire the old one.
BLUE_GREEN = {
    "BlueGreenUpdatePolicy": {
        "TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0},
        "TerminationWaitInSeconds": 0,
    }
}
_KINDS = {"model": "model", "config": "endpoint config", "endpoint": "endpoint"}
_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_ROLE = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/\S+$")

Reporter = Callable[[str], None]


class PromoteInterrupted(TritonshipError):
    """Ctrl-C while deploying: nothing is rolled back; the message says how to go on."""

    exit_code = 130


def _quiet(_: str) -> None:
    """A reporter that says nothing."""


@dataclass(frozen=True)
class PromoteOptions:
    """What the command line asks for."""

    endpoint: str
    bucket: str
    role: str
    archive: Path = DEFAULT_ARCHIVE
    instance_type: str = DEFAULT_INSTANCE_TYPE
    instance_count: int = 1
    image_tag: str = DEFAULT_TAG
    autoscale: tuple[int, int] | None = None
    autoscale_target: float = autoscaling.DEFAULT_TARGET
    kms_key: str | None = None
    prefix: str = DEFAULT_PREFIX
    smoke_test: bool = True
    photo: Path | None = None
    env_file: Path = SAGEMAKER_ENV_FILE


@dataclass(frozen=True)
class Plan:
    """Every name and request promote will use, computed without calling AWS."""

    options: PromoteOptions
    region: str
    image: str
    upload: UploadSpec
    env: dict[str, str]
    model_name: str
    config_name: str
    tags: dict[str, str]

    @property
    def endpoint(self) -> str:
        """The endpoint's name."""
        return self.options.endpoint

    def model_request(self) -> dict[str, Any]:
        """CreateModel's arguments."""
        container = {"Image": self.image, "ModelDataUrl": self.upload.uri, "Environment": self.env}
        return {
            "ModelName": self.model_name,
            "PrimaryContainer": container,
            "ExecutionRoleArn": self.options.role,
            "Tags": tag_list(self.tags),
        }

    def config_request(self) -> dict[str, Any]:
        """CreateEndpointConfig's arguments: one variant on the chosen instances."""
        variant = {
            "VariantName": VARIANT,
            "ModelName": self.model_name,
            "InstanceType": self.options.instance_type,
            "InitialInstanceCount": self.options.instance_count,
            "InitialVariantWeight": 1.0,
        }
        return {
            "EndpointConfigName": self.config_name,
            "ProductionVariants": [variant],
            "Tags": tag_list(self.tags),
        }


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


def build_plan(options: PromoteOptions, region: str) -> Plan:
    """Check the options and the packaged archive; name everything. No AWS call."""
    _check_options(options)
    manifest = load_package(options.archive)
    env = load_env_file(options.env_file)
    _check_package(manifest, env, options.image_tag)
    sha = manifest["archive"]["sha256"]
    tags = toolkit_tags(options.endpoint, sha)
    key = f"{options.prefix.strip('/')}/{options.endpoint}/{sha[:16]}/{options.archive.name}"
    upload = UploadSpec(
        options.archive,
        options.bucket,
        key,
        sha,
        manifest["archive"]["bytes"],
        options.kms_key,
        tags,
    )
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


# --- applying it --------------------------------------------------------------------------


@dataclass
class _Run:
    """What this run changed, so that a failure can undo it."""

    previous: dict[str, Any] | None
    created: list[tuple[str, str]] = field(default_factory=list)
    updated: bool = False
    paused_scaling: tuple[int, int] | None = None


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


def _ensure_resources(plan: Plan, sagemaker: Any, run: _Run, say: Reporter) -> None:
    """Create the model and endpoint config unless they exist (same archive, same shape)."""
    for kind, name, describe, create, request in (
        (
            "model",
            plan.model_name,
            sagemaker.describe_model,
            sagemaker.create_model,
            plan.model_request(),
        ),
        (
            "config",
            plan.config_name,
            sagemaker.describe_endpoint_config,
            sagemaker.create_endpoint_config,
            plan.config_request(),
        ),
    ):
        argument = "ModelName" if kind == "model" else "EndpointConfigName"
        if exists(describe, **{argument: name}):
            say(f"reusing {_KINDS[kind]} {name}")
            continue
        create(**request)
        run.created.append((kind, name))
        say(f"created {_KINDS[kind]} {name}")


def _pause_scaling(plan: Plan, clients: AwsClients, run: _Run) -> None:
    """Deregister autoscaling when the update changes the instance type (AWS requires it)."""
    old = clients.sagemaker.describe_endpoint_config(
        EndpointConfigName=run.previous["EndpointConfigName"]
    )  # type: ignore[index]
    if old["ProductionVariants"][0].get("InstanceType") == plan.options.instance_type:
        return
    run.paused_scaling = autoscaling.current_bounds(clients.autoscaling, plan.endpoint)
    if run.paused_scaling:
        autoscaling.disable(clients.autoscaling, plan.endpoint)


def _deploy(
    plan: Plan, clients: AwsClients, run: _Run, waiting: Waiting, progress: bool, say: Reporter
) -> None:
    """Create or update the endpoint and wait until it serves the new config."""
    sagemaker, name = clients.sagemaker, plan.endpoint
    if run.previous is None:
        sagemaker.create_endpoint(
            EndpointName=name, EndpointConfigName=plan.config_name, Tags=tag_list(plan.tags)
        )
        run.created.append(("endpoint", name))
    else:
        _pause_scaling(plan, clients, run)
        sagemaker.update_endpoint(
            EndpointName=name, EndpointConfigName=plan.config_name, DeploymentConfig=BLUE_GREEN
        )
        run.updated = True
    say(f"{'updating' if run.updated else 'creating'} endpoint {name} ({plan.config_name})")
    final = wait_in_service(sagemaker, name, waiting, progress, say)
    if final.get("EndpointConfigName") != plan.config_name:
        reason = final.get("FailureReason") or "no reason given"
        raise DeployError(
            f"the update of {name} failed and SageMaker kept "
            f"{final.get('EndpointConfigName')}: {reason}"
        )


def _smoke(plan: Plan, clients: AwsClients, say: Reporter) -> SmokeResult | None:
    """Run the smoke test unless it was turned off."""
    if not plan.options.smoke_test:
        say("smoke test skipped (--skip-smoke-test)")
        return None
    result = smoke_test(clients.runtime, plan.endpoint, photo_bytes(plan.options.photo))
    say(f"smoke test: {result.detail}")
    return result


def _autoscale(plan: Plan, clients: AwsClients, run: _Run | None) -> tuple[int, int] | None:
    """Apply --autoscale, or restore the registration an instance-type change removed."""
    bounds = plan.options.autoscale or (run.paused_scaling if run else None)
    if bounds:
        autoscaling.enable(
            clients.autoscaling, plan.endpoint, bounds, plan.options.autoscale_target, plan.tags
        )
    return bounds


def apply(
    plan: Plan,
    clients: AwsClients,
    waiting: Waiting = DEFAULT_WAITING,
    progress: bool = True,
    say: Reporter = _quiet,
) -> PromoteResult:
    """Carry the plan out; on a failed deployment roll back and raise :class:`DeployError`."""
    manifest = manifest_path_for(plan.options.archive).read_bytes()
    with aws_errors("promote"):
        check_bucket_private(clients.s3, plan.upload.bucket)
        uploaded = ensure_uploaded(clients.s3, plan.upload, manifest, progress, say)
        run = _Run(_existing_endpoint(clients.sagemaker, plan.endpoint))
        if run.previous and run.previous["EndpointConfigName"] == plan.config_name:
            say(f"endpoint {plan.endpoint} already serves {plan.config_name}: nothing to deploy")
            return _result(plan, "unchanged", uploaded, None, _autoscale(plan, clients, None))
        _ensure_resources(plan, clients.sagemaker, run, say)
    try:
        with aws_errors("deploy"):
            _deploy(plan, clients, run, waiting, progress, say)
            smoke = _smoke(plan, clients, say)
    except KeyboardInterrupt:
        raise PromoteInterrupted(
            f"interrupted while deploying {plan.endpoint}: SageMaker goes on with "
            f"{plan.config_name} (model {plan.model_name}), all tagged for teardown",
            hint=f"resume by running the same promote again (it reuses the archive, model and "
            f"config), or remove everything: tritonship teardown --endpoint {plan.endpoint}",
        ) from None
    except TritonshipError as err:
        undone = rollback(plan, clients, run, waiting, progress, say)
        raise DeployError(
            f"promote of {plan.endpoint} failed: {err}; {undone}",
            hint=f"CloudWatch log group /aws/sagemaker/Endpoints/{plan.endpoint}",
        ) from err
    with aws_errors("autoscaling"):
        bounds = _autoscale(plan, clients, run)
    action = "updated" if run.updated else "created"
    return _result(plan, action, uploaded, smoke, bounds)


def _result(
    plan: Plan,
    action: str,
    uploaded: bool,
    smoke: SmokeResult | None,
    bounds: tuple[int, int] | None,
) -> PromoteResult:
    """The PromoteResult of a run."""
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
