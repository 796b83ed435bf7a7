"""``tritonship teardown``: remove an endpoint and everything promote created for it.

Promote's resources are found by their tags (``tritonship:managed``,
``tritonship:endpoint``): the models of every variant promote made, every endpoint config,
the autoscaling of every variant (and the alarm that scales an asynchronous endpoint up from
zero); an endpoint without the tags is refused. The archives
(kept unless ``--delete-artifacts``) are those the models name; a multi-model model names
a prefix, whose archives promote uploaded are found by their metadata. Running it twice is fine:
what is already gone is skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tritonship.cloud import autoscaling
from tritonship.cloud.asynchronous import alarm_name, delete_alarm
from tritonship.cloud.aws import AwsClients, aws_errors
from tritonship.cloud.endpoints import (
    DEFAULT_WAITING,
    KIND_NAMES,
    Waiting,
    delete,
    find_own_endpoint,
    managed_names,
)
from tritonship.cloud.state import DEFAULT_PREFIX, MULTI_MODEL_MODE
from tritonship.cloud.upload import MANIFEST_OBJECT, SHA256_METADATA, delete_object, head
from tritonship.reporting import Reporter, quiet


@dataclass(frozen=True)
class TeardownReport:
    """What was deleted, and the archives left in S3."""

    endpoint: str
    deleted: list[str]
    kept: list[str]


def _split(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> (bucket, key)."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def _artifacts(s3: Any, sagemaker: Any, models: list[str]) -> list[str]:
    """The S3 archives the models point at, and the manifests beside them.

    A multi-model model points at a prefix: its archives are the objects under it that
    promote uploaded (they carry the ``archive-sha256`` metadata); what others put there
    is left alone.
    """
    uris = set()
    for model in models:
        container = sagemaker.describe_model(ModelName=model)["PrimaryContainer"]
        uri = container.get("ModelDataUrl")
        if not uri:
            continue
        if container.get("Mode") == MULTI_MODEL_MODE or uri.endswith("/"):
            uris |= set(_uploaded_under(s3, uri))
        else:
            uris |= {uri, f"{uri.rsplit('/', 1)[0]}/{MANIFEST_OBJECT}"}
    return sorted(uris)


def _uploaded_under(s3: Any, prefix_uri: str) -> list[str]:
    """The objects under an S3 prefix that promote uploaded."""
    bucket, prefix = _split(prefix_uri)
    return [
        uri
        for uri in _swept(s3, bucket, prefix)
        if SHA256_METADATA in (head(s3, bucket, _split(uri)[1]) or {}).get("Metadata", {})
    ]


def _swept(s3: Any, bucket: str | None, prefix: str) -> list[str]:
    """Every object under ``prefix`` in ``bucket`` (none without a bucket)."""
    if not bucket:
        return []
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [f"s3://{bucket}/{item['Key']}" for page in pages for item in page.get("Contents", [])]


def _delete_serving(clients: AwsClients, endpoint: str, waiting: Waiting) -> list[str]:
    """Remove every variant's autoscaling, then the endpoint, waiting until it is gone."""
    sagemaker = clients.sagemaker
    exists = find_own_endpoint(sagemaker, endpoint) is not None
    deleted = [
        f"autoscaling of {rid}" for rid in autoscaling.disable_all(clients.autoscaling, endpoint)
    ]
    if clients.cloudwatch is not None and delete_alarm(clients.cloudwatch, endpoint):
        deleted.append(f"CloudWatch alarm {alarm_name(endpoint)}")
    if exists and delete(sagemaker, "endpoint", endpoint):
        sagemaker.get_waiter("endpoint_deleted").wait(
            EndpointName=endpoint, WaiterConfig=waiting.config()
        )
        deleted.append(f"endpoint {endpoint}")
    return deleted


def _delete_tagged(sagemaker: Any, endpoint: str, models: list[str]) -> list[str]:
    """Delete the endpoint configs promote tagged for ``endpoint``, then ``models``."""
    configs = managed_names(sagemaker, endpoint, "config")
    return [
        f"{KIND_NAMES[kind]} {name}"
        for kind, names in (("config", configs), ("model", models))
        for name in names
        if delete(sagemaker, kind, name)
    ]


def teardown(
    clients: AwsClients,
    endpoint: str,
    delete_artifacts: bool = False,
    bucket: str | None = None,
    prefix: str = DEFAULT_PREFIX,
    waiting: Waiting = DEFAULT_WAITING,
    say: Reporter = quiet,
) -> TeardownReport:
    """Delete the endpoint, its autoscaling, configs and models (and archives if asked)."""
    with aws_errors("teardown"):
        deleted = _delete_serving(clients, endpoint, waiting)
        models = managed_names(clients.sagemaker, endpoint, "model")
        swept = _swept(clients.s3, bucket, f"{prefix.strip('/')}/{endpoint}/")
        archives = sorted({*_artifacts(clients.s3, clients.sagemaker, models), *swept})
        deleted += _delete_tagged(clients.sagemaker, endpoint, models)
        if delete_artifacts:
            deleted += _delete_archives(clients.s3, archives)
    for line in deleted:
        say(f"deleted {line}")
    return TeardownReport(endpoint, deleted, [] if delete_artifacts else archives)


def _delete_archives(s3: Any, uris: list[str]) -> list[str]:
    """Delete the S3 objects that are there; return those."""
    return [uri for uri in uris if delete_object(s3, *_split(uri))]


def summary_lines(report: TeardownReport) -> list[str]:
    """What a teardown did, for the terminal."""
    if not report.deleted:
        lines = [f"nothing left to delete for endpoint {report.endpoint}"]
    else:
        lines = [f"teardown of {report.endpoint}: deleted {len(report.deleted)} resource(s)"]
    if report.kept:
        lines.append("kept in S3 (pass --delete-artifacts to delete): " + ", ".join(report.kept))
    return lines
