"""``tritonship status``: where an endpoint stands, and the end of a deployment promote left.

What it reads (Describe calls only, until it has something to finish): DescribeEndpoint's
``EndpointStatus``, ``FailureReason``, the variants' current and desired weights and
instance counts, each variant's ``VariantStatus`` (the deployment stage: Creating,
Updating, ActivatingTraffic, Baking, Deleting; botocore's ``VariantStatus`` enum) and the
``PendingDeploymentSummary`` of a deployment in progress; the autoscaling registrations;
and what promote recorded on the endpoint as tags.

A promote whose wait ended while SageMaker was still deploying records two tags
(:func:`record_pending`): ``tritonship:deploying`` (the config being deployed, the one
before it, when) and, when autoscaling is left to restore, ``tritonship:pending-autoscaling``
(the variant, the bounds to register once the new config serves, those to put back if
SageMaker rolled back, the target). Once the endpoint is InService again, ``status``
finishes that: it registers the bounds that fit the config the endpoint settled on and
removes both tags. Tag values allow letters, digits, spaces and ``_.:/=+-@``, so the
record is ``key=value`` words.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from tritonship.cloud import autoscaling
from tritonship.cloud.aws import TAG_PREFIX, AwsClients, aws_errors, describe
from tritonship.cloud.endpoints import find_own_endpoint
from tritonship.errors import TritonshipError

DEPLOYING_TAG = f"{TAG_PREFIX}deploying"
PENDING_TAG = f"{TAG_PREFIX}pending-autoscaling"
#: The toolkit's own tags that the scalable target carries too (not the record).
_RECORD_TAGS = frozenset({DEPLOYING_TAG, PENDING_TAG})


@dataclass(frozen=True)
class Pending:
    """What promote left to do when its wait ended during a deployment."""

    config: str  # the endpoint config being deployed
    previous: str  # the one served before
    variant: str = autoscaling.VARIANT
    after: tuple[int, int] | None = None  # register once ``config`` serves
    before: tuple[int, int] | None = None  # put back if SageMaker rolled back
    target: float = autoscaling.DEFAULT_TARGET
    asynchronous: bool = False
    started: str = ""

    @property
    def needs_scaling(self) -> bool:
        """Whether any autoscaling is left to register."""
        return self.after is not None or self.before is not None

    def tags(self) -> list[dict[str, str]]:
        """The record as SageMaker tags."""
        deploying = f"config={self.config} previous={self.previous} started={self.started}"
        tags = [{"Key": DEPLOYING_TAG, "Value": deploying}]
        if self.needs_scaling:
            value = (
                f"variant={self.variant} after={_bounds_text(self.after)} "
                f"before={_bounds_text(self.before)} target={self.target:g} "
                f"async={'yes' if self.asynchronous else 'no'}"
            )
            tags.append({"Key": PENDING_TAG, "Value": value})
        return tags

    @classmethod
    def from_tags(cls, tags: dict[str, str]) -> Pending | None:
        """The record in an endpoint's tags, if any."""
        if DEPLOYING_TAG not in tags:
            return None
        deploying = _words(tags[DEPLOYING_TAG])
        scaling = _words(tags.get(PENDING_TAG, ""))
        return cls(
            config=deploying.get("config", ""),
            previous=deploying.get("previous", ""),
            variant=scaling.get("variant", autoscaling.VARIANT),
            after=_parse_bounds(scaling.get("after")),
            before=_parse_bounds(scaling.get("before")),
            target=float(scaling.get("target", autoscaling.DEFAULT_TARGET)),
            asynchronous=scaling.get("async") == "yes",
            started=deploying.get("started", ""),
        )

    def describe(self) -> str:
        """What the record says, in one line."""
        line = f"deploying {self.config} (from {self.previous}) since {self.started or '?'}"
        if self.after:
            line += f"; autoscaling {_bounds_text(self.after)} once it serves"
        if self.before:
            line += f"; {_bounds_text(self.before)} back if SageMaker rolls back"
        return line


def _bounds_text(bounds: tuple[int, int] | None) -> str:
    return f"{bounds[0]}:{bounds[1]}" if bounds else "none"


def _parse_bounds(text: str | None) -> tuple[int, int] | None:
    if not text or text == "none":
        return None
    low, _, high = text.partition(":")
    return int(low), int(high)


def _words(text: str) -> dict[str, str]:
    """``a=1 b=2`` -> ``{"a": "1", "b": "2"}``."""
    return dict(word.split("=", 1) for word in text.split() if "=" in word)


def record_pending(sagemaker: Any, arn: str, pending: Pending) -> str:
    """Tag the endpoint with ``pending``; one line saying what was recorded (or why not)."""
    stamped = replace(pending, started=_now())
    try:
        sagemaker.add_tags(ResourceArn=arn, Tags=stamped.tags())
    except Exception as err:
        restore = f" autoscaling {_bounds_text(pending.after)}" if pending.needs_scaling else ""
        return (
            f"recording it on the endpoint failed ({describe(err)}): once it settles, "
            f"register{restore or ' nothing'} yourself"
        )
    if pending.needs_scaling:
        return f"recorded on the endpoint: {stamped.describe()}"
    return "recorded on the endpoint which config it deploys"


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


# --- the status ------------------------------------------------------------------------------


@dataclass(frozen=True)
class StatusReport:
    """One endpoint as ``status`` shows it."""

    endpoint: dict[str, Any]
    scaling: dict[str, tuple[int, int]]
    pending: Pending | None
    finished: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The endpoint's name."""
        return str(self.endpoint["EndpointName"])

    @property
    def status(self) -> str:
        """EndpointStatus."""
        return str(self.endpoint.get("EndpointStatus"))


def endpoint_status(clients: AwsClients, name: str) -> StatusReport:
    """Describe the endpoint; once it settled, finish what promote recorded."""
    with aws_errors("status"):
        found = find_own_endpoint(clients.sagemaker, name)
        if found is None:
            raise TritonshipError(f"no endpoint {name}", hint="check the name and AWS_REGION")
        tags = _tags(clients.sagemaker, found["EndpointArn"])
        pending = Pending.from_tags(tags)
        finished: list[str] = []
        if pending is not None and found.get("EndpointStatus") == "InService":
            finished = _finish(clients, found, pending, tags)
        variants = [v["VariantName"] for v in found.get("ProductionVariants", [])]
        scaling = autoscaling.registered(clients.autoscaling, name, variants) if variants else {}
    return StatusReport(found, scaling, None if finished else pending, finished)


def _tags(sagemaker: Any, arn: str) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in sagemaker.list_tags(ResourceArn=arn)["Tags"]}


def _finish(
    clients: AwsClients, found: dict[str, Any], pending: Pending, tags: dict[str, str]
) -> list[str]:
    """The deployment is over: register the autoscaling that fits, drop the record."""
    name, serving = found["EndpointName"], found.get("EndpointConfigName")
    deployed = serving == pending.config
    outcome = (
        f"the deployment finished: {name} serves {serving}"
        if deployed
        else f"SageMaker rolled back: {name} serves {serving}, not {pending.config}"
    )
    done = [outcome]
    bounds = pending.after if deployed else pending.before
    if bounds is not None:
        _register(clients, name, pending, bounds, tags)
        done.append(f"autoscaling of {pending.variant} registered: {bounds[0]}..{bounds[1]}")
    clients.sagemaker.delete_tags(
        ResourceArn=found["EndpointArn"], TagKeys=sorted(_RECORD_TAGS & tags.keys())
    )
    done.append("promote's record removed from the endpoint")
    return done


def _register(
    clients: AwsClients,
    name: str,
    pending: Pending,
    bounds: tuple[int, int],
    tags: dict[str, str],
) -> None:
    """Register ``bounds`` as promote would have (the endpoint's toolkit tags on it)."""
    own = {k: v for k, v in tags.items() if k.startswith(TAG_PREFIX) and k not in _RECORD_TAGS}
    if pending.asynchronous:
        from tritonship.cloud.asynchronous import enable_scaling

        enable_scaling(clients, name, bounds, pending.target, own, pending.variant)
        return
    autoscaling.enable(clients.autoscaling, name, bounds, pending.target, own, pending.variant)


def status_lines(report: StatusReport) -> list[str]:
    """What ``status`` prints."""
    found = report.endpoint
    lines = [
        f"endpoint {report.name}: {report.status}, serving {found.get('EndpointConfigName')} "
        f"(last modified {found.get('LastModifiedTime')})"
    ]
    if found.get("FailureReason"):
        lines.append(f"  last failure: {found['FailureReason']}")
    lines += _deployment_lines(found.get("PendingDeploymentSummary"))
    for variant in found.get("ProductionVariants", []):
        lines.append("  " + _variant_line(variant, report.scaling.get(variant["VariantName"])))
    if found.get("AsyncInferenceConfig"):
        output = found["AsyncInferenceConfig"].get("OutputConfig", {})
        lines.append(
            f"  asynchronous: outputs to {output.get('S3OutputPath')}, failures to "
            f"{output.get('S3FailurePath', '(none)')}"
        )
    if report.pending is not None:
        lines.append(f"  recorded by promote: {report.pending.describe()}")
    lines += [f"  done now: {line}" for line in report.finished]
    lines += _next_step(report)
    return lines


def _deployment_lines(summary: dict[str, Any] | None) -> list[str]:
    """The deployment in progress, variant by variant, with its stage."""
    if not summary:
        return []
    lines = [
        f"  deploying {summary.get('EndpointConfigName')} since {summary.get('StartTime', '?')}"
    ]
    for variant in summary.get("ProductionVariants", []):
        lines.append("    " + _variant_line(variant, None))
    return lines


def _variant_line(variant: dict[str, Any], bounds: tuple[int, int] | None) -> str:
    """One variant: weight, instances, autoscaling and deployment stage."""
    line = (
        f"variant {variant['VariantName']}: weight {_num(variant.get('CurrentWeight'))} "
        f"(desired {_num(variant.get('DesiredWeight'))}), instances "
        f"{_num(variant.get('CurrentInstanceCount'))} (desired "
        f"{_num(variant.get('DesiredInstanceCount'))})"
    )
    if bounds:
        line += f", autoscaling {bounds[0]}..{bounds[1]}"
    stages = [
        f"{stage.get('Status')}"
        + (f" ({stage['StatusMessage']})" if stage.get("StatusMessage") else "")
        for stage in variant.get("VariantStatus", [])
    ]
    return line + (f"; stage: {', '.join(stages)}" if stages else "")


def _num(value: Any) -> str:
    return "?" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def _next_step(report: StatusReport) -> list[str]:
    """What to do next, where there is something to do."""
    if report.status in ("Failed", "UpdateRollbackFailed", "OutOfService"):
        return [
            f"  next: tritonship logs --endpoint {report.name}, or tritonship teardown "
            f"--endpoint {report.name}"
        ]
    if report.pending is not None and not report.finished:
        return [
            f"  next: run tritonship status --endpoint {report.name} again once it is "
            "InService: it then finishes what promote recorded"
        ]
    return []


def status_json(report: StatusReport) -> dict[str, Any]:
    """The report as JSON (DescribeEndpoint's answer, plus autoscaling and the record)."""
    return {
        "endpoint": {k: v for k, v in report.endpoint.items() if k != "ResponseMetadata"},
        "autoscaling": {k: list(v) for k, v in report.scaling.items()},
        "recorded": asdict(report.pending) if report.pending else None,
        "done": report.finished,
    }
