"""SageMaker's data capture records: the JSON Lines ``DataCaptureConfig`` writes to S3.

The format, from AWS's guide "Capture data from real-time endpoint", section "View
Captured Data" (awsdocs/amazon-sagemaker-developer-guide,
``doc_source/model-monitor-data-capture-endpoint.md``): one JSON object per line,

    {"captureData": {"endpointInput":  {"observedContentType": "text/csv", "mode": "INPUT",
                                        "data": "...", "encoding": "CSV"},
                     "endpointOutput": {"observedContentType": "text/csv; charset=utf-8",
                                        "mode": "OUTPUT", "data": "...", "encoding": "CSV"}},
     "eventMetadata": {"eventId": "<uuid>", "inferenceTime": "2022-02-14T17:25:49Z"},
     "eventVersion": "0"}

in objects named ``<DestinationS3Uri>/<endpoint-name>/<variant-name>/yyyy/mm/dd/hh/
<file>.jsonl`` (the same guide; its ``capture_record["eventMetadata"]`` also carries
``inferenceId`` when the caller sent one, ``doc_source/model-monitor-data-capture.md``).

How a payload is encoded: a content type listed in ``CaptureContentTypeHeader``'s
``JsonContentTypes`` is kept as JSON text, one in ``CsvContentTypes`` as CSV text, and
"if no headers are specified SageMaker AI will by default base64 encode when capturing the
data" (botocore's service model, sagemaker 2017-07-24 ``service-2.json``, shape
``DataCaptureConfig``, member ``CaptureContentTypeHeader``). The guide's own example shows
``"observedContentType": "text/csv; charset=utf-8"`` captured as ``CSV``: the match is on
the media type, parameters aside. Triton's binary+json requests and answers are therefore
captured base64-encoded, with ``"observedContentType":
"application/vnd.sagemaker-triton.binary+json;json-header-size=N"`` and ``"encoding":
"BASE64"`` (the record quoted in triton-inference-server/client pull request #269, which
is about exactly these unreadable captures). They cannot be listed as JSON anyway: the
``JsonContentType`` pattern of the service model (``[a-zA-Z0-9](-*[a-zA-Z0-9])*`` then a
slash and ``[a-zA-Z0-9](-*[a-zA-Z0-9.])*``) has no ``+``, and their binary tail is no text.

This module writes records (the local runtime captures in this layout) and reads them
back, whichever encoding SageMaker chose, and whether it marked one or not.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tritonship.errors import TritonshipError

#: CaptureOption.CaptureMode values (botocore's service model, shape CaptureMode).
INPUT_MODE, OUTPUT_MODE = "Input", "Output"
CAPTURE_MODES = (INPUT_MODE, OUTPUT_MODE)
#: What the records call each side ("mode" of endpointInput and endpointOutput).
RECORD_MODES = {INPUT_MODE: "INPUT", OUTPUT_MODE: "OUTPUT"}
BASE64, JSON_ENCODING, CSV_ENCODING = "BASE64", "JSON", "CSV"
#: The content types tritonship lists as JSON: Triton's plain KServe v2 JSON. Binary+json
#: stays base64 (SageMaker's default), the only encoding that keeps its binary tail intact.
JSON_CONTENT_TYPES = ("application/json",)
EVENT_VERSION = "0"
SUFFIX = ".jsonl"
#: ``inferenceTime`` as the guide shows it: UTC, whole seconds, a ``Z``.
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


class CaptureError(TritonshipError):
    """A capture record that cannot be read, or a payload that cannot be decoded."""


def media_type(content_type: str | None) -> str:
    """The media type of a Content-Type, lower case and without parameters."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def encoding_for(
    content_type: str | None,
    json_types: Sequence[str] = JSON_CONTENT_TYPES,
    csv_types: Sequence[str] = (),
) -> str:
    """How SageMaker captures a payload of ``content_type``: JSON, CSV or BASE64."""
    mime = media_type(content_type)
    if mime in {media_type(t) for t in json_types}:
        return JSON_ENCODING
    if mime in {media_type(t) for t in csv_types}:
        return CSV_ENCODING
    return BASE64


def payload_entry(
    body: bytes,
    content_type: str | None,
    mode: str,
    json_types: Sequence[str] = JSON_CONTENT_TYPES,
    csv_types: Sequence[str] = (),
) -> dict[str, str]:
    """``endpointInput`` or ``endpointOutput`` for ``body`` (``mode``: Input or Output).

    A body listed as text that is not UTF-8 is kept as base64: text would lose it (what
    SageMaker does then is not documented).
    """
    encoding = encoding_for(content_type, json_types, csv_types)
    data = None
    if encoding != BASE64:
        try:
            data = body.decode("utf-8")
        except UnicodeDecodeError:
            encoding = BASE64
    if data is None:
        data = base64.b64encode(body).decode("ascii")
    return {
        "observedContentType": content_type or "",
        "mode": RECORD_MODES[mode],
        "data": data,
        "encoding": encoding,
    }


@dataclass(frozen=True)
class Exchange:
    """One answered invocation: what came in and what went out."""

    request: bytes
    request_type: str | None
    answer: bytes
    answer_type: str | None
    event_id: str
    when: datetime
    inference_id: str | None = None


def capture_record(
    exchange: Exchange,
    modes: Sequence[str] = CAPTURE_MODES,
    json_types: Sequence[str] = JSON_CONTENT_TYPES,
    csv_types: Sequence[str] = (),
) -> dict[str, Any]:
    """One capture record, as SageMaker writes it, of the sides ``modes`` name."""
    data: dict[str, Any] = {}
    if INPUT_MODE in modes:
        data["endpointInput"] = payload_entry(
            exchange.request, exchange.request_type, INPUT_MODE, json_types, csv_types
        )
    if OUTPUT_MODE in modes:
        data["endpointOutput"] = payload_entry(
            exchange.answer, exchange.answer_type, OUTPUT_MODE, json_types, csv_types
        )
    metadata = {"eventId": exchange.event_id, "inferenceTime": inference_time(exchange.when)}
    if exchange.inference_id:
        metadata["inferenceId"] = exchange.inference_id
    return {"captureData": data, "eventMetadata": metadata, "eventVersion": EVENT_VERSION}


def inference_time(when: datetime) -> str:
    """``when`` as ``inferenceTime`` (UTC)."""
    return when.astimezone(timezone.utc).strftime(TIME_FORMAT)


def object_key(prefix: str, endpoint: str, variant: str, when: datetime, name: str) -> str:
    """``<prefix>/<endpoint>/<variant>/yyyy/mm/dd/hh/<name>.jsonl`` (the guide's layout)."""
    hour = when.astimezone(timezone.utc).strftime("%Y/%m/%d/%H")
    parts = [prefix.strip("/"), endpoint, variant, hour, f"{name}{SUFFIX}"]
    return "/".join(part for part in parts if part)


# --- reading ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CapturedPayload:
    """One side of a record: its observed Content-Type, mode, encoding and data."""

    content_type: str
    mode: str
    encoding: str | None
    data: str

    def body(self) -> bytes:
        """The bytes that crossed the wire.

        ``BASE64`` is decoded; ``JSON`` and ``CSV`` are the text itself. A payload that names
        no encoding (a hand-made record, or a future format) is taken as text when its type
        is JSON or CSV, else as base64 when it decodes as such, else as text.
        """
        encoding = (self.encoding or "").upper()
        if encoding == BASE64:
            return _b64decode(self.data, self.content_type)
        if encoding in (JSON_ENCODING, CSV_ENCODING):
            return self.data.encode("utf-8")
        if encoding:
            raise CaptureError(f"unknown capture encoding {self.encoding!r}")
        if encoding_for(self.content_type, csv_types=("text/csv",)) != BASE64:
            return self.data.encode("utf-8")
        try:
            return base64.b64decode(self.data, validate=True)
        except (binascii.Error, ValueError):
            return self.data.encode("utf-8")

    def as_json(self) -> dict[str, Any]:
        """The payload as the record holds it."""
        return {
            "observedContentType": self.content_type,
            "mode": self.mode,
            "encoding": self.encoding,
        }


def _b64decode(data: str, content_type: str) -> bytes:
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as err:
        raise CaptureError(f"a {content_type} payload marked BASE64 is not base64: {err}") from err


@dataclass(frozen=True)
class CaptureRecord:
    """One captured invocation, and where it was read from (``file:line``)."""

    event_id: str
    inference_time: str
    inference_id: str | None
    request: CapturedPayload | None
    answer: CapturedPayload | None
    source: str
    variant: str | None = None


def _payload(entry: Any, side: str) -> CapturedPayload | None:
    if entry is None:
        return None
    if not isinstance(entry, dict) or not isinstance(entry.get("data"), str):
        raise CaptureError(f"{side} has no data string")
    return CapturedPayload(
        str(entry.get("observedContentType") or ""),
        str(entry.get("mode") or ""),
        entry.get("encoding"),
        entry["data"],
    )


def parse_record(line: str, source: str, variant: str | None = None) -> CaptureRecord:
    """One JSON line of a capture file as a :class:`CaptureRecord`."""
    try:
        value = json.loads(line)
        data = value["captureData"]
        metadata = value.get("eventMetadata") or {}
        request = _payload(data.get("endpointInput"), "endpointInput")
        answer = _payload(data.get("endpointOutput"), "endpointOutput")
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise CaptureError(f"{source}: not a capture record ({type(err).__name__}: {err})") from err
    except CaptureError as err:
        raise CaptureError(f"{source}: {err}") from err
    return CaptureRecord(
        str(metadata.get("eventId") or ""),
        str(metadata.get("inferenceTime") or ""),
        metadata.get("inferenceId"),
        request,
        answer,
        source,
        variant,
    )


def variant_of(key: str) -> str | None:
    """The variant folder of a key in the guide's layout (``.../<variant>/yyyy/mm/dd/hh/f``)."""
    parts = key.strip("/").split("/")
    if len(parts) >= 6 and all(p.isdigit() for p in parts[-5:-1]):
        return parts[-6]
    return None


@dataclass
class CaptureSet:
    """The records read from a folder or prefix, and the lines that could not be read."""

    location: str
    records: list[CaptureRecord]
    problems: list[str]
    files: int = 0


def parse_lines(text: str, name: str, into: CaptureSet, key: str | None = None) -> None:
    """Add every record of one capture file's text to ``into`` (bad lines as problems).

    ``name`` is what each record's source shows; ``key`` (default ``name``) the full path
    or object key, whose folders name the variant.
    """
    into.files += 1
    variant = variant_of(key or name)
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            into.records.append(parse_record(line, f"{name}:{number}", variant))
        except CaptureError as err:
            into.problems.append(str(err))


def capture_files(root: Path) -> list[Path]:
    """Every ``*.jsonl`` under ``root`` (or ``root`` itself), in path order."""
    if root.is_file():
        return [root]
    return sorted(path for path in root.rglob(f"*{SUFFIX}") if path.is_file())


def read_folder(root: Path) -> CaptureSet:
    """The records of every capture file under ``root``."""
    if not root.exists():
        raise CaptureError(f"{root} does not exist", hint="give the folder serve --capture wrote")
    found = CaptureSet(str(root), [], [])
    base = root if root.is_dir() else root.parent
    for path in capture_files(root):
        name = path.relative_to(base).as_posix()
        parse_lines(path.read_text(encoding="utf-8"), name, found, path.resolve().as_posix())
    return found


def sorted_records(records: Iterable[CaptureRecord]) -> list[CaptureRecord]:
    """Records by inference time; ties keep the order they were read in (files, lines)."""
    return sorted(records, key=lambda r: r.inference_time)


def iter_requests(records: Iterable[CaptureRecord]) -> Iterator[CaptureRecord]:
    """The records that captured a request (Input mode)."""
    return (record for record in records if record.request is not None)
