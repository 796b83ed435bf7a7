"""Undo a failed promote: back to the previous endpoint config, or delete a first deployment."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tritonship.cloud import autoscaling
from tritonship.cloud.aws import AwsClients, aws_errors
from tritonship.cloud.endpoints import Waiting, delete, find_endpoint, wait_in_service
from tritonship.errors import TritonshipError

if TYPE_CHECKING:
    from tritonship.cloud.promote import Plan, _Run

Reporter = Callable[[str], None]


def _restore_endpoint(
    plan: Plan, sagemaker: Any, run: _Run, waiting: Waiting, progress: bool, say: Reporter
) -> list[str]:
    """Delete the endpoint this run created, or put the previous config back."""
    name = plan.endpoint
    if run.previous is None:
        created = ("endpoint", name) in run.created and delete(sagemaker, "endpoint", name)
        return [f"deleted endpoint {name}"] if created else []
    if not run.updated:
        return []
    previous = run.previous["EndpointConfigName"]
    current = find_endpoint(sagemaker, name) or {}
    if current.get("EndpointConfigName") == previous and current.get("EndpointStatus") == (
        "InService"
    ):
        return [f"SageMaker kept endpoint {name} on {previous}"]
    say(f"rolling endpoint {name} back to {previous}")
    sagemaker.update_endpoint(EndpointName=name, EndpointConfigName=previous)
    wait_in_service(sagemaker, name, waiting, progress, say)
    return [f"endpoint {name} is back on {previous}"]


def _undo(
    plan: Plan,
    clients: AwsClients,
    run: _Run,
    waiting: Waiting,
    progress: bool,
    say: Reporter,
    done: list[str],
) -> None:
    """The rollback steps, each appended to ``done`` once it succeeded."""
    done += _restore_endpoint(plan, clients.sagemaker, run, waiting, progress, say)
    if run.paused_scaling:
        autoscaling.enable(
            clients.autoscaling,
            plan.endpoint,
            run.paused_scaling,
            plan.options.autoscale_target,
            plan.tags,
        )
        done.append("autoscaling restored")
    for kind, name in reversed(run.created):
        if kind != "endpoint" and delete(clients.sagemaker, kind, name):
            done.append(f"deleted {'endpoint config' if kind == 'config' else kind} {name}")


def rollback(
    plan: Plan, clients: AwsClients, run: _Run, waiting: Waiting, progress: bool, say: Reporter
) -> str:
    """Undo what ``run`` changed; return one line saying what was (or could not be) undone."""
    done: list[str] = []
    try:
        with aws_errors("rollback"):
            _undo(plan, clients, run, waiting, progress, say, done)
    except TritonshipError as err:
        return (
            f"rollback FAILED ({err}) after: {', '.join(done) or 'nothing'}; inspect "
            f"it, or remove it all with: tritonship teardown --endpoint {plan.endpoint}"
        )
    return f"rolled back: {', '.join(done)}" if done else "nothing to roll back"
