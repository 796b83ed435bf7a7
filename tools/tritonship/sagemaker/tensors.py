"""Any model's tensors on ``/invocations``: numpy arrays in, decoded outputs back.

The images of :mod:`~tritonship.sagemaker.wire` are one model's contract; this module
speaks for every other model. Inputs come from ``.npy`` files, each sent under the name
the user gives it with the Triton datatype of its numpy dtype
(``tritonclient.utils.np_to_triton_dtype``); tritonclient encodes the request
(``InferInput``, ``generate_request_body``) and parses the answer
(``parse_response_body``), so the bytes are the ones Triton's own client sends and reads.

Text tensors (Triton's BYTES) load from fixed-width bytes (``S``) or str (``U``, sent as
UTF-8) arrays: pickled object arrays are refused, since loading a pickle runs code.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tritonclient.http as triton_http
from tritonclient.utils import InferenceServerException, np_to_triton_dtype

from tritonship.errors import UsageError
from tritonship.fileio import write_bytes_atomic
from tritonship.sagemaker.wire import (
    BINARY_CONTENT_TYPE,
    MAX_PAYLOAD_BYTES,
    EncodedRequest,
    ResponseError,
    content_type_for,
    header_size,
)

#: What ``--body`` is sent as when no ``--content-type`` is given: Triton's SageMaker
#: frontend parses any body that is not binary+json as JSON (REFERENCE section 3).
DEFAULT_BODY_TYPE = "application/json"


@dataclass(frozen=True)
class OutputTensor:
    """One decoded output: its name, Triton datatype, shape and values."""

    name: str
    datatype: str
    shape: list[int]
    array: np.ndarray


@dataclass(frozen=True)
class InferenceAnswer:
    """A decoded KServe v2 inference response."""

    model_name: str | None
    model_version: str | None
    outputs: list[OutputTensor]


@dataclass(frozen=True)
class OtherAnswer:
    """An answer that is not an inference response: JSON (``value``) or anything else."""

    content_type: str | None
    body: bytes
    value: Any = None
    is_json: bool = False


# --- inputs ---------------------------------------------------------------------------------


def parse_input(spec: str) -> tuple[str, Path]:
    """``NAME=FILE.npy`` -> ``(NAME, Path(FILE.npy))``."""
    name, sep, file = spec.partition("=")
    if not sep or not name.strip() or not file.strip():
        raise UsageError(
            f"--input {spec!r}: expected NAME=FILE.npy", hint="e.g. --input INPUT0=a.npy"
        )
    return name.strip(), Path(file.strip())


def _holds_objects(path: Path) -> bool:
    """Whether ``path`` is a ``.npy`` file of Python objects (its header says so)."""
    with path.open("rb") as handle:
        if handle.read(len(np.lib.format.MAGIC_PREFIX)) != np.lib.format.MAGIC_PREFIX:
            return False
        handle.seek(0)
        npy = np.lib.format
        try:
            version = npy.read_magic(handle)
            read = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
            _, _, dtype = read(handle)
        except ValueError:  # a header np.load reads itself, or refuses in its own words
            return False
    return bool(dtype.hasobject)


def load_array(path: Path) -> np.ndarray:
    """A ``.npy`` file's array (str arrays as UTF-8 bytes); one-line errors."""
    try:
        if _holds_objects(path):
            raise UsageError(
                f"{path} holds a pickled object array, which tritonship does not load",
                hint="save text as bytes or str: np.save(f, np.array(values, dtype=np.bytes_))",
            )
        array = np.load(path, allow_pickle=False)
    except OSError as err:
        raise UsageError(f"cannot read {path}: {err.strerror or err}") from err
    except ValueError as err:  # not .npy/.npz: "Cannot load file containing pickled data"
        raise UsageError(f"{path} is not a .npy file: {err}", hint="write it with np.save") from err
    if not isinstance(array, np.ndarray):  # np.load opens an .npz as an archive
        raise UsageError(f"{path} is an .npz archive", hint="give one .npy file per input")
    if array.dtype.kind == "U":
        return np.char.encode(array, "utf-8")
    return array


def read_inputs(specs: Sequence[str]) -> dict[str, np.ndarray]:
    """``NAME=FILE.npy`` specs -> ``{NAME: array}`` in the order given (names unique)."""
    inputs: dict[str, np.ndarray] = {}
    for spec in specs:
        name, path = parse_input(spec)
        if name in inputs:
            raise UsageError(f"--input {name} is given twice", hint="name each input once")
        inputs[name] = load_array(path)
    return inputs


def triton_datatype(name: str, array: np.ndarray) -> str:
    """The Triton datatype of ``array``'s dtype, or a UsageError naming the input."""
    datatype = np_to_triton_dtype(array.dtype)
    if datatype is None:
        raise UsageError(
            f"input {name}: numpy dtype {array.dtype} has no Triton datatype",
            hint="use bool, (u)int8-64, float16/32/64 or bytes",
        )
    return datatype


def _infer_input(name: str, array: np.ndarray, binary: bool) -> triton_http.InferInput:
    """One input, its data set by tritonclient (binary or JSON)."""
    tensor = triton_http.InferInput(name, list(array.shape), triton_datatype(name, array))
    try:
        tensor.set_data_from_numpy(array, binary_data=binary)
    except InferenceServerException as err:  # e.g. bytes that are not UTF-8, in JSON
        raise UsageError(f"input {name}: {err.message()}", hint="try --format binary") from err
    return tensor


def encode_tensors(
    inputs: Mapping[str, np.ndarray], outputs: Sequence[str] = (), binary: bool = True
) -> EncodedRequest:
    """A KServe v2 request for ``inputs`` (binary+json or plain JSON).

    ``outputs`` names the outputs to return, each in the request's format; with none,
    tritonclient asks for every output in binary (``binary_data_output``), so even a JSON
    request then gets a binary+json answer.
    """
    if not inputs:
        raise UsageError("no inputs to send", hint="add --input NAME=FILE.npy")
    tensors = [_infer_input(name, array, binary) for name, array in inputs.items()]
    requested = [triton_http.InferRequestedOutput(name, binary_data=binary) for name in outputs]
    body, json_size = triton_http.InferenceServerClient.generate_request_body(
        tensors, outputs=requested or None
    )
    return EncodedRequest(body, content_type_for(json_size))


def read_body(path: Path, content_type: str | None = None) -> EncodedRequest:
    """A prepared request body, sent as is (``content_type`` default: JSON)."""
    try:
        body = path.read_bytes()
    except OSError as err:
        raise UsageError(f"cannot read {path}: {err.strerror}") from err
    content_type = content_type or DEFAULT_BODY_TYPE
    try:
        size = header_size(content_type)
    except ResponseError as err:
        raise UsageError(
            f"--content-type {content_type!r} has no json-header-size=N",
            hint=f"binary+json bodies need it: '{BINARY_CONTENT_TYPE};json-header-size=N'",
        ) from err
    if size is not None and size > len(body):
        raise UsageError(
            f"--content-type declares a {size}-byte JSON header, but {path} has {len(body)} bytes",
            hint="json-header-size=N counts the JSON bytes at the start of the body",
        )
    return EncodedRequest(body, content_type)


def check_payload(
    request: EncodedRequest, limit: int = MAX_PAYLOAD_BYTES, api: str = "InvokeEndpoint"
) -> EncodedRequest:
    """``request`` if SageMaker would take its body (InvokeEndpoint's 6 MB limit)."""
    if len(request.body) > limit:
        hint = "send fewer rows per request"
        if limit == MAX_PAYLOAD_BYTES:
            hint += ", or use an asynchronous endpoint (invoke --async: up to 1 GB)"
        raise UsageError(
            f"the request body is {len(request.body)} bytes, over SageMaker's "
            f"{limit}-byte {api} limit",
            hint=hint,
        )
    return request


# --- answers --------------------------------------------------------------------------------


def is_json(content_type: str | None) -> bool:
    """Whether ``content_type`` is JSON (``application/json`` or a ``+json`` type)."""
    mime = (content_type or "").split(";", 1)[0].strip().lower()
    return mime == "application/json" or mime.endswith("+json")


def decode_tensors(body: bytes, content_type: str | None) -> InferenceAnswer:
    """Decode an inference response (binary+json or JSON) with tritonclient."""
    size = header_size(content_type)
    if size is not None and size > len(body):
        raise ResponseError(f"json-header-size={size} exceeds the {len(body)}-byte body")
    try:
        result = triton_http.InferenceServerClient.parse_response_body(body, header_length=size)
        response = result.get_response()
        outputs = [
            OutputTensor(
                out["name"], out["datatype"], list(out["shape"]), result.as_numpy(out["name"])
            )
            for out in response["outputs"]
        ]
    except Exception as err:  # tritonclient raises plain errors for malformed bodies
        raise ResponseError(f"cannot decode the response: {err}") from err
    version = response.get("model_version")
    return InferenceAnswer(response.get("model_name"), version and str(version), outputs)


def decode_answer(body: bytes, content_type: str | None) -> InferenceAnswer | OtherAnswer:
    """An inference response when the answer is one, else the JSON or raw answer."""
    if header_size(content_type) is not None:
        return decode_tensors(body, content_type)
    if not is_json(content_type):
        return OtherAnswer(content_type, body)
    try:
        value = json.loads(body)
    except ValueError:
        return OtherAnswer(content_type, body)
    if isinstance(value, dict) and "outputs" in value:
        return decode_tensors(body, content_type)
    return OtherAnswer(content_type, body, value, is_json=True)


def _plain(value: Any) -> Any:
    """A BYTES element as JSON: UTF-8 text, else ``{"base64": ...}``."""
    if not isinstance(value, bytes):
        return value
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        import base64

        return {"base64": base64.b64encode(value).decode("ascii")}


def tensor_json(output: OutputTensor) -> dict[str, Any]:
    """One output as KServe v2 JSON: name, datatype, shape and the flat (row-major) data."""
    data = [_plain(value) for value in output.array.ravel().tolist()]
    return {"name": output.name, "datatype": output.datatype, "shape": output.shape, "data": data}


def answer_json(answer: InferenceAnswer) -> dict[str, Any]:
    """The whole answer as JSON: model name and version, outputs."""
    return {
        "model_name": answer.model_name,
        "model_version": answer.model_version,
        "outputs": [tensor_json(output) for output in answer.outputs],
    }


def _savable(output: OutputTensor) -> np.ndarray:
    """The array as ``np.save`` can write it without pickle (BYTES as fixed-width bytes)."""
    if output.array.dtype != np.object_:
        return output.array
    values = [v if isinstance(v, bytes) else str(v).encode("utf-8") for v in output.array.flat]
    return np.array(values, dtype=np.bytes_).reshape(output.array.shape)


def _file_name(name: str, suffix: str) -> str:
    """``name + suffix`` when ``name`` is a plain file name (a server names outputs)."""
    if not name or name in (".", "..") or Path(name).name != name:
        raise ResponseError(f"the answer names an output {name!r}, which is not a file name")
    return f"{name}{suffix}"


def save_outputs(answer: InferenceAnswer, folder: Path) -> list[Path]:
    """Write each output as ``folder/NAME.npy`` (atomically); return the paths."""
    paths = []
    for output in answer.outputs:
        buffer = io.BytesIO()
        np.save(buffer, _savable(output), allow_pickle=False)
        path = folder / _file_name(output.name, ".npy")
        write_bytes_atomic(path, buffer.getvalue())
        paths.append(path)
    return paths


def save_other(answer: OtherAnswer, folder: Path) -> Path:
    """Write an answer that is not an inference response as ``response.json`` or ``.bin``."""
    path = folder / ("response.json" if answer.is_json else "response.bin")
    write_bytes_atomic(path, answer.body)
    return path
