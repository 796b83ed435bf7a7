"""Undo a failed promote: back to the previous endpoint config, or delete a first deployment.

Then autoscaling as it was before the run, and the endpoint config and model the run
created. Updating back keeps an autoscaled fleet's capacity, as the promote's own update
does (``RetainAllVariantProperties``).
"""

from __future__ import annotations

from tritonship.cloud import autoscaling
from tritonship.cloud.aws import aws_errors
from tritonship.cloud.endpoints import KIND_NAMES, delete, find_endpoint
from tritonship.cloud.state import Run


def rollback(run: Run) -> str:
    """Undo what ``run`` changed; return one line saying what was (or could not be) undone."""
    done: list[str] = []
    try:
        with aws_errors("rollback"):
            _undo(run, done)
    except Exception as err:
        return (
            f"rollback FAILED ({err}) after: {', '.join(done) or 'nothing'}; inspect "
            f"it, or remove it all with: tritonship teardown --endpoint {run.plan.endpoint}"
        )
    return f"rolled back: {', '.join(done)}" if done else "nothing to roll back"


def _undo(run: Run, done: list[str]) -> None:
    """The rollback steps, each appended to ``done`` once it succeeded."""
    done += _restore_endpoint(run)
    done += _restore_scaling(run)
    for kind, name in reversed(run.created):
        if kind != "endpoint" and delete(run.clients.sagemaker, kind, name):
            done.append(f"deleted {KIND_NAMES[kind]} {name}")


def _restore_endpoint(run: Run) -> list[str]:
    """Delete the endpoint this run created, or put the previous config back."""
    name = run.plan.endpoint
    if run.previous is None:
        created = ("endpoint", name) in run.created
        gone = created and delete(run.clients.sagemaker, "endpoint", name)
        return [f"deleted endpoint {name}"] if gone else []
    return _restore_config(run) if run.updated else []


def _restore_config(run: Run) -> list[str]:
    """Update the endpoint back to its previous config, unless SageMaker already did."""
    sagemaker, name, previous = run.clients.sagemaker, run.plan.endpoint, run.previous_config
    current = find_endpoint(sagemaker, name) or {}
    kept = current.get("EndpointConfigName") == previous
    if kept and current.get("EndpointStatus") == "InService":
        return [f"SageMaker kept endpoint {name} on {previous}"]
    run.say(f"rolling endpoint {name} back to {previous}")
    sagemaker.update_endpoint(EndpointName=name, EndpointConfigName=previous, **run.retained())
    run.wait_in_service()
    return [f"endpoint {name} is back on {previous}"]


def _restore_scaling(run: Run) -> list[str]:
    """Put the promoted variant's autoscaling back as it was before the run."""
    if not run.scaling_changed:
        return []
    plan = run.plan
    before = run.previous.scaling.get(plan.variant) if run.previous else None
    if before is not None:
        run.enable_autoscaling(before)
        return [f"autoscaling restored ({before[0]}..{before[1]})"]
    autoscaling.disable(run.clients.autoscaling, plan.endpoint, plan.variant)
    return ["autoscaling removed"]
