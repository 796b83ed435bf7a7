"""``tritonship promote``: a plan that can be printed (``--dry-run``), then applied.

Applying it: read what the endpoint serves now (Describe calls only), say what changes,
check the role's trust policy and the instance quota (:mod:`.preflight`); refuse a bucket
that does not block public access; upload the archive(s) once (encrypted, checksummed).
Then the writes: create a model and an endpoint config (both reused when they exist: their
names hash everything in them), create the endpoint or update it blue/green with the
plan's DeploymentConfig (keeping an autoscaled fleet's capacity), wait, smoke-test one
request, autoscale. Any failure after the first write rolls back (update back to the
previous config, or delete what a first deployment created); Ctrl-C does not. The plan
itself is built in :mod:`.planning`; what a run has done so far lives in :mod:`.state`.

A multi-model endpoint that already serves the same model (image, environment, prefix,
role) only gets the new archives: the upload is the whole change (AWS guide "Add or
Remove Models"). Its smoke test then reaches the target model through the running
endpoint; if it fails, the archives this run uploaded are deleted again.

A guarded update can outlast the client's wait (the plan's time budget, :mod:`.deployment`).
When the wait ends with the endpoint still Updating, SageMaker is still deploying, and it
refuses UpdateEndpoint until it is done: promote then rolls nothing back, records on the
endpoint (tags) what it would have done next (the autoscaling it paused or was asked for)
and stops with :class:`StillDeploying`; ``tritonship status`` finishes the job once the
endpoint settles (:mod:`.status`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tritonship.artifact.manifest import manifest_path_for
from tritonship.cloud import autoscaling
from tritonship.cloud.asynchronous import smoke_input, smoke_test_async
from tritonship.cloud.aws import AwsClients, aws_errors, tag_list
from tritonship.cloud.deployed import Deployed, read_deployed
from tritonship.cloud.endpoints import (
    DEFAULT_WAITING,
    KIND_NAMES,
    TRANSITIONAL_STATUSES,
    EndpointTimeout,
    Waiting,
    exists,
)
from tritonship.cloud.guardrails import deployment_config
from tritonship.cloud.logs import log_group
from tritonship.cloud.planning import (
    build_plan,
    changes,
    describe_plan,
    plan_budget,
    resolve,
    update_request,
)
from tritonship.cloud.preflight import preflight
from tritonship.cloud.rollback import rollback
from tritonship.cloud.smoke import SmokeResult, smoke_test
from tritonship.cloud.state import Plan, Run
from tritonship.cloud.status import Pending, record_pending
from tritonship.cloud.upload import check_bucket_private, delete_object, ensure_uploaded
from tritonship.errors import DeployError, TritonshipError, render
from tritonship.reporting import Reporter, quiet

__all__ = ["BLUE_GREEN", "PromoteInterrupted", "apply", "build_plan", "describe_plan"]

#: Blue/green, all traffic at once, no baking: the DeploymentConfig without guardrails.
BLUE_GREEN = deployment_config()
#: Describe and create calls of the resources a run may reuse, and their name argument.
_RESOURCE_CALLS = {
    "model": ("describe_model", "create_model", "ModelName"),
    "config": ("describe_endpoint_config", "create_endpoint_config", "EndpointConfigName"),
}


class StillDeploying(DeployError):
    """The wait ended while SageMaker still deploys: nothing rolled back (exit code 3)."""

    exit_code = 3


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
    variant: str = autoscaling.VARIANT
    uploaded_uris: tuple[str, ...] = ()


def apply(
    plan: Plan,
    clients: AwsClients,
    waiting: Waiting = DEFAULT_WAITING,
    progress: bool = True,
    say: Reporter = quiet,
) -> PromoteResult:
    """Carry the plan out; on a failure after the first write roll back and raise DeployError."""
    with aws_errors("promote"):
        previous = _serving(read_deployed(clients, plan.endpoint), plan.endpoint)
        plan = resolve(plan, previous)
        waiting = waiting.fit(plan_budget(plan, previous is not None).client_minutes)
        for line in changes(plan, previous):
            say(line)
        preflight(clients, plan, previous, say)
        run = Run(plan, clients, waiting, progress, say, previous)
        uploaded = _upload(run)
        if previous is not None and previous.config_name == plan.config_name:
            return _serving_already(run, uploaded)
    return _write(run, uploaded)


def _serving(deployed: Deployed | None, endpoint: str) -> Deployed | None:
    """The endpoint to update, if any: it must be InService."""
    if deployed is not None and deployed.status != "InService":
        status = deployed.status
        fix = f"tritonship teardown --endpoint {endpoint}" if status == "Failed" else "wait"
        raise TritonshipError(f"endpoint {endpoint} is {status}", hint=f"{fix}, then promote")
    return deployed


def _upload(run: Run) -> tuple[str, ...]:
    """Refuse a public bucket, then upload each archive unless it is there already.

    Returns the URIs of the archives this run uploaded.
    """
    s3, plan = run.clients.s3, run.plan
    check_bucket_private(s3, plan.upload.bucket)
    sent = []
    for spec in plan.uploads:
        manifest = manifest_path_for(spec.path).read_bytes()
        overwrite = not plan.multi_model
        if ensure_uploaded(s3, spec, manifest, run.progress, run.say, overwrite):
            sent.append(spec.uri)
    return tuple(sent)


def _serving_already(run: Run, uploaded: tuple[str, ...]) -> PromoteResult:
    """The endpoint serves this config: a multi-model one just gained the uploaded archives."""
    plan = run.plan
    if not plan.multi_model:
        return _result(run, "unchanged", uploaded, None, _autoscale(run))
    names = ", ".join(uri.rsplit("/", 1)[-1] for uri in uploaded) or "nothing new"
    run.say(
        f"{plan.endpoint} serves model {plan.model_name} already: uploaded {names} under "
        f"{plan.model_data_url}, no endpoint update"
    )
    try:
        smoke = _smoke(run)
    except Exception as err:
        raise _unuploaded(run, uploaded, err) from err
    action = "models added" if uploaded else "unchanged"
    return _result(run, action, uploaded, smoke, _autoscale(run))


def _unuploaded(run: Run, uploaded: tuple[str, ...], err: Exception) -> DeployError:
    """Delete the archives (and manifests) this run uploaded; the error that says so."""
    by_uri = {spec.uri: spec for spec in run.plan.uploads}
    removed = []
    for uri in uploaded:
        spec = by_uri[uri]
        for key in (spec.key, spec.manifest_key):
            if delete_object(run.clients.s3, spec.bucket, key):
                removed.append(f"s3://{spec.bucket}/{key}")
    reason = render(err)
    undone = f"deleted {', '.join(removed)}" if removed else "nothing was uploaded"
    return DeployError(
        f"promote of {run.plan.endpoint} failed: {reason}; {undone}",
        hint=f"tritonship logs --endpoint {run.plan.endpoint}",
    )


def _write(run: Run, uploaded: tuple[str, ...]) -> PromoteResult:
    """The writes: resources, deployment, smoke test, autoscaling; roll back on a failure."""
    try:
        with aws_errors("deploy"):
            _ensure(run, "model", run.plan.model_request())
            _ensure(run, "config", run.plan.config_request())
            _deploy(run)
            smoke = _smoke(run)
            bounds = _autoscale(run)
    except KeyboardInterrupt:
        raise PromoteInterrupted.during(run.plan) from None
    except StillDeploying:
        raise
    except Exception as err:
        raise _rolled_back(run, err) from err
    return _result(run, "updated" if run.updated else "created", uploaded, smoke, bounds)


def _rolled_back(run: Run, err: Exception) -> DeployError:
    """Roll back; the DeployError that says what failed and what was undone."""
    name = run.plan.endpoint
    reason = render(err)
    return DeployError(
        f"promote of {name} failed: {reason}; {rollback(run)}",
        hint=f"tritonship logs --endpoint {name} (CloudWatch log group {log_group(name)})",
    )


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


def _deploy(run: Run) -> None:
    """Create or update the endpoint and wait until it serves the new config."""
    plan = run.plan
    if run.previous is None:
        _create_endpoint(run)
    else:
        _update_endpoint(run, run.previous)
    action = "updating" if run.updated else "creating"
    run.say(f"{action} endpoint {plan.endpoint} ({plan.config_name})")
    try:
        final = run.wait_in_service()
    except EndpointTimeout as err:
        if run.updated and err.status in TRANSITIONAL_STATUSES:
            raise _still_deploying(run, err) from err
        raise
    _check_serves(plan, final)


def _still_deploying(run: Run, err: EndpointTimeout) -> StillDeploying:
    """Record what is left to do on the endpoint; the error that says how to follow it.

    SageMaker refuses UpdateEndpoint while a deployment goes on, and stops it by itself at
    the plan's MaximumExecutionTimeoutInSeconds (rolling back): updating back now would
    fail, so nothing is undone, and the autoscaling left to restore is recorded instead.
    """
    plan = run.plan
    assert run.previous is not None  # an update has a previous endpoint
    pending = Pending(
        config=plan.config_name,
        previous=run.previous.config_name,
        variant=plan.variant,
        after=plan.options.autoscale or run.paused_scaling,
        before=run.paused_scaling,
        target=plan.options.autoscale_target,
        asynchronous=plan.options.asynchronous is not None,
    )
    arn = run.previous.endpoint["EndpointArn"]
    recorded = record_pending(run.clients.sagemaker, arn, pending)
    timeout = plan.deployment["BlueGreenUpdatePolicy"].get("MaximumExecutionTimeoutInSeconds")
    return StillDeploying(
        f"endpoint {plan.endpoint} is still {err.status} after the plan's wait: SageMaker "
        f"goes on deploying {plan.config_name} and stops by itself (rolling back) at "
        f"MaximumExecutionTimeoutInSeconds={timeout}; nothing was rolled back (SageMaker "
        f"refuses UpdateEndpoint until then) and the smoke test did not run; {recorded}",
        hint=f"follow it with: tritonship status --endpoint {plan.endpoint} (once the "
        "endpoint settles it restores the autoscaling promote paused or was asked for)",
    )


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


def _update_endpoint(run: Run, previous: Deployed) -> None:
    """UpdateEndpoint blue/green to the new config (autoscaling paused if it must be)."""
    _pause_scaling(run, previous)
    run.clients.sagemaker.update_endpoint(**update_request(run.plan, previous))
    run.updated = True


def _pause_scaling(run: Run, previous: Deployed) -> None:
    """Deregister autoscaling when the update changes the instance type (AWS requires it)."""
    plan = run.plan
    old = previous.variant(plan.variant)
    bounds = previous.scaling.get(plan.variant)
    if old is None or bounds is None or old.get("InstanceType") == plan.options.instance_type:
        return
    run.paused_scaling, run.scaling_changed = bounds, True
    autoscaling.disable(run.clients.autoscaling, plan.endpoint, plan.variant)


def _smoke(run: Run) -> SmokeResult | None:
    """Run the smoke test (the plan's request) unless it was turned off or cannot be made."""
    plan = run.plan
    if plan.smoke is None:
        skipped = [note for note in plan.notes if note.startswith("smoke test skipped")]
        run.say(skipped[0] if skipped else "smoke test skipped (--skip-smoke-test)")
        return None
    if plan.options.asynchronous is not None:
        bucket, prefix = plan.upload.bucket, plan.options.prefix
        where = smoke_input(bucket, prefix, plan.endpoint, plan.upload.sha256)
        result = smoke_test_async(run.clients, plan.endpoint, plan.smoke, where)
        run.say(f"smoke test (asynchronous, input {where}): {result.detail}")
        return result
    result = smoke_test(run.clients.runtime, plan.endpoint, plan.smoke, plan.smoke_variant)
    target = f" of {plan.smoke.target_model}" if plan.smoke.target_model else ""
    run.say(f"smoke test{target} on variant {plan.variant}: {result.detail}")
    return result


def _autoscale(run: Run) -> tuple[int, int] | None:
    """Apply --autoscale, or restore the registration an instance-type change removed."""
    bounds = run.plan.options.autoscale or run.paused_scaling
    if bounds:
        run.enable_autoscaling(bounds)
    return bounds


def _result(
    run: Run,
    action: str,
    uploaded: tuple[str, ...],
    smoke: SmokeResult | None,
    bounds: tuple[int, int] | None,
) -> PromoteResult:
    """The PromoteResult of a run."""
    plan = run.plan
    return PromoteResult(
        plan.endpoint,
        action,
        bool(uploaded),
        plan.model_name,
        plan.config_name,
        smoke,
        bounds,
        plan.variant,
        uploaded,
    )


def summary_lines(result: PromoteResult, plan: Plan) -> list[str]:
    """What a promote did, for the terminal."""
    lines = [
        f"endpoint {result.endpoint} ({plan.region}): {result.action}",
        f"  variant {result.variant}: model {result.model_name}, endpoint config "
        f"{result.config_name}",
    ]
    if plan.multi_model:
        lines.append(f"  multi-model: ModelDataUrl {plan.model_data_url} (Mode=MultiModel)")
    asynchronous = plan.options.asynchronous
    if asynchronous is not None:
        lines.append(
            f"  asynchronous: outputs to {asynchronous.output}, failures to "
            f"{asynchronous.failure_path} (tritonship invoke ... --endpoint {result.endpoint} "
            "--async --async-input s3://BUCKET/PREFIX/)"
        )
    for spec in plan.uploads:
        state = "uploaded" if spec.uri in result.uploaded_uris else "already there"
        target = f", TargetModel={spec.name}" if plan.multi_model else ""
        lines.append(f"  archive {spec.uri} ({state}{target})")
    if result.smoke is not None:
        lines.append(f"  smoke test: {result.smoke.detail}")
    if result.autoscale:
        unit = "queued requests/instance" if asynchronous else "invocations/instance/minute"
        lines.append(
            f"  autoscaling: {result.autoscale[0]}..{result.autoscale[1]} instances, "
            f"target {plan.options.autoscale_target:g} {unit}"
        )
    return lines
