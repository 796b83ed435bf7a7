"""Any model's tensors: .npy inputs, tritonclient's encoding, decoded and saved outputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tritonclient.http as triton_http

from tritonship.errors import UsageError
from tritonship.sagemaker.tensors import (
    InferenceAnswer,
    OtherAnswer,
    OutputTensor,
    answer_json,
    check_payload,
    decode_answer,
    decode_tensors,
    encode_tensors,
    load_array,
    read_body,
    read_inputs,
    save_outputs,
    tensor_json,
)
from tritonship.sagemaker.wire import (
    BINARY_CONTENT_TYPE,
    JSON_CONTENT_TYPE,
    MAX_PAYLOAD_BYTES,
    EncodedRequest,
    ResponseError,
    content_type_for,
    header_size,
)

ARRAYS = {
    "INT32": np.arange(-8, 8, dtype=np.int32).reshape(2, 8),
    "INT64": np.array([[2**40, -(2**40)]], dtype=np.int64),
    "UINT8": np.array([[0, 127, 255]], dtype=np.uint8),
    "FP32": np.linspace(-1, 1, 6, dtype=np.float32).reshape(3, 2),
    "FP16": np.array([0.5, -2.0, 1024.0], dtype=np.float16),
    "FP64": np.array([[np.pi]], dtype=np.float64),
    "BOOL": np.array([[True, False, True]]),
    "BYTES": np.array([[b"cat", b"dog"], [b"", b"caf\xc3\xa9"]], dtype=np.bytes_),
}


def identity_answer(request: EncodedRequest, model: str = "echo") -> tuple[bytes, str]:
    """What Triton answers for an identity model: each input back as an output, same bytes.

    A request and a response carry tensors the same way (KServe v2: ``data`` in JSON, or
    ``parameters.binary_data_size`` and the bytes after the JSON header, in input order), so
    renaming ``inputs`` to ``outputs`` turns the request into the identity model's answer
    (server r24.10 docs/protocol/extension_binary_data.md). tritonclient's parser then reads
    back what its encoder wrote.
    """
    size = header_size(request.content_type)
    header = json.loads(request.body if size is None else request.body[:size])
    answer = {"model_name": model, "model_version": "1", "outputs": header["inputs"]}
    text = json.dumps(answer).encode()
    tail = b"" if size is None else request.body[size:]
    return text + tail, content_type_for(len(text) if size is not None else None)


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_every_datatype_round_trips_through_tritonclient(binary: bool):
    request = encode_tensors(ARRAYS, binary=binary)
    assert (header_size(request.content_type) is not None) is binary
    header = json.loads(request.body[: header_size(request.content_type)] or request.body)
    assert [(t["name"], t["datatype"]) for t in header["inputs"]] == [(k, k) for k in ARRAYS]
    answer = decode_tensors(*identity_answer(request))
    assert (answer.model_name, answer.model_version) == ("echo", "1")
    for output in answer.outputs:
        sent = ARRAYS[output.name]
        assert output.datatype == output.name and output.shape == list(sent.shape)
        got = output.array
        if output.name == "BYTES" and not binary:  # JSON carries text: str comes back
            got = np.char.encode(got.astype(str), "utf-8")
        np.testing.assert_array_equal(got.astype(sent.dtype), sent)


def test_binary_inputs_travel_after_the_json_header_in_order():
    inputs = {"INPUT0": ARRAYS["INT32"], "INPUT1": ARRAYS["INT32"] * 2}
    request = encode_tensors(inputs)
    size = header_size(request.content_type)
    assert request.content_type == f"{BINARY_CONTENT_TYPE};json-header-size={size}"
    assert request.body[size:] == inputs["INPUT0"].tobytes() + inputs["INPUT1"].tobytes()


def test_requested_outputs_follow_the_format_and_none_means_all_in_binary():
    inputs = {"INPUT0": ARRAYS["INT32"]}
    as_json = json.loads(encode_tensors(inputs, ["OUTPUT1"], binary=False).body)
    assert as_json["outputs"] == [{"name": "OUTPUT1", "parameters": {"binary_data": False}}]
    everything = json.loads(encode_tensors(inputs, binary=False).body)
    assert "outputs" not in everything
    assert everything["parameters"] == {"binary_data_output": True}  # tritonclient's default


def test_a_json_request_of_bytes_that_are_not_utf8_says_use_binary():
    with pytest.raises(UsageError, match=r"input T: .*UTF-8.*\(try --format binary\)"):
        encode_tensors({"T": np.array([b"\xff\xfe"], dtype=np.bytes_)}, binary=False)


def test_a_dtype_without_a_triton_datatype_is_refused():
    with pytest.raises(UsageError, match="input Z: numpy dtype complex64 has no Triton datatype"):
        encode_tensors({"Z": np.zeros(2, np.complex64)})
    with pytest.raises(UsageError, match="no inputs"):
        encode_tensors({})


def test_outputs_as_json_and_saved_as_npy(tmp_path: Path):
    request = encode_tensors({"OUT": ARRAYS["FP32"], "TEXT": ARRAYS["BYTES"]})
    answer = decode_tensors(*identity_answer(request))
    plain = answer_json(answer)
    assert plain["model_name"] == "echo"
    out, text = plain["outputs"]
    assert out == tensor_json(answer.outputs[0])
    assert out["shape"] == [3, 2] and out["data"] == ARRAYS["FP32"].ravel().tolist()
    assert text["data"] == ["cat", "dog", "", "café"]
    paths = save_outputs(answer, tmp_path / "out")
    assert [p.name for p in paths] == ["OUT.npy", "TEXT.npy"]
    np.testing.assert_array_equal(load_array(paths[0]), ARRAYS["FP32"])
    np.testing.assert_array_equal(load_array(paths[1]), ARRAYS["BYTES"])  # no pickle needed


def test_bytes_that_are_not_text_show_as_base64():
    output = OutputTensor("B", "BYTES", [1], np.array([b"\xff\x00"], dtype=np.object_))
    assert tensor_json(output)["data"] == [{"base64": "/wA="}]


@pytest.mark.parametrize("name", ["../escape", "a/b", "..", ""])
def test_an_output_name_that_is_not_a_file_name_is_not_written(name: str, tmp_path: Path):
    answer = InferenceAnswer("m", "1", [OutputTensor(name, "INT32", [1], np.zeros(1, np.int32))])
    with pytest.raises(ResponseError, match="not a file name"):
        save_outputs(answer, tmp_path / "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


# --- answers that are not inference responses -------------------------------------------------


def test_answers_that_are_not_tensors_come_back_as_they_are():
    listing = decode_answer(b'{"models": ["a"]}', "application/json")
    assert isinstance(listing, OtherAnswer) and listing.is_json
    assert listing.value == {"models": ["a"]}
    text = decode_answer(b"1,2,3\n", "text/csv")
    assert isinstance(text, OtherAnswer) and not text.is_json and text.body == b"1,2,3\n"
    broken = decode_answer(b"{oops", "application/json")
    assert isinstance(broken, OtherAnswer) and not broken.is_json


def test_a_broken_inference_response_is_an_error():
    with pytest.raises(ResponseError, match="cannot decode"):
        decode_answer(b'{"outputs": [{"name": "X"}]}', JSON_CONTENT_TYPE)
    with pytest.raises(ResponseError, match="exceeds"):
        decode_answer(b"{}", f"{BINARY_CONTENT_TYPE};json-header-size=99")


# --- inputs from files ----------------------------------------------------------------------


def test_inputs_load_in_order_and_text_becomes_utf8(tmp_path: Path):
    np.save(tmp_path / "a.npy", ARRAYS["INT32"])
    np.save(tmp_path / "t.npy", np.array(["café", "tea"]))
    inputs = read_inputs([f"INPUT0={tmp_path / 'a.npy'}", f"TEXT = {tmp_path / 't.npy'}"])
    assert list(inputs) == ["INPUT0", "TEXT"]
    assert inputs["TEXT"].tolist() == ["café".encode(), b"tea"]


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("INPUT0", "expected NAME=FILE.npy"),
        ("=a.npy", "expected NAME=FILE.npy"),
        ("INPUT0=", "expected NAME=FILE.npy"),
        ("INPUT0={tmp}/missing.npy", "cannot read .*missing.npy"),
        ("INPUT0={tmp}/objects.npy", "pickled object array"),
        ("INPUT0={tmp}/text.txt", "is not a .npy file"),
        ("INPUT0={tmp}/both.npz", "is an .npz archive"),
    ],
)
def test_bad_inputs_are_one_line_usage_errors(spec: str, match: str, tmp_path: Path):
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    (tmp_path / "text.txt").write_text("1 2 3")
    np.savez(tmp_path / "both.npz", a=np.zeros(1), b=np.ones(1))
    with pytest.raises(UsageError, match=match) as info:
        read_inputs([spec.format(tmp=tmp_path)])
    assert "\n" not in str(info.value)


def test_an_input_named_twice_is_refused(tmp_path: Path):
    np.save(tmp_path / "a.npy", np.zeros(1))
    with pytest.raises(UsageError, match="INPUT0 is given twice"):
        read_inputs([f"INPUT0={tmp_path / 'a.npy'}"] * 2)


def test_a_prepared_body_keeps_its_bytes_and_type(tmp_path: Path):
    request = encode_tensors({"INPUT0": ARRAYS["INT32"]})
    (tmp_path / "body.bin").write_bytes(request.body)
    again = read_body(tmp_path / "body.bin", request.content_type)
    assert again == request
    (tmp_path / "body.json").write_text('{"inputs": []}')
    assert read_body(tmp_path / "body.json").content_type == JSON_CONTENT_TYPE


@pytest.mark.parametrize(
    ("content_type", "match"),
    [
        (BINARY_CONTENT_TYPE, "has no json-header-size=N"),
        (f"{BINARY_CONTENT_TYPE};json-header-size=x", "has no json-header-size=N"),
        (f"{BINARY_CONTENT_TYPE};json-header-size=999", "declares a 999-byte JSON header"),
    ],
)
def test_a_body_its_content_type_cannot_describe_is_refused(content_type, match, tmp_path):
    (tmp_path / "body.bin").write_bytes(b"{}")
    with pytest.raises(UsageError, match=match):
        read_body(tmp_path / "body.bin", content_type)


def test_a_body_over_sagemakers_limit_is_refused_before_sending():
    small = EncodedRequest(b"x" * MAX_PAYLOAD_BYTES, JSON_CONTENT_TYPE)
    assert check_payload(small) is small
    with pytest.raises(UsageError, match="over SageMaker's 6291456-byte InvokeEndpoint limit"):
        check_payload(EncodedRequest(b"x" * (MAX_PAYLOAD_BYTES + 1), JSON_CONTENT_TYPE))


def test_tritonclient_reads_our_json_request_as_its_own():
    """Our JSON request is exactly what tritonclient's own client would post."""
    tensor = triton_http.InferInput("INPUT0", [2, 8], "INT32")
    tensor.set_data_from_numpy(ARRAYS["INT32"], binary_data=False)
    output = triton_http.InferRequestedOutput("OUTPUT0", binary_data=False)
    body, _ = triton_http.InferenceServerClient.generate_request_body([tensor], outputs=[output])
    ours = encode_tensors({"INPUT0": ARRAYS["INT32"]}, ["OUTPUT0"], binary=False)
    assert ours == EncodedRequest(body, JSON_CONTENT_TYPE)
