"""Where captured records come from: a local folder or an S3 prefix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tritonship.sagemaker.capture import CaptureSet, read_folder


def is_s3(location: str) -> bool:
    """Whether ``location`` is an ``s3://`` URI."""
    return location.startswith("s3://")


def read_captures(location: str, s3: Any = None) -> CaptureSet:
    """Every capture record under ``location`` (``s3://BUCKET/PREFIX`` or a folder).

    ``s3``: the S3 client to use (default: one for the configured region and endpoint).
    """
    if not is_s3(location):
        return read_folder(Path(location))
    from tritonship.cloud.aws import aws_errors, resolve_region
    from tritonship.cloud.capture import read_s3

    with aws_errors(f"reading {location}"):
        if s3 is None:
            import boto3

            s3 = boto3.session.Session(region_name=resolve_region()).client("s3")
        return read_s3(s3, location)
