"""boto3 sessions and clients, the toolkit's resource tags, and AWS errors as one line.

The standard variables apply: ``AWS_PROFILE`` and ``AWS_ENDPOINT_URL`` (boto3 reads both
itself; pointing ``AWS_ENDPOINT_URL`` at a local moto server is how the tests run the real
code) and ``AWS_REGION`` (read by :mod:`tritonship.sagemaker.settings`: boto3 only reads
``AWS_DEFAULT_REGION``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from tritonship.errors import NetworkError, TritonshipError, UsageError
from tritonship.sagemaker import local_aws
from tritonship.sagemaker.settings import require_region

TAG_PREFIX = "tritonship:"
MANAGED_TAG = f"{TAG_PREFIX}managed"
ENDPOINT_TAG = f"{TAG_PREFIX}endpoint"
ARCHIVE_TAG = f"{TAG_PREFIX}archive-sha256"
#: Error codes (and message fragments) that mean "no such resource".
_MISSING_CODES = frozenset(
    {"404", "NoSuchKey", "NotFound", "ResourceNotFoundException", "ObjectNotFoundException"}
)
_MISSING_PHRASES = ("could not find", "no scalable target found")


@dataclass(frozen=True)
class AwsClients:
    """The clients promote, traffic and teardown use (tests pass stubbed ones).

    ``iam`` and ``quotas`` (Service Quotas) serve promote's preflight, ``logs`` (CloudWatch
    Logs) the tail of a failed endpoint's log streams, ``cloudwatch`` the alarm that scales
    an asynchronous endpoint up from zero; None skips what needs them.
    """

    s3: Any
    sagemaker: Any
    runtime: Any
    autoscaling: Any
    iam: Any = None
    quotas: Any = None
    logs: Any = None
    cloudwatch: Any = None


def resolve_region(region: str | None = None) -> str:
    """The region (:func:`tritonship.sagemaker.settings.require_region`)."""
    return require_region(region)


def make_clients(region: str, attempts: int = 5) -> AwsClients:
    """Clients for ``region`` with botocore's standard retry mode (throttling, 5xx).

    ``attempts`` bounds the tries per call (a dry run uses 1: it must not hang offline).
    """
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(region_name=region)

    def client(service: str, read_timeout: float = 60) -> Any:
        # A local stand-in (moto) neither throttles nor fails transiently: one try, so that
        # a call it lacks (a 500 page) fails at once instead of after five backed-off tries.
        tries = 1 if local_aws.local_endpoint(service) else attempts
        retries = {"max_attempts": tries, "mode": "standard"}
        config = Config(retries=retries, connect_timeout=10, read_timeout=read_timeout)
        return session.client(service, config=config)

    return AwsClients(
        s3=client("s3"),
        sagemaker=client("sagemaker"),
        runtime=client("sagemaker-runtime", read_timeout=70),
        autoscaling=client("application-autoscaling"),
        iam=client("iam"),
        quotas=client("service-quotas"),
        logs=client("logs"),
        cloudwatch=client("cloudwatch"),
    )


def toolkit_tags(endpoint: str, archive_sha256: str | None) -> dict[str, str]:
    """The tags every resource promote creates carries, so teardown finds its own.

    ``archive_sha256`` None: a multi-model endpoint's model and config, which serve every
    archive under a prefix (each archive's S3 object carries its own).
    """
    tags = {MANAGED_TAG: "true", ENDPOINT_TAG: endpoint}
    if archive_sha256:
        tags[ARCHIVE_TAG] = archive_sha256
    return tags


def tag_list(tags: Mapping[str, str]) -> list[dict[str, str]]:
    """Tags as the SageMaker API takes them."""
    return [{"Key": key, "Value": value} for key, value in tags.items()]


def tag_query(tags: Mapping[str, str]) -> str:
    """Tags as S3's ``Tagging`` argument (URL query encoding)."""
    return "&".join(f"{quote(key, safe='')}={quote(value, safe='')}" for key, value in tags.items())


def is_managed(tags: list[dict[str, str]], endpoint: str) -> bool:
    """Whether SageMaker tags say promote created this resource for ``endpoint``."""
    values = {tag["Key"]: tag["Value"] for tag in tags}
    return values.get(MANAGED_TAG) == "true" and values.get(ENDPOINT_TAG) == endpoint


def error_code(err: Exception) -> str:
    """The AWS error code of a botocore ClientError ('' for anything else)."""
    response = getattr(err, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def error_message(err: Exception) -> str:
    """The AWS error message of a ClientError, else the exception's text."""
    response = getattr(err, "response", None) or {}
    return str(response.get("Error", {}).get("Message") or err)


def is_missing(err: Exception) -> bool:
    """Whether a ClientError says the resource does not exist."""
    code = error_code(err)
    message = error_message(err).lower()
    return code in _MISSING_CODES or (
        code == "ValidationException" and any(phrase in message for phrase in _MISSING_PHRASES)
    )


def describe(err: Exception) -> str:
    """One line for an AWS failure: ``Code: message`` (whitespace folded, shortened).

    A call a local stand-in (moto) lacks is said as such, not as its HTML 500 page
    (:func:`tritonship.sagemaker.local_aws.explain`).
    """
    lacking = local_aws.explain(err)
    if lacking:
        return lacking
    code = error_code(err)
    text = " ".join((f"{code}: {error_message(err)}" if code else str(err)).split())
    return text if len(text) <= 300 else f"{text[:297]}..."


@contextmanager
def aws_errors(action: str) -> Iterator[None]:
    """Turn botocore failures inside the block into one-line :class:`TritonshipError`."""
    from boto3.exceptions import Boto3Error
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
    )

    try:
        yield
    except NoCredentialsError as err:
        raise TritonshipError(
            f"{action}: no AWS credentials found", hint="set AWS_PROFILE or configure credentials"
        ) from err
    except NoRegionError as err:
        raise UsageError(f"{action}: no AWS region", hint="set AWS_REGION") from err
    except EndpointConnectionError as err:
        raise NetworkError(
            f"{action}: cannot reach {err.kwargs.get('endpoint_url')}",
            hint="check AWS_ENDPOINT_URL and the network",
        ) from err
    except ClientError as err:
        raise TritonshipError(f"{action}: {describe(err)}") from err
    except (BotoCoreError, Boto3Error) as err:
        raise TritonshipError(f"{action}: {describe(err)}") from err
