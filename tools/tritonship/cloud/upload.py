"""Put the archive in S3: private bucket only, encrypted, checksummed, uploaded once.

boto3's managed transfer uploads in parts with a SHA-256 per part (S3 rejects a part whose
bytes do not match); afterwards the object's composite checksum (SHA-256 of the parts'
SHA-256s) is compared with one computed here from the local file. The archive's own
SHA-256 rides along as metadata, so a re-promote of the same archive skips the upload.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tritonship.cloud.aws import error_code, is_missing, tag_query
from tritonship.errors import ChecksumError, TritonshipError
from tritonship.reporting import Reporter

PART_SIZE = 8 << 20
SHA256_METADATA = "archive-sha256"
MANIFEST_OBJECT = "model.manifest.json"
_BLOCK_SETTINGS = (
    "BlockPublicAcls",
    "IgnorePublicAcls",
    "BlockPublicPolicy",
    "RestrictPublicBuckets",
)


@dataclass(frozen=True)
class UploadSpec:
    """Where the archive goes and how it is stored."""

    path: Path
    bucket: str
    key: str
    sha256: str
    size: int
    kms_key: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    manifest_name: str = MANIFEST_OBJECT

    @property
    def uri(self) -> str:
        """``s3://bucket/key``."""
        return f"s3://{self.bucket}/{self.key}"

    @property
    def manifest_key(self) -> str:
        """The key of the package manifest stored beside the archive."""
        return f"{self.key.rsplit('/', 1)[0]}/{self.manifest_name}"

    @property
    def name(self) -> str:
        """The archive's file name (a multi-model endpoint's ``TargetModel``)."""
        return self.key.rsplit("/", 1)[-1]

    def extra_args(self) -> dict[str, Any]:
        """The upload's ExtraArgs: encryption, per-part checksums, metadata and tags."""
        encryption: dict[str, Any] = {"ServerSideEncryption": "AES256"}
        if self.kms_key:
            encryption = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self.kms_key}
        return {
            **encryption,
            "ChecksumAlgorithm": "SHA256",
            "Tagging": tag_query(self.tags),
            "Metadata": {SHA256_METADATA: self.sha256},
        }


def transfer_config() -> Any:
    """Multipart above one part size, parts of ``PART_SIZE``."""
    from boto3.s3.transfer import TransferConfig

    return TransferConfig(
        multipart_threshold=PART_SIZE, multipart_chunksize=PART_SIZE, max_concurrency=4
    )


def check_bucket_private(s3: Any, bucket: str) -> None:
    """Refuse a bucket whose public access block is not fully on."""
    try:
        settings = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    except Exception as err:
        if error_code(err) != "NoSuchPublicAccessBlockConfiguration":
            raise
        settings = {}
    off = [name for name in _BLOCK_SETTINGS if not settings.get(name)]
    if off:
        raise TritonshipError(
            f"bucket {bucket} does not block public access ({', '.join(off)} off)",
            hint=f"aws s3api put-public-access-block --bucket {bucket} "
            "--public-access-block-configuration " + ",".join(f"{n}=true" for n in off),
        )


def head(s3: Any, bucket: str, key: str) -> dict[str, Any] | None:
    """The object's metadata with its checksum, or None when it is not there."""
    try:
        return s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    except Exception as err:
        if is_missing(err):
            return None
        raise


def expected_checksum(path: Path, size: int) -> str:
    """The base64 SHA-256 S3 reports for this file uploaded with :func:`transfer_config`."""
    from s3transfer.utils import ChunksizeAdjuster

    if size < PART_SIZE:
        return base64.b64encode(hashlib.sha256(path.read_bytes()).digest()).decode()
    chunk = ChunksizeAdjuster().adjust_chunksize(PART_SIZE, size)
    with path.open("rb") as handle:
        parts = [hashlib.sha256(block).digest() for block in iter(lambda: handle.read(chunk), b"")]
    composite = base64.b64encode(hashlib.sha256(b"".join(parts)).digest()).decode()
    return f"{composite}-{len(parts)}"


def _digest_part(checksum: str) -> str:
    """A checksum without the ``-<parts>`` suffix S3 may add to a composite one."""
    return checksum.rsplit("-", 1)[0]


def verify(meta: dict[str, Any], spec: UploadSpec) -> str:
    """Check size, recorded SHA-256 and S3's checksum; return how it was verified."""
    if meta.get("ContentLength") != spec.size:
        raise ChecksumError(
            f"{spec.uri} holds {meta.get('ContentLength')} bytes, expected {spec.size}",
            hint="promote again to re-upload",
        )
    if meta.get("Metadata", {}).get(SHA256_METADATA) != spec.sha256:
        raise ChecksumError(
            f"{spec.uri} is not this archive (archive-sha256 metadata differs)",
            hint="promote again to re-upload",
        )
    reported = meta.get("ChecksumSHA256")
    if not reported:
        return "size and recorded archive-sha256 match (the server reports no SHA-256 checksum)"
    if _digest_part(reported) != _digest_part(expected_checksum(spec.path, spec.size)):
        raise ChecksumError(
            f"{spec.uri}: S3's SHA-256 checksum differs from the local file",
            hint="promote again to re-upload",
        )
    return f"S3's SHA-256 checksum matches the local file ({reported})"


def upload(s3: Any, spec: UploadSpec, progress: bool) -> None:
    """Managed multipart upload with a progress bar."""
    from tqdm import tqdm

    with tqdm(
        total=spec.size,
        unit="B",
        unit_scale=True,
        desc=f"uploading {spec.path.name}",
        disable=not progress,
        leave=False,
    ) as bar:
        s3.upload_file(
            str(spec.path),
            spec.bucket,
            spec.key,
            ExtraArgs=spec.extra_args(),
            Config=transfer_config(),
            Callback=bar.update,
        )


def upload_manifest(s3: Any, spec: UploadSpec, manifest: bytes) -> None:
    """Store the package manifest beside the archive, encrypted and tagged the same way."""
    args = {k: v for k, v in spec.extra_args().items() if k != "ChecksumAlgorithm"}
    s3.put_object(
        Bucket=spec.bucket,
        Key=spec.manifest_key,
        Body=manifest,
        ContentType="application/json",
        ChecksumAlgorithm="SHA256",
        **args,
    )


def ensure_uploaded(
    s3: Any,
    spec: UploadSpec,
    manifest: bytes,
    progress: bool,
    say: Reporter,
    overwrite: bool = True,
) -> bool:
    """Upload unless the same archive is already there; return whether bytes were sent.

    ``overwrite=False`` (a multi-model endpoint's target models) refuses to replace other
    bytes at the key: SageMaker may go on serving the copy it loaded, so AWS's guide "Add
    or Remove Models" says to upload a new version under a new name, never over the old.
    """
    existing = head(s3, spec.bucket, spec.key)
    if existing is not None:
        try:
            say(f"{spec.uri} already holds this archive: {verify(existing, spec)}; not uploading")
            return False
        except ChecksumError as err:
            if not overwrite:
                raise TritonshipError(
                    f"{spec.uri} holds another archive ({err}): a multi-model endpoint may "
                    "still serve that one from its cache",
                    hint="package the new version under a new name "
                    "(tritonship package --multi-model --suffix _v2)",
                ) from err
            say(f"re-uploading: {err}")
    upload(s3, spec, progress)
    upload_manifest(s3, spec, manifest)
    meta = head(s3, spec.bucket, spec.key)
    if meta is None:
        raise TritonshipError(f"{spec.uri} is missing right after the upload")
    say(f"uploaded {spec.uri}: {verify(meta, spec)}")
    return True


def delete_object(s3: Any, bucket: str, key: str) -> bool:
    """Delete one object; False when it was not there."""
    if head(s3, bucket, key) is None:
        return False
    s3.delete_object(Bucket=bucket, Key=key)
    return True
