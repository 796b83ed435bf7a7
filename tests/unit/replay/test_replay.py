"""``tritonship replay`` against stand-ins of the ensemble, and the comparison behind it.

Two stand-ins (tests/support/triton_stub.py) answer identically unless one shifts its
rows (a "broken build") or fails; the records come from the local capture writer, in
SageMaker's layout. tests/integration/test_production_traffic.py runs the same loop
against the real TensorFlow and ONNX builds.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.support.triton_stub import answer, rows_for, triton_stub
from tritonship.cli import main
from tritonship.local.capture import CaptureSettings, CaptureWriter, exchange
from tritonship.sagemaker.agreement import Tolerance, compare_answers, compare_rows, compare_tensors
from tritonship.sagemaker.tensors import InferenceAnswer, OutputTensor
from tritonship.sagemaker.wire import encode_raw, encode_request
from tritonship.samples import PHOTOS, photo_jpeg


def captured(folder: Path, with_answers: bool = True) -> list[str]:
    """Capture one request per photo (binary, JSON and raw in turn); their eventIds."""
    modes = ("Input", "Output") if with_answers else ("Input",)
    writer = CaptureWriter(CaptureSettings(folder, "demo", "AllTraffic", modes=modes))
    events = []
    for number, name in enumerate(PHOTOS):
        photo = photo_jpeg(name)
        request = [
            encode_request([photo], binary=True),
            encode_request([photo], binary=False),
            encode_raw(photo),
        ][number % 3]
        body, content_type = answer(rows_for([photo]), binary=number % 3 != 1)
        call = exchange(request.body, request.content_type, body, content_type)
        writer.capture(call)
        events.append(call.event_id)
    writer.close()
    return events


def replay_cli(capture: Path, out: Path, *args: str) -> tuple[int, dict]:
    code = main(["replay", str(capture), "--out", str(out), "--no-results", "--quiet", *args])
    return code, json.loads((out / "replay.json").read_text())


def test_two_agreeing_targets(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    captured(tmp_path / "capture")
    with triton_stub() as a, triton_stub() as b:
        code, report = replay_cli(
            tmp_path / "capture",
            tmp_path / "out",
            "--url",
            a.url,
            "--against",
            b.url,
            "--labels",
            "TF,ONNX",
        )
    assert code == 0
    summary = report["summary"]
    assert (summary["requests"], summary["agreeing"], summary["disagreeing"]) == (4, 4, 0)
    assert summary["top1_equal_rows"] == summary["rows"] == 4
    assert summary["mean_top5_overlap"] == 5.0 and summary["max_abs_diff"] == 0.0
    assert [t["label"] for t in report["targets"]] == ["TF", "ONNX"]
    markdown = (tmp_path / "out" / "replay.md").read_text()
    assert markdown.startswith("# tritonship replay: TF vs ONNX")
    assert "## Agreement: all agree" in markdown
    assert "| TF | 4 | 0 |" in markdown and "| ONNX | 4 | 0 |" in markdown
    assert "Requests that disagree" not in markdown
    assert capsys.readouterr().out.startswith("# tritonship replay")


def test_a_broken_build_is_caught_with_the_requests_listed(tmp_path: Path) -> None:
    events = captured(tmp_path / "capture")
    with triton_stub() as good, triton_stub(shift=0.01) as broken:
        code, report = replay_cli(
            tmp_path / "capture", tmp_path / "out", "--url", good.url, "--against", broken.url
        )
    assert code == 1
    assert report["summary"]["disagreeing"] == 4 and report["summary"]["ok"] is False
    assert {r["eventId"] for r in report["requests"] if r["agree"] is False} == set(events)
    markdown = (tmp_path / "out" / "replay.md").read_text()
    assert "## Agreement: DISAGREEMENT" in markdown
    assert "## Requests that disagree (4)" in markdown
    for event in events:
        assert f"| {event} |" in markdown
    assert "probabilities differ beyond rtol 1e-05, atol 1e-08" in markdown


def test_one_target_is_compared_with_the_captured_answers(tmp_path: Path) -> None:
    captured(tmp_path / "capture")
    with triton_stub() as a:
        code, report = replay_cli(tmp_path / "capture", tmp_path / "out", "--url", a.url)
    assert code == 0 and report["reference"] == "captured"
    assert report["summary"]["agreeing"] == 4
    with triton_stub(shift=5.0) as a:
        code, report = replay_cli(tmp_path / "capture", tmp_path / "out2", "--url", a.url)
    assert code == 1
    assert "top-1 differs" in report["requests"][0]["agreement"]["detail"]
    captured(tmp_path / "inputs-only", with_answers=False)
    with triton_stub() as a:
        code, report = replay_cli(tmp_path / "inputs-only", tmp_path / "out3", "--url", a.url)
    assert code == 1 and report["summary"]["skipped"] == 4
    assert "no answer was captured" in (tmp_path / "out3" / "replay.md").read_text()


def test_a_failing_target_is_reported(tmp_path: Path) -> None:
    captured(tmp_path / "capture")
    with triton_stub() as a, triton_stub(fail=True) as b:
        code, report = replay_cli(
            tmp_path / "capture", tmp_path / "out", "--url", a.url, "--against", b.url
        )
    assert code == 1 and report["summary"]["failed"] == 4
    markdown = (tmp_path / "out" / "replay.md").read_text()
    assert "## Requests a target failed (4)" in markdown and "answered 500" in markdown


def test_the_stamped_copy_goes_where_results_says(tmp_path: Path) -> None:
    captured(tmp_path / "capture")
    with triton_stub() as a:
        main(
            [
                "replay",
                str(tmp_path / "capture"),
                "--url",
                a.url,
                "--quiet",
                "--out",
                str(tmp_path / "out"),
                "--results",
                str(tmp_path / "results"),
            ]
        )
    (stamped,) = (tmp_path / "results").glob("replay-*.md")
    lines = stamped.read_text().splitlines()
    assert lines[0].startswith("# tritonship replay") and lines[2] == "| measured on | |"


def test_nothing_to_replay_is_a_usage_error(tmp_path: Path, capsys) -> None:
    (tmp_path / "empty").mkdir()
    assert main(["replay", str(tmp_path / "empty"), "--url", "http://127.0.0.1:9"]) == 2
    assert "holds no captured request" in capsys.readouterr().err
    assert main(["replay", str(tmp_path / "empty")]) == 2


# --- the comparison ---------------------------------------------------------------------------


def test_rows_agree_within_float_noise_and_not_beyond() -> None:
    rows = rows_for([b"a", b"b"])
    noisy = rows * (1 + 3.5e-7)
    assert compare_rows(rows, noisy, Tolerance()).agree
    shifted = rows.copy()
    shifted[1] *= 1 + 1e-3
    verdict = compare_rows(rows, shifted, Tolerance())
    assert not verdict.agree and verdict.top1_equal == 2
    assert verdict.detail.startswith("probabilities differ beyond")
    assert compare_rows(rows, shifted, Tolerance(rtol=1e-2)).agree
    swapped = rows[::-1].copy()
    verdict = compare_rows(rows, swapped, Tolerance())
    assert not verdict.agree and "top-1 differs in 2 of 2 rows" in verdict.detail


def test_any_model_s_outputs_compare_by_name_and_type() -> None:
    def answer_of(**outputs: np.ndarray) -> InferenceAnswer:
        return InferenceAnswer(
            "m", "1", [OutputTensor(k, "X", list(v.shape), v) for k, v in outputs.items()]
        )

    ints = np.array([1, 2, 3])
    floats = np.array([0.5, 1.5], dtype=np.float32)
    assert compare_tensors(
        answer_of(A=ints, B=floats), answer_of(B=floats, A=ints), Tolerance()
    ).agree
    verdict = compare_tensors(answer_of(A=ints), answer_of(A=ints + 1), Tolerance())
    assert not verdict.agree and verdict.detail == "A: values differ"
    verdict = compare_tensors(answer_of(A=ints), answer_of(C=ints), Tolerance())
    assert verdict.detail == "outputs differ: A vs C"
    close = compare_tensors(answer_of(B=floats), answer_of(B=floats + 1e-9), Tolerance())
    assert close.agree and close.kind == "tensors"


def test_answers_that_are_not_inference_responses_compare_as_bytes() -> None:
    assert compare_answers((b"ok", "text/plain"), (b"ok", "text/plain")).agree
    verdict = compare_answers((b"ok", "text/plain"), answer(rows_for([b"x"]), True))
    assert not verdict.agree and verdict.kind == "bytes"
