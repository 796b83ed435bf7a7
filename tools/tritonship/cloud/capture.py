"""``promote --capture PCT``: SageMaker's data capture, and the records read back from S3.

The endpoint config's ``DataCaptureConfig`` (botocore's service model, sagemaker
2017-07-24 ``service-2.json``: ``CreateEndpointConfigInput.DataCaptureConfig``, shape
``DataCaptureConfig`` with required ``InitialSamplingPercentage`` (0-100),
``DestinationS3Uri`` (pattern ``(https|s3)://([^/])/?(.*)``, at most 512 characters) and
``CaptureOptions`` (1-32 ``CaptureOption``, each a required ``CaptureMode`` of Input,
Output or InputAndOutput); optional ``EnableCapture`` (default on), ``KmsKeyId`` and
``CaptureContentTypeHeader`` (``CsvContentTypes`` and ``JsonContentTypes``, 1-10 each)).
AWS's guide "Capture data from real-time endpoint" builds the same dictionary with
``"CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}]``.

tritonship captures requests and answers, lists ``application/json`` as JSON (Triton's
plain KServe v2 JSON stays readable in the records) and leaves binary+json to SageMaker's
default, base64 (:mod:`tritonship.sagemaker.capture` says why). SageMaker writes the
records under ``<DestinationS3Uri>/<endpoint>/<variant>/yyyy/mm/dd/hh/``; by default
tritonship points it at ``s3://<bucket>/<prefix>/capture`` beside the archives.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from tritonship.errors import UsageError
from tritonship.sagemaker.capture import (
    CAPTURE_MODES,
    JSON_CONTENT_TYPES,
    SUFFIX,
    CaptureError,
    CaptureSet,
    parse_lines,
)

#: The folder under the promote prefix that captures go to by default.
CAPTURE_FOLDER = "capture"
#: DestinationS3Uri's limits in the service model.
MAX_DESTINATION = 512
_DESTINATION = re.compile(r"^s3://[^/]+(/.*)?$")


@dataclass(frozen=True)
class CaptureSpec:
    """What ``--capture PCT [--capture-prefix URI]`` asks for."""

    percent: int
    destination: str | None = None

    def __post_init__(self) -> None:
        """Refuse what SageMaker refuses, before any call."""
        if not 1 <= self.percent <= 100:
            raise UsageError(
                f"--capture {self.percent} is not a percentage of requests (1-100)",
                hint="e.g. --capture 10 keeps one request in ten",
            )
        if self.destination is not None and (
            not _DESTINATION.match(self.destination) or len(self.destination) > MAX_DESTINATION
        ):
            raise UsageError(
                f"--capture-prefix {self.destination!r} is not an S3 URI",
                hint="s3://BUCKET/PREFIX (SageMaker adds <endpoint>/<variant>/yyyy/mm/dd/hh/)",
            )


def default_destination(bucket: str, prefix: str) -> str:
    """``s3://<bucket>/<prefix>/capture``: beside the archives promote uploads."""
    parts = (bucket, prefix.strip("/"), CAPTURE_FOLDER)
    return "s3://" + "/".join(part for part in parts if part)


def data_capture_config(
    spec: CaptureSpec, bucket: str, prefix: str, kms_key: str | None = None
) -> dict[str, Any]:
    """CreateEndpointConfig's ``DataCaptureConfig`` for ``spec``.

    ``kms_key`` (promote's ``--kms-key``, which encrypts the archive) encrypts the
    captured records too (``DataCaptureConfig.KmsKeyId``).
    """
    config: dict[str, Any] = {
        "EnableCapture": True,
        "InitialSamplingPercentage": spec.percent,
        "DestinationS3Uri": spec.destination or default_destination(bucket, prefix),
        "CaptureOptions": [{"CaptureMode": mode} for mode in CAPTURE_MODES],
        "CaptureContentTypeHeader": {"JsonContentTypes": list(JSON_CONTENT_TYPES)},
    }
    if kms_key:
        config["KmsKeyId"] = kms_key
    return config


def describe_capture(config: dict[str, Any] | None) -> str:
    """One line for a DataCaptureConfig (None or disabled: off)."""
    if not config or config.get("EnableCapture") is False:
        return "off"
    modes = "+".join(o.get("CaptureMode", "?") for o in config.get("CaptureOptions", []))
    percent = config.get("InitialSamplingPercentage", config.get("CurrentSamplingPercentage"))
    return f"{percent}% of requests ({modes}) to {config.get('DestinationS3Uri')}"


# --- reading captures back from S3 --------------------------------------------------------------


def split_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` -> ``("bucket", "some/prefix")``."""
    if not uri.startswith("s3://"):
        raise UsageError(f"{uri} is not an s3:// URI")
    bucket, _, key = uri[len("s3://") :].partition("/")
    if not bucket:
        raise UsageError(f"{uri} names no bucket", hint="s3://BUCKET/PREFIX")
    return bucket, key


def read_s3(s3: Any, uri: str) -> CaptureSet:
    """The records of every ``*.jsonl`` object under ``uri`` (ListObjectsV2 pages, GetObject).

    Each record's source is its object's URI and line; the key's folders name the variant.
    """
    bucket, prefix = split_uri(uri)
    found = CaptureSet(uri, [], [])
    paginator = s3.get_paginator("list_objects_v2")
    keys = sorted(
        item["Key"]
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix)
        for item in page.get("Contents", [])
        if item["Key"].endswith(SUFFIX)
    )
    for key in keys:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as err:
            raise CaptureError(f"s3://{bucket}/{key} is not UTF-8 JSON Lines") from err
        parse_lines(text, f"s3://{bucket}/{key}", found)
    return found
