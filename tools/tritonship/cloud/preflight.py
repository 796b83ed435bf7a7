"""Checks before promote writes anything: the role's trust policy, the quota, the budgets.

Two first-day failures otherwise surface only after minutes, as a Failed endpoint:

- the execution role does not let ``sagemaker.amazonaws.com`` assume it (``iam:GetRole``,
  its ``AssumeRolePolicyDocument``);
- the account's Service Quotas value "<instance type> for endpoint usage" (service code
  ``sagemaker``) is below what the deployment needs, often 0 for GPU types on a new account.

A check the caller may not make (access denied) is reported as a warning and skipped, and
so is any error of Service Quotas (the check is advisory: SageMaker enforces the quota);
a role that does not exist fails. What is needed: the new fleet (the promoted variant at
``max(--instance-count, autoscaling maximum)``, or on an autoscaled endpoint at least its
current count and registered maximum, plus the other variants of that type it keeps) and,
during a blue/green update, the instances of that type the endpoint runs now, since both
fleets run until the cutover. Other endpoints' usage is not counted.

The third check needs no AWS call: the variant's download and startup budgets
(``ModelDataDownloadTimeoutInSeconds``, ``ContainerStartupHealthCheckTimeoutInSeconds``)
against what ``serve --archive`` measured for this very archive (its unpack and its load,
:mod:`tritonship.artifact.timings`) times :data:`~tritonship.artifact.timings.MARGIN`: a
budget below that is a warning, since SageMaker would stop a fleet that outlasts it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

from tritonship.artifact.timings import MARGIN, Timing, read_timing
from tritonship.cloud.aws import describe, error_code
from tritonship.cloud.deployed import Deployed
from tritonship.cloud.state import Plan
from tritonship.errors import TritonshipError
from tritonship.reporting import Reporter

SERVICE_PRINCIPAL = "sagemaker.amazonaws.com"
QUOTA_SERVICE = "sagemaker"
_DENIED = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"})
_ASSUME_ACTIONS = frozenset({"sts:AssumeRole", "sts:*", "*"})
TRUST_STATEMENT = {
    "Effect": "Allow",
    "Principal": {"Service": SERVICE_PRINCIPAL},
    "Action": "sts:AssumeRole",
}


class PreflightFailed(TritonshipError):
    """A check before the first write found what would make the endpoint fail."""


def quota_name(instance_type: str) -> str:
    """The Service Quotas name of an instance type's endpoint quota."""
    return f"{instance_type} for endpoint usage"


def instances_needed(plan: Plan, deployed: Deployed | None) -> int:
    """Instances of the plan's type the deployment needs at once (new and old fleet)."""
    options = plan.options
    ours = max(options.instance_count, options.autoscale[1] if options.autoscale else 0)
    if deployed is not None and deployed.autoscaled:  # retained count, registered maximum
        current = deployed.summary(plan.variant).get("CurrentInstanceCount") or 0
        registered = deployed.scaling.get(plan.variant, (0, 0))[1]
        ours = max(ours, int(current), registered)
    kept = sum(
        int(v.get("InitialInstanceCount") or 0)
        for v in plan.others
        if v.get("InstanceType") == options.instance_type
    )
    running = deployed.instances(options.instance_type) if deployed else 0
    return ours + kept + running


def describe_checks(plan: Plan, deployed: Deployed | None) -> list[str]:
    """The dry run's lines for both checks."""
    name = plan.options.role.rsplit("/", 1)[-1]
    need = instances_needed(plan, deployed)
    return [
        f"iam.get_role(RoleName={name})  -> its trust policy must let {SERVICE_PRINCIPAL} "
        "assume it (access denied: warn and go on)",
        f'service-quotas.list_service_quotas(ServiceCode={QUOTA_SERVICE})  -> "'
        f'{quota_name(plan.options.instance_type)}" must be >= {need} (access denied: warn '
        "and go on)",
        f"budgets (no AWS call): {_check_budgets(None, plan, deployed)}",
    ]


def preflight(clients: Any, plan: Plan, deployed: Deployed | None, say: Reporter) -> None:
    """Run both checks; raise :class:`PreflightFailed` with the fix, warn where not allowed.

    The role check skips only on access denied. The quota check is advisory (SageMaker
    enforces the quota anyway): any error Service Quotas answers skips it with a warning.
    """
    checks = (
        ("the role's trust policy", _check_role),
        ("the instance quota", _check_quota),
        ("the startup budgets", _check_budgets),
    )
    for what, check in checks:
        try:
            say(check(clients, plan, deployed))
        except PreflightFailed:
            raise
        except Exception as err:
            if not _skippable(check, err):
                raise
            say(f"WARNING: {what} not checked: {describe(err)}")


def _skippable(check: Any, err: Exception) -> bool:
    """Whether a check's AWS error means "cannot check" rather than a failure."""
    code = error_code(err)
    return code in _DENIED or (check is _check_quota and bool(code))


def _check_role(clients: Any, plan: Plan, deployed: Deployed | None) -> str:
    """The role's trust policy: must allow sagemaker.amazonaws.com to assume it."""
    arn = plan.options.role
    name = arn.rsplit("/", 1)[-1]
    try:
        role = clients.iam.get_role(RoleName=name)["Role"]
    except Exception as err:
        if error_code(err) != "NoSuchEntity":
            raise
        raise PreflightFailed(
            f"role {arn} does not exist", hint="create it, or pass the right --role"
        ) from err
    if not trusts_sagemaker(_policy(role.get("AssumeRolePolicyDocument"))):
        raise PreflightFailed(
            f"role {name} does not trust {SERVICE_PRINCIPAL}: SageMaker cannot assume it",
            hint=f"add this statement to its trust policy (aws iam update-assume-role-policy "
            f"--role-name {name} --policy-document ...): {json.dumps(TRUST_STATEMENT)}",
        )
    return f"preflight: role {name} trusts {SERVICE_PRINCIPAL}"


def _policy(document: Any) -> dict[str, Any]:
    """A trust policy as a dict (boto3 decodes it; a raw answer is URL-encoded JSON)."""
    if isinstance(document, dict):
        return document
    return json.loads(unquote(document or "{}"))


def trusts_sagemaker(policy: dict[str, Any]) -> bool:
    """Whether a trust policy allows sagemaker.amazonaws.com to assume the role."""
    return any(
        statement.get("Effect") == "Allow"
        and _assume(statement.get("Action"))
        and SERVICE_PRINCIPAL in _services(statement.get("Principal"))
        for statement in _as_list(policy.get("Statement"))
    )


def _assume(action: Any) -> bool:
    return bool(_ASSUME_ACTIONS & set(_as_list(action)))


def _services(principal: Any) -> list[str]:
    if principal == "*":
        return [SERVICE_PRINCIPAL]
    return _as_list(principal.get("Service")) if isinstance(principal, dict) else []


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _check_quota(clients: Any, plan: Plan, deployed: Deployed | None) -> str:
    """The instance quota: must cover what the deployment needs."""
    name, need = quota_name(plan.options.instance_type), instances_needed(plan, deployed)
    found = _find_quota(clients.quotas, name)
    if found is None:
        return f'WARNING: no Service Quotas entry "{name}": quota not checked'
    value = float(found["Value"])
    if value < need:
        raise PreflightFailed(
            f'Service Quotas "{name}" is {value:g} in {plan.region}, this deployment needs {need}',
            hint=f"request an increase: aws service-quotas request-service-quota-increase "
            f"--service-code {QUOTA_SERVICE} --quota-code {found['QuotaCode']} "
            f"--desired-value {need} --region {plan.region}",
        )
    return f'preflight: "{name}" is {value:g} (needs {need})'


def _find_quota(client: Any, name: str) -> dict[str, Any] | None:
    """The applied quota named ``name``, else its default, else None."""
    for operation in ("list_service_quotas", "list_aws_default_service_quotas"):
        found = next((q for q in _quotas(client, operation) if q.get("QuotaName") == name), None)
        if found is not None:
            return found
    return None


def _quotas(client: Any, operation: str) -> Iterator[dict[str, Any]]:
    """Every quota of SageMaker one ``operation`` lists, page by page (lazily)."""
    for page in client.get_paginator(operation).paginate(ServiceCode=QUOTA_SERVICE):
        yield from page.get("Quotas", [])


def _check_budgets(clients: Any, plan: Plan, deployed: Deployed | None) -> str:
    """The download and startup budgets against this archive's local measurements."""
    if plan.multi_model:
        return (
            "preflight: a multi-model endpoint loads each archive when it is first invoked: "
            "only the container's start counts against --startup-timeout"
        )
    timing = read_timing(plan.upload.sha256)
    if timing is None:
        return (
            f"preflight: {plan.upload.path.name} was never measured here: tritonship serve "
            f"--archive {plan.upload.path} measures its unpack and load, which promote then "
            "compares with --download-timeout and --startup-timeout"
        )
    short = _short_budgets(plan, timing)
    if short:
        return "WARNING: " + "; ".join(short) + " (raise them; docs/deploying.md explains why)"
    return (
        f"preflight: --download-timeout {plan.options.download_timeout} s and "
        f"--startup-timeout {plan.options.startup_timeout} s cover {MARGIN:g} x the local "
        f"unpack ({_seconds(timing.unpack_seconds)}) and load ({_seconds(timing.load_seconds)})"
    )


def _short_budgets(plan: Plan, timing: Timing) -> list[str]:
    """One line per budget below MARGIN x its local measurement."""
    o = plan.options
    pairs = (
        ("--download-timeout", o.download_timeout, "unpack", timing.unpack_seconds),
        ("--startup-timeout", o.startup_timeout, "load", timing.load_seconds),
    )
    return [
        f"{option} {budget} s is below {MARGIN:g} x the {measured:.1f} s the {what} took here "
        f"({timing.engine or 'serve --archive'}): SageMaker may stop the new fleet before it "
        f"serves; give at least {int(measured * MARGIN) + 1}"
        for option, budget, what, measured in pairs
        if measured is not None and budget < measured * MARGIN
    ]


def _seconds(value: float | None) -> str:
    return "not measured" if value is None else f"{value:.1f} s"
