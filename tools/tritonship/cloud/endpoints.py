"""SageMaker endpoint primitives: look up, wait with progress, find and delete our own."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tritonship.cloud.aws import is_managed, is_missing
from tritonship.errors import DeployError, TritonshipTimeout, UsageError
from tritonship.reporting import Reporter

#: How messages name each kind of resource :func:`delete` takes.
KIND_NAMES = {"model": "model", "config": "endpoint config", "endpoint": "endpoint"}


@dataclass(frozen=True)
class Waiting:
    """How the boto3 waiters poll (tests shorten it): every ``delay`` s, ``attempts`` times."""

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

    def config(self) -> dict[str, Any]:
        """The waiter's WaiterConfig."""
        return {"Delay": self.delay, "MaxAttempts": self.attempts}


#: AWS's own waiter settings: every 30 s for up to an hour.
DEFAULT_WAITING = Waiting()


class EndpointFailed(DeployError):
    """The endpoint reached ``Failed`` (the reason is SageMaker's FailureReason)."""


class EndpointTimeout(DeployError, TritonshipTimeout):
    """The endpoint was not InService before the waiter gave up."""


def find_endpoint(sagemaker: Any, name: str) -> dict[str, Any] | None:
    """DescribeEndpoint, or None when there is no such endpoint."""
    try:
        return sagemaker.describe_endpoint(EndpointName=name)
    except Exception as err:
        if is_missing(err):
            return None
        raise


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

        self.name, self.say, self.status, self.last = name, say, "", {}
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


def wait_in_service(
    sagemaker: Any, name: str, waiting: Waiting, progress: bool, say: Reporter
) -> dict[str, Any]:
    """Wait with the ``endpoint_in_service`` waiter; return the last DescribeEndpoint."""
    from botocore.exceptions import WaiterError

    tracker, started = _StatusTracker(name, progress, say), time.monotonic()
    event = "after-call.sagemaker.DescribeEndpoint"
    sagemaker.meta.events.register(event, tracker)
    try:
        sagemaker.get_waiter("endpoint_in_service").wait(
            EndpointName=name, WaiterConfig=waiting.config()
        )
    except WaiterError as err:
        raise _waiter_failure(name, err, time.monotonic() - started) from err
    finally:
        sagemaker.meta.events.unregister(event, tracker)
        tracker.bar.close()
    return tracker.last


def _waiter_failure(name: str, err: Any, seconds: float) -> DeployError:
    """The waiter's failure as EndpointTimeout or EndpointFailed with SageMaker's reason."""
    last = err.last_response or {}
    status = last.get("EndpointStatus")
    if "Max attempts exceeded" in str(err):
        return EndpointTimeout(
            f"endpoint {name} still {status or 'not ready'} after {seconds:.0f} s",
            hint="raise --timeout, or check its logs",
        )
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
