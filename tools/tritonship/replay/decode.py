"""``tritonship capture decode``: captured records as readable files and the original images.

Per record, a folder ``NNNN-<eventId>/`` holds:

- ``record.json``: when, where it was read, both payloads' content type and encoding, the
  request's inputs (name, datatype, shape, where their data went) and the answer's
  outputs (with the top-5 classes of our ensemble's rows);
- ``request.body``: the request exactly as it was sent (``tritonship invoke --body
  request.body --content-type '<observedContentType>'`` sends it again);
- the images a request carried (``INPUT-0.jpg``, ...), byte for byte the files the client
  encoded, and every other input as ``<name>.npy``;
- ``response.json``: the decoded answer (KServe v2 JSON, binary outputs included).

Base64 records (binary+json, raw) and text records (JSON) decode alike
(:meth:`tritonship.sagemaker.capture.CapturedPayload.body`).
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tritonship.errors import TritonshipError
from tritonship.fileio import write_bytes_atomic, write_text_atomic
from tritonship.sagemaker.agreement import TOP_K, classifier_rows
from tritonship.sagemaker.capture import (
    CapturedPayload,
    CaptureRecord,
    CaptureSet,
    sorted_records,
)
from tritonship.sagemaker.request_body import (
    RAW_INPUT,
    DecodedRequest,
    RequestTensor,
    decode_request,
    images_in,
)
from tritonship.sagemaker.tensors import InferenceAnswer, answer_json, decode_answer

#: Inputs up to this many values are also written inline in record.json.
INLINE_VALUES = 16
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass
class DecodedRecord:
    """What one record became: its folder, images and one-line summary (or why it failed)."""

    record: CaptureRecord
    folder: Path
    images: list[Path] = field(default_factory=list)
    summary: str = ""
    problem: str | None = None


@dataclass
class DecodeReport:
    """Every record decoded, where, and those that could not be."""

    location: str
    out: Path
    decoded: list[DecodedRecord]
    unreadable: list[str]

    @property
    def images(self) -> int:
        """How many images were recovered."""
        return sum(len(item.images) for item in self.decoded)

    @property
    def failed(self) -> list[DecodedRecord]:
        """The records whose payloads could not be decoded."""
        return [item for item in self.decoded if item.problem]


def safe_name(text: str) -> str:
    """``text`` as a file-name part (an eventId or a tensor name)."""
    return _UNSAFE.sub("_", text).strip("._")[:80] or "x"


def decode_captures(captures: CaptureSet, out: Path) -> DecodeReport:
    """Decode every record of ``captures`` into ``out`` (one folder each, an index)."""
    out.mkdir(parents=True, exist_ok=True)
    decoded = []
    for number, record in enumerate(sorted_records(captures.records), 1):
        folder = out / f"{number:04d}-{safe_name(record.event_id or 'no-event-id')}"
        decoded.append(decode_record(record, folder))
    report = DecodeReport(captures.location, out, decoded, list(captures.problems))
    write_text_atomic(out / "index.json", json.dumps(index_json(report), indent=2) + "\n")
    return report


def decode_record(record: CaptureRecord, folder: Path) -> DecodedRecord:
    """One record into ``folder``; a payload that cannot be decoded is recorded, not raised."""
    item = DecodedRecord(record, folder)
    details: dict[str, Any] = {
        "eventId": record.event_id,
        "inferenceTime": record.inference_time,
        "inferenceId": record.inference_id,
        "source": record.source,
        "variant": record.variant,
    }
    parts = []
    try:
        if record.request is not None:
            details["request"], said = _request(record.request, folder, item)
            parts.append(said)
        if record.answer is not None:
            details["answer"], said = _answer(record.answer, folder)
            parts.append(said)
    except TritonshipError as err:
        item.problem = str(err)
        details["problem"] = item.problem
    item.summary = "; ".join(parts) if parts else "no payload captured"
    write_text_atomic(folder / "record.json", json.dumps(details, indent=2, default=str) + "\n")
    return item


def _request(
    payload: CapturedPayload, folder: Path, item: DecodedRecord
) -> tuple[dict[str, Any], str]:
    """Write the request's body, images and tensors; its record.json entry and a summary."""
    body = payload.body()
    write_bytes_atomic(folder / "request.body", body)
    entry: dict[str, Any] = {**payload.as_json(), "bytes": len(body), "file": "request.body"}
    decoded = decode_request(body, payload.content_type)
    entry["kind"] = decoded.kind
    entry["inputs"] = [_input(tensor, folder, item) for tensor in decoded.inputs]
    if decoded.outputs:
        entry["outputs_requested"] = decoded.outputs
    return entry, _request_summary(decoded, item)


def _request_summary(decoded: DecodedRequest, item: DecodedRecord) -> str:
    shapes = ", ".join(f"{t.name} {t.datatype} {t.shape}" for t in decoded.inputs)
    images = f", {len(item.images)} image(s)" if item.images else ""
    return f"{decoded.kind} request ({shapes}){images}"


def _input(tensor: RequestTensor, folder: Path, item: DecodedRecord) -> dict[str, Any]:
    """One input: its images (``<name>-<i>.<ext>``) or its ``.npy``; inline when small."""
    entry: dict[str, Any] = {
        "name": tensor.name,
        "datatype": tensor.datatype,
        "shape": tensor.shape,
        "binary": tensor.binary,
    }
    stem = "INPUT" if tensor.name == RAW_INPUT else safe_name(tensor.name)
    images = images_in(tensor)
    if images is not None:
        paths = []
        for index, (data, ext) in enumerate(images):
            path = folder / f"{stem}-{index}{ext}"
            write_bytes_atomic(path, data)
            paths.append(path)
        item.images += paths
        entry["images"] = [path.name for path in paths]
        return entry
    path = folder / f"{stem}.npy"
    write_bytes_atomic(path, _npy(tensor.array))
    entry["file"] = path.name
    if tensor.array.size <= INLINE_VALUES:
        entry["data"] = _plain(tensor.array.ravel().tolist())
    return entry


def _npy(array: np.ndarray) -> bytes:
    """``array`` as ``.npy`` bytes, without pickle (text as fixed-width bytes)."""
    if array.dtype == np.object_:
        values = [v if isinstance(v, bytes) else str(v).encode() for v in array.flat]
        array = np.array(values, dtype=np.bytes_).reshape(array.shape)
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _plain(values: list[Any]) -> list[Any]:
    return [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in values]


def _answer(payload: CapturedPayload, folder: Path) -> tuple[dict[str, Any], str]:
    """Write the decoded answer; its record.json entry and a summary."""
    body = payload.body()
    entry: dict[str, Any] = {**payload.as_json(), "bytes": len(body)}
    answer = decode_answer(body, payload.content_type)
    if not isinstance(answer, InferenceAnswer):
        name = "response.json" if answer.is_json else "response.bin"
        write_bytes_atomic(folder / name, body)
        entry["file"] = name
        return entry, f"answer {payload.content_type} ({len(body)} bytes)"
    write_text_atomic(folder / "response.json", json.dumps(answer_json(answer)) + "\n")
    entry["file"] = "response.json"
    entry["outputs"] = [
        {"name": o.name, "datatype": o.datatype, "shape": o.shape} for o in answer.outputs
    ]
    rows = classifier_rows(answer)
    if rows is not None:
        entry["top5"] = [_top5(row) for row in rows]
        firsts = ", ".join(f"#{top[0]['class']}" for top in entry["top5"])
        return entry, f"answer OUTPUT {list(rows.shape)}, top-1 {firsts}"
    shapes = ", ".join(f"{o.name} {o.shape}" for o in answer.outputs)
    return entry, f"answer {shapes}"


def _top5(row: np.ndarray) -> list[dict[str, Any]]:
    order = np.argsort(row, kind="stable")[::-1][:TOP_K]
    return [{"class": int(i), "probability": float(row[i])} for i in order]


def index_json(report: DecodeReport) -> dict[str, Any]:
    """``index.json``: every record's folder, summary and problem, and unreadable lines."""
    return {
        "location": report.location,
        "records": [
            {
                "eventId": item.record.event_id,
                "inferenceTime": item.record.inference_time,
                "source": item.record.source,
                "folder": item.folder.name,
                "images": [path.name for path in item.images],
                "summary": item.summary,
                "problem": item.problem,
            }
            for item in report.decoded
        ],
        "unreadable": report.unreadable,
    }
