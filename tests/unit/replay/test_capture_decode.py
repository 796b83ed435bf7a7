"""SageMaker's data capture records, written and read back: ``tritonship capture decode``.

The records are built as AWS's guide "Capture data from real-time endpoint" shows them
(awsdocs/amazon-sagemaker-developer-guide doc_source/model-monitor-data-capture-endpoint.md:
``captureData.endpointInput/endpointOutput`` with observedContentType, mode, data and
encoding; ``eventMetadata`` eventId and inferenceTime; ``eventVersion`` "0"; objects under
``<prefix>/<endpoint>/<variant>/yyyy/mm/dd/hh/<file>.jsonl``), with a Triton binary+json
payload as triton-inference-server/client pull request #269 quotes one: its
observedContentType carries ``json-header-size``, its encoding is BASE64.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
import tritonclient.http as triton_http

from tritonship.cli import main
from tritonship.sagemaker.capture import (
    CaptureError,
    Exchange,
    capture_record,
    encoding_for,
    object_key,
    parse_record,
    read_folder,
    variant_of,
)
from tritonship.sagemaker.request_body import RequestDecodeError, decode_request, images_in
from tritonship.sagemaker.wire import RAW_CONTENT_TYPE, content_type_for, encode_raw, encode_request
from tritonship.samples import encode, photo_array, photo_jpeg

#: The CSV record of AWS's guide, verbatim (one line, as the JSON Lines file holds it).
GUIDE_CSV_RECORD = (
    '{"captureData":{"endpointInput":{"observedContentType":"text/csv","mode":"INPUT",'
    '"data":"69,0,153.7,109,194.0,105,256.1,114,14.1,6,1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,'
    '0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,1,0,1,0,1,0\\n",'
    '"encoding":"CSV"},"endpointOutput":{"observedContentType":"text/csv; charset=utf-8",'
    '"mode":"OUTPUT","data":"0.0254181120544672","encoding":"CSV"}},'
    '"eventMetadata":{"eventId":"aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",'
    '"inferenceTime":"2022-02-14T17:25:49Z"},"eventVersion":"0"}'
)
EVENT = "4651a1bf-4b00-4248-a309-4a18b11e4277"


def triton_answer(rows: np.ndarray, binary: bool = True) -> tuple[bytes, str]:
    """A Triton answer of OUTPUT ``rows`` (FP32), binary+json or JSON."""
    output = {"name": "OUTPUT", "datatype": "FP32", "shape": list(rows.shape)}
    if not binary:
        header = {
            "model_name": "ensemble_dali_inception",
            "outputs": [{**output, "data": rows.ravel().tolist()}],
        }
        return json.dumps(header).encode(), "application/json"
    data = rows.astype(np.float32).tobytes()
    output["parameters"] = {"binary_data_size": len(data)}
    header = json.dumps({"model_name": "ensemble_dali_inception", "outputs": [output]}).encode()
    return header + data, content_type_for(len(header))


def guide_record(request: bytes, request_type: str, answer: tuple[bytes, str] | None) -> str:
    """One capture line exactly in the guide's shape, both payloads base64 (SageMaker's default)."""
    data = {
        "endpointInput": {
            "observedContentType": request_type,
            "mode": "INPUT",
            "data": base64.b64encode(request).decode(),
            "encoding": "BASE64",
        }
    }
    if answer is not None:
        data["endpointOutput"] = {
            "observedContentType": answer[1],
            "mode": "OUTPUT",
            "data": base64.b64encode(answer[0]).decode(),
            "encoding": "BASE64",
        }
    record = {
        "captureData": data,
        "eventMetadata": {"eventId": EVENT, "inferenceTime": "2021-09-27T03:47:25Z"},
        "eventVersion": "0",
    }
    return json.dumps(record)


def write_capture(root: Path, *lines: str) -> Path:
    """The lines as one capture file in SageMaker's layout under ``root``."""
    path = root / "demo" / "AllTraffic" / "2021" / "09" / "27" / "03" / "47-25-123-abc.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def decode(root: Path, out: Path, capsys: pytest.CaptureFixture) -> tuple[int, str]:
    code = main(["capture", "decode", str(root), "--out", str(out)])
    return code, capsys.readouterr().out


def test_a_base64_binary_json_capture_gives_back_the_original_jpeg(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    photo = photo_jpeg("chelsea")
    request = encode_request([photo], binary=True)
    assert request.content_type.startswith("application/vnd.sagemaker-triton.binary+json;")
    answer = triton_answer(np.full((1, 1001), 1 / 1001, dtype=np.float32))
    write_capture(tmp_path / "capture", guide_record(request.body, request.content_type, answer))
    code, out = decode(tmp_path / "capture", tmp_path / "out", capsys)
    assert code == 0, out
    folder = tmp_path / "out" / f"0001-{EVENT}"
    assert (folder / "INPUT-0.jpg").read_bytes() == photo
    assert (folder / "request.body").read_bytes() == request.body
    record = json.loads((folder / "record.json").read_text())
    assert record["variant"] == "AllTraffic"
    assert record["request"]["encoding"] == "BASE64"
    assert record["request"]["kind"] == "binary+json"
    assert record["request"]["inputs"][0]["images"] == ["INPUT-0.jpg"]
    assert record["answer"]["outputs"] == [
        {"name": "OUTPUT", "datatype": "FP32", "shape": [1, 1001]}
    ]
    response = json.loads((folder / "response.json").read_text())
    assert response["outputs"][0]["shape"] == [1, 1001]
    assert "1 image(s)" in out and "decoded 1 record(s)" in out


def test_a_padded_batch_gives_back_every_image_byte_for_byte(tmp_path: Path, capsys) -> None:
    photos = [photo_jpeg("coffee"), photo_jpeg("rocket"), encode(photo_array("chelsea"), "PNG")]
    request = encode_request(photos, binary=True)
    write_capture(tmp_path / "c", guide_record(request.body, request.content_type, None))
    code, _ = decode(tmp_path / "c", tmp_path / "out", capsys)
    folder = tmp_path / "out" / f"0001-{EVENT}"
    assert code == 0
    assert [
        (folder / f"INPUT-{i}{ext}").read_bytes() for i, ext in enumerate([".jpg", ".jpg", ".png"])
    ] == photos


def test_raw_and_json_requests_decode_too(tmp_path: Path) -> None:
    photo = photo_jpeg("astronaut")
    raw = decode_request(encode_raw(photo).body, RAW_CONTENT_TYPE)
    assert raw.kind == "raw" and images_in(raw.inputs[0]) == [(photo, ".jpg")]
    plain = encode_request([photo], binary=False)
    decoded = decode_request(plain.body, plain.content_type)
    assert decoded.kind == "json" and images_in(decoded.inputs[0]) == [(photo, ".jpg")]


def test_json_records_are_text_and_unmarked_ones_are_read_either_way(tmp_path: Path) -> None:
    photo = photo_jpeg("rocket")
    plain = encode_request([photo], binary=False)
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    record = capture_record(
        Exchange(plain.body, plain.content_type, b"{}", "application/json", "e1", when)
    )
    assert record["captureData"]["endpointInput"]["encoding"] == "JSON"
    assert record["captureData"]["endpointInput"]["data"] == plain.body.decode()
    assert record["eventMetadata"] == {"eventId": "e1", "inferenceTime": "2026-01-02T03:04:05Z"}
    parsed = parse_record(json.dumps(record), "x:1")
    assert parsed.request.body() == plain.body
    binary = encode_request([photo], binary=True)
    unmarked = json.loads(guide_record(binary.body, binary.content_type, None))
    del unmarked["captureData"]["endpointInput"]["encoding"]
    assert parse_record(json.dumps(unmarked), "x:2").request.body() == binary.body
    text = {"observedContentType": "application/json", "mode": "INPUT", "data": '{"a": 1}'}
    unmarked["captureData"]["endpointInput"] = text
    assert parse_record(json.dumps(unmarked), "x:3").request.body() == b'{"a": 1}'


def test_the_guide_s_csv_record_reads_as_text() -> None:
    record = parse_record(GUIDE_CSV_RECORD, "guide:1")
    assert record.event_id == "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
    assert record.inference_time == "2022-02-14T17:25:49Z"
    assert record.request.body().startswith(b"69,0,153.7,")
    assert record.answer.content_type == "text/csv; charset=utf-8"
    assert record.answer.body() == b"0.0254181120544672"


def test_binary_json_captured_as_text_is_reported_not_guessed(tmp_path: Path, capsys) -> None:
    """A binary+json body kept as JSON text loses its binary tail: decode says so."""
    request = encode_request([photo_jpeg("coffee")], binary=True)
    record = json.loads(guide_record(request.body, request.content_type, None))
    header = int(request.content_type.rsplit("=", 1)[1])
    mangled = request.body[:header].decode() + request.body[header:].decode("latin-1")
    record["captureData"]["endpointInput"].update(data=mangled, encoding="JSON")
    write_capture(tmp_path / "c", json.dumps(record), "not json at all")
    code, out = decode(tmp_path / "c", tmp_path / "out", capsys)
    assert code == 1
    assert "FAILED" in out and "not captured byte for byte" in out
    assert "1 failed, 1 unreadable line(s)" in out


def test_payload_encodings_follow_the_content_type_header_config() -> None:
    assert encoding_for("application/json") == "JSON"
    assert encoding_for("application/json; charset=utf-8") == "JSON"
    assert encoding_for(content_type_for(120)) == "BASE64"
    assert encoding_for(RAW_CONTENT_TYPE) == "BASE64"
    assert encoding_for("text/csv", csv_types=("text/csv",)) == "CSV"


def test_object_keys_follow_the_guide_s_layout() -> None:
    when = datetime(2026, 11, 27, 5, 59, 6, tzinfo=timezone.utc)
    key = object_key("s3-prefix/capture/", "demo", "AllTraffic", when, "59-06-abc")
    assert key == "s3-prefix/capture/demo/AllTraffic/2026/11/27/05/59-06-abc.jsonl"
    assert variant_of(key) == "AllTraffic"
    assert variant_of("somewhere/else.jsonl") is None


def test_a_folder_without_captures_and_bad_records(tmp_path: Path) -> None:
    with pytest.raises(CaptureError, match="does not exist"):
        read_folder(tmp_path / "nowhere")
    bad = json.loads(guide_record(b"x", "application/octet-stream", None))
    bad["captureData"]["endpointInput"]["data"] = "not base64!"
    write_capture(tmp_path / "c", json.dumps(bad))
    found = read_folder(tmp_path / "c")
    with pytest.raises(CaptureError, match="marked BASE64 is not base64"):
        found.records[0].request.body()
    header = b'{"inputs":[{"name":"A","datatype":"UINT8","shape":[9],'
    header += b'"parameters":{"binary_data_size":9}}]}'
    with pytest.raises(RequestDecodeError, match="declares 9 binary bytes"):
        decode_request(header + b"short", content_type_for(len(header)))


def test_decode_reads_back_what_tritonclient_encodes_for_any_datatype() -> None:
    inputs = []
    arrays = {
        "F": np.arange(6, dtype=np.float32).reshape(2, 3),
        "I": np.array([[1, -2]], dtype=np.int64),
        "S": np.array([b"ab", b"\xff"], dtype=np.object_),
    }
    for name, array in arrays.items():
        datatype = {"F": "FP32", "I": "INT64", "S": "BYTES"}[name]
        tensor = triton_http.InferInput(name, list(array.shape), datatype)
        tensor.set_data_from_numpy(array, binary_data=True)
        inputs.append(tensor)
    body, size = triton_http.InferenceServerClient.generate_request_body(inputs)
    decoded = decode_request(body, content_type_for(size))
    for tensor in decoded.inputs:
        np.testing.assert_array_equal(tensor.array, arrays[tensor.name])
        assert images_in(tensor) is None


def test_decode_and_replay_read_an_s3_prefix(aws_env: str, tmp_path: Path, capsys) -> None:
    """Captures where SageMaker writes them: objects under the prefix, in moto's S3."""
    import boto3

    from tests.support.triton_stub import triton_stub

    photo = photo_jpeg("chelsea")
    request = encode_request([photo], binary=True)
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="captures")
    key = "tritonship/capture/demo/AllTraffic/2021/09/27/03/47-25-123-abc.jsonl"
    line = guide_record(request.body, request.content_type, None)
    s3.put_object(Bucket="captures", Key=key, Body=(line + "\n").encode())
    s3.put_object(Bucket="captures", Key="tritonship/capture/notes.txt", Body=b"not a capture")
    code, out = decode("s3://captures/tritonship/capture", tmp_path / "out", capsys)
    assert code == 0, out
    assert (tmp_path / "out" / f"0001-{EVENT}" / "INPUT-0.jpg").read_bytes() == photo
    record = json.loads((tmp_path / "out" / f"0001-{EVENT}" / "record.json").read_text())
    assert record["source"] == f"s3://captures/{key}:1" and record["variant"] == "AllTraffic"
    with triton_stub() as a, triton_stub() as b:
        code = main(
            ["replay", "s3://captures/tritonship", "--url", a.url, "--against", b.url]
            + ["--out", str(tmp_path / "replay"), "--no-results", "--quiet", "--json"]
        )
    assert code == 0 and json.loads(capsys.readouterr().out)["agreeing"] == 1
    assert a.seen == [(request.body, request.content_type)]
