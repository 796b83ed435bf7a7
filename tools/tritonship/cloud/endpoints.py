"""SageMaker endpoint primitives: look up, wait with progress, find and delete our own."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tritonship.cloud.aws import is_managed, is_missing
from tritonship.errors import DeployError, TritonshipError, TritonshipTimeout, UsageError
from tritonship.reporting import Reporter

#: How messages name each kind of resource :func:`delete` takes.
KIND_NAMES = {"model": "model", "config": "endpoint config", "endpoint": "endpoint"}
#: EndpointStatus values on the way to InService; every other one but InService is terminal.
TRANSITIONAL_STATUSES = frozenset({"Creating", "Updating", "SystemUpdating", "RollingBack"})


@dataclass(frozen=True)
class Waiting:
    """How the boto3 waiters poll (tests shorten it): every ``delay`` s, ``attempts`` times.

    ``attempts`` 0: as long as the plan's time budget says (:meth:`fit`).
    """

    delay: float = 30.0
    attempts: int = 120

    @classmethod
    def within(cls, minutes: float, poll: float) -> Waiting:
        """Poll every ``poll`` seconds for up to ``minutes``."""
        if minutes <= 0 or poll <= 0:
            raise UsageError(
                "--timeout and --poll must be positive", hint="for example --timeout 60 --poll 30"
            )
        return cls(poll, max(1, round(minutes * 60 / poll)))

    @classmethod
    def budgeted(cls, poll: float) -> Waiting:
        """Poll every ``poll`` seconds for as long as the plan's budget (set by :meth:`fit`)."""
        return cls(cls.within(1, poll).delay, 0)

    def fit(self, minutes: float) -> Waiting:
        """Itself, or for a budgeted waiting: up to ``minutes``."""
        return self if self.attempts else Waiting.within(minutes, self.delay)

    def config(self) -> dict[str, Any]:
        """The waiter's WaiterConfig."""
        return {"Delay": self.delay, "MaxAttempts": self.attempts}


#: AWS's own waiter settings: every 30 s for up to an hour.
DEFAULT_WAITING = Waiting()


class EndpointFailed(DeployError):
    """The endpoint reached a terminal status (the reason is SageMaker's FailureReason)."""


class EndpointTimeout(DeployError, TritonshipTimeout):
    """The endpoint was not InService before the waiter gave up (``status``: its last one)."""

    status: str | None = None


def find_endpoint(sagemaker: Any, name: str) -> dict[str, Any] | None:
    """DescribeEndpoint, or None when there is no such endpoint."""
    try:
        return sagemaker.describe_endpoint(EndpointName=name)
    except Exception as err:
        if is_missing(err):
            return None
        raise


def find_own_endpoint(sagemaker: Any, name: str) -> dict[str, Any] | None:
    """DescribeEndpoint of an endpoint promote created, None if absent; refuse anyone else's."""
    found = find_endpoint(sagemaker, name)
    if found is None:
        return None
    if not is_managed(sagemaker.list_tags(ResourceArn=found["EndpointArn"])["Tags"], name):
        raise TritonshipError(
            f"endpoint {name} exists but was not created by tritonship (no tritonship:managed tag)",
            hint="choose another --endpoint name, or manage it yourself",
        )
    return found


def exists(describe: Callable[..., Any], **name: str) -> bool:
    """Whether a Describe* call finds the named resource."""
    try:
        describe(**name)
    except Exception as err:
        if is_missing(err):
            return False
        raise
    return True


class _StatusTracker:
    """Follows the waiter's DescribeEndpoint answers: progress line, last answer."""

    def __init__(self, name: str, progress: bool, say: Reporter) -> None:
        from tqdm import tqdm

        self.name, self.say, self.status = name, say, ""
        self.last: dict[str, Any] = {}
        self.bar = tqdm(
            bar_format="{desc} [{elapsed}]",
            desc=f"waiting for endpoint {name}",
            disable=not progress,
            leave=False,
        )

    def __call__(self, parsed: dict[str, Any], **_: Any) -> None:
        self.last = parsed
        status = parsed.get("EndpointStatus", "?")
        if status != self.status:
            with self.bar.external_write_mode():
                self.say(f"endpoint {self.name}: {status}")
            self.status = status
        self.bar.set_description_str(f"waiting for endpoint {self.name}: {status}")
        self.bar.refresh()


def terminal_statuses(sagemaker: Any) -> list[str]:
    """The EndpointStatus values (botocore's enum) from which InService never comes by itself."""
    statuses = sagemaker.meta.service_model.shape_for("EndpointStatus").enum
    return [s for s in statuses if s not in TRANSITIONAL_STATUSES and s != "InService"]


def serving_waiter(sagemaker: Any) -> Any:
    """The ``endpoint_in_service`` waiter of botocore, failing on every terminal status.

    The service model's waiter fails only on ``Failed``: on ``UpdateRollbackFailed``,
    ``OutOfService`` or ``Deleting`` it would poll for an hour. This one has the same
    success and error acceptors plus a failure acceptor per terminal status.
    """
    from botocore.waiter import WaiterModel, create_waiter_with_client

    acceptors = [
        {
            "matcher": "path",
            "argument": "EndpointStatus",
            "state": "success",
            "expected": "InService",
        },
        *(
            {"matcher": "path", "argument": "EndpointStatus", "state": "failure", "expected": s}
            for s in terminal_statuses(sagemaker)
        ),
        {"matcher": "error", "state": "failure", "expected": "ValidationException"},
    ]
    waiter = {"operation": "DescribeEndpoint", "delay": 30, "maxAttempts": 120}
    model = WaiterModel(
        {"version": 2, "waiters": {"EndpointServes": {**waiter, "acceptors": acceptors}}}
    )
    return create_waiter_with_client("EndpointServes", model, sagemaker)


def wait_in_service(
    sagemaker: Any, name: str, waiting: Waiting, progress: bool, say: Reporter
) -> dict[str, Any]:
    """Wait until InService (a terminal status fails at once); return the last DescribeEndpoint."""
    from botocore.exceptions import WaiterError

    tracker, started = _StatusTracker(name, progress, say), time.monotonic()
    event = "after-call.sagemaker.DescribeEndpoint"
    sagemaker.meta.events.register(event, tracker)
    try:
        serving_waiter(sagemaker).wait(EndpointName=name, WaiterConfig=waiting.config())
    except WaiterError as err:
        raise _waiter_failure(name, err, time.monotonic() - started) from err
    finally:
        sagemaker.meta.events.unregister(event, tracker)
        tracker.bar.close()
    return tracker.last


#: botocore's ``WaiterError`` reason when the waiter ran out of attempts (waiter.py).
MAX_ATTEMPTS = "Max attempts exceeded"


def _waiter_failure(name: str, err: Any, seconds: float) -> DeployError:
    """The waiter's failure as EndpointTimeout or EndpointFailed with SageMaker's reason."""
    last = err.last_response or {}
    status = last.get("EndpointStatus")
    if err.kwargs.get("reason") == MAX_ATTEMPTS:
        timeout = EndpointTimeout(
            f"endpoint {name} still {status or 'not ready'} after {seconds:.0f} s",
            hint="raise --timeout, or check its logs",
        )
        timeout.status = status
        return timeout
    reason = last.get("FailureReason") or last.get("Error", {}).get("Message") or "no reason given"
    return EndpointFailed(f"endpoint {name} is {status or 'gone'}: {reason}")


def managed_names(sagemaker: Any, endpoint: str, kind: str) -> list[str]:
    """Models (``kind="model"``) or endpoint configs of ``endpoint`` that promote tagged."""
    operation, key, arn = {
        "model": ("list_models", "Models", "ModelArn"),
        "config": ("list_endpoint_configs", "EndpointConfigs", "EndpointConfigArn"),
    }[kind]
    name_key = "ModelName" if kind == "model" else "EndpointConfigName"
    found = []
    for page in sagemaker.get_paginator(operation).paginate(NameContains=endpoint[:50]):
        for item in page[key]:
            tags = sagemaker.list_tags(ResourceArn=item[arn])["Tags"]
            if is_managed(tags, endpoint):
                found.append(item[name_key])
    return sorted(found)


def delete(sagemaker: Any, kind: str, name: str) -> bool:
    """Delete an endpoint, endpoint config or model; False when it was already gone."""
    operation, argument = {
        "endpoint": ("delete_endpoint", "EndpointName"),
        "config": ("delete_endpoint_config", "EndpointConfigName"),
        "model": ("delete_model", "ModelName"),
    }[kind]
    try:
        getattr(sagemaker, operation)(**{argument: name})
    except Exception as err:
        if is_missing(err):
            return False
        raise
    return True
