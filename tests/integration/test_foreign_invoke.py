"""``invoke`` and ``bench`` on a model tritonship did not build: NVIDIA's ``sm_model``.

The repository (tests/support/foreign.py) is served natively through the library, named
the default model with the settings module's ``--env`` source, and driven through the CLI
(``cli.main``) with generic tensors and prepared bodies, as a user would. The answers and
the refusals are the real tritonserver's (its ONNX Runtime stand-in computes the sums).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import tritonclient.http as triton_http

from tests.support.foreign import add_sub_inputs, make_add_sub_repository
from tritonship import cli
from tritonship.local.engine import free_port
from tritonship.local.native import NativeEngine
from tritonship.sagemaker.settings import EnvSources, sagemaker_env
from tritonship.sagemaker.tensors import load_array


@dataclass(frozen=True)
class Foreign:
    """The served add/sub model, and two input files in ``files``."""

    url: str
    files: Path
    a: np.ndarray
    b: np.ndarray

    def inputs(self) -> list[str]:
        """``--input`` options for INPUT0 and INPUT1."""
        return [
            "--input",
            f"INPUT0={self.files / 'a.npy'}",
            "--input",
            f"INPUT1={self.files / 'b.npy'}",
        ]


@pytest.fixture(scope="module")
def foreign(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Foreign]:
    """sm_model served by the native engine for this module (always stopped)."""
    root = tmp_path_factory.mktemp("foreign")
    repo = make_add_sub_repository(root / "repo")
    sources = EnvSources(("SAGEMAKER_TRITON_DEFAULT_MODEL_NAME=sm_model",))
    env = sagemaker_env(sources, repo, environ={})
    a, b = add_sub_inputs(batch=3)
    np.save(root / "a.npy", a)
    np.save(root / "b.npy", b)
    engine = NativeEngine(repo, port=free_port(), sagemaker_env=env, run_dir=root / "run")
    with engine:
        yield Foreign(engine.url, root, a, b)


def invoke_json(foreign: Foreign, *argv: str, capsys) -> dict:
    """``tritonship invoke --url ... ARGV --json``: its printed JSON."""
    assert cli.main(["invoke", "--url", foreign.url, *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def outputs(printed: dict) -> dict[str, np.ndarray]:
    """The printed outputs as arrays of their shape."""
    return {
        out["name"]: np.array(out["data"], dtype=np.int32).reshape(out["shape"])
        for out in printed["outputs"]
    }


@pytest.mark.parametrize("fmt", ["binary", "json"])
def test_input_files_give_the_sums_and_differences(foreign: Foreign, fmt: str, capsys):
    printed = invoke_json(foreign, *foreign.inputs(), "--format", fmt, capsys=capsys)
    assert printed["model_name"] == "sm_model" and printed["model_version"] == "1"
    assert [out["datatype"] for out in printed["outputs"]] == ["INT32", "INT32"]
    got = outputs(printed)
    np.testing.assert_array_equal(got["OUTPUT0"], foreign.a + foreign.b)
    np.testing.assert_array_equal(got["OUTPUT1"], foreign.a - foreign.b)


def test_output_picks_what_comes_back(foreign: Foreign, capsys):
    printed = invoke_json(
        foreign, *foreign.inputs(), "--format", "json", "--output", "OUTPUT1", capsys=capsys
    )
    assert list(outputs(printed)) == ["OUTPUT1"]
    np.testing.assert_array_equal(outputs(printed)["OUTPUT1"], foreign.a - foreign.b)


def test_outputs_are_saved_as_npy_and_shown_as_a_table(foreign: Foreign, tmp_path, capsys):
    argv = ["invoke", "--url", foreign.url, *foreign.inputs(), "--save-outputs", str(tmp_path)]
    assert cli.main(argv) == 0
    captured = capsys.readouterr()
    assert "model sm_model version 1" in captured.out and "OUTPUT1" in captured.out
    assert f"wrote {tmp_path / 'OUTPUT0.npy'}" in captured.err
    np.testing.assert_array_equal(load_array(tmp_path / "OUTPUT0.npy"), foreign.a + foreign.b)
    np.testing.assert_array_equal(load_array(tmp_path / "OUTPUT1.npy"), foreign.a - foreign.b)


def test_prepared_bodies_binary_and_json(foreign: Foreign, tmp_path: Path, capsys):
    tensors = []
    for name, array in (("INPUT0", foreign.a), ("INPUT1", foreign.b)):
        tensor = triton_http.InferInput(name, list(array.shape), "INT32")
        tensors.append(tensor.set_data_from_numpy(array, binary_data=True))
    body, size = triton_http.InferenceServerClient.generate_request_body(tensors)
    (tmp_path / "body.bin").write_bytes(body)
    binary = f"application/vnd.sagemaker-triton.binary+json;json-header-size={size}"
    printed = invoke_json(
        foreign, "--body", str(tmp_path / "body.bin"), "--content-type", binary, capsys=capsys
    )
    np.testing.assert_array_equal(outputs(printed)["OUTPUT0"], foreign.a + foreign.b)
    request = {  # what a curl user writes: KServe v2 JSON, the default content type
        "inputs": [
            {"name": name, "datatype": "INT32", "shape": list(array.shape), "data": array.tolist()}
            for name, array in (("INPUT0", foreign.a), ("INPUT1", foreign.b))
        ]
    }
    (tmp_path / "body.json").write_text(json.dumps(request))
    printed = invoke_json(foreign, "--body", str(tmp_path / "body.json"), capsys=capsys)
    np.testing.assert_array_equal(outputs(printed)["OUTPUT1"], foreign.a - foreign.b)


def refusal(foreign: Foreign, argv: list[str], capsys) -> str:
    """Invoke; the server refuses; return the one error line."""
    assert cli.main(["invoke", "--url", foreign.url, *argv]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    return captured.err


INPUTS_HINT = "(check the input names, datatypes and shapes against the model's config.pbtxt)\n"
BODY_HINT = "(check the body against the model's inputs, and --content-type: application/json"


@pytest.mark.parametrize(
    ("name", "dtype", "message"),
    [
        (
            "INPUT0",
            np.int64,
            "400: [request id: <id_unknown>] inference input 'INPUT0' data-type is 'INT64', "
            "but model 'sm_model' expects 'INT32'",
        ),
        ("INPUTX", np.int32, "400: unexpected inference input 'INPUTX' for model 'sm_model'"),
    ],
)
def test_the_servers_refusals_are_one_line_with_its_message(
    foreign: Foreign, name, dtype, message, tmp_path, capsys
):
    np.save(tmp_path / "x.npy", foreign.a.astype(dtype))
    line = refusal(
        foreign, ["--input", f"{name}={tmp_path / 'x.npy'}", *foreign.inputs()[2:]], capsys
    )
    assert line == f"tritonship: error: {foreign.url}/invocations answered {message} {INPUTS_HINT}"


def test_a_body_the_server_cannot_parse_is_one_line(foreign: Foreign, tmp_path, capsys):
    (tmp_path / "broken.json").write_text("{not json")
    line = refusal(foreign, ["--body", str(tmp_path / "broken.json")], capsys)
    assert "answered 500: failed to parse the request JSON buffer" in line
    assert BODY_HINT in line


def test_bench_sends_a_users_body_and_says_so(foreign: Foreign, tmp_path: Path, capsys):
    request = {
        "inputs": [
            {"name": name, "datatype": "INT32", "shape": [1, 16], "data": array[:1].tolist()}
            for name, array in (("INPUT0", foreign.a), ("INPUT1", foreign.b))
        ]
    }
    (tmp_path / "body.json").write_text(json.dumps(request))
    argv = ["bench", "--url", foreign.url, "--body", str(tmp_path / "body.json")]
    argv += ["--concurrency", "1,2", "--duration", "0.5", "--warmup", "0.1"]
    argv += ["--out", str(tmp_path / "out"), "--no-results", "--quiet"]
    assert cli.main(argv) == 0
    capsys.readouterr()
    report = json.loads((tmp_path / "out" / "bench.json").read_text())
    assert report["meta"]["body"] == {
        "file": str(tmp_path / "body.json"),
        "bytes": (tmp_path / "body.json").stat().st_size,
        "content_type": "application/json",
    }
    assert report["meta"]["formats"] == ["body"] and report["ceilings"] == []
    levels = report["levels"]
    assert [(lv["format"], lv["concurrency"]) for lv in levels] == [("body", 1), ("body", 2)]
    assert all(lv["requests"] > 0 and lv["errors"] == 0 for lv in levels)
    markdown = (tmp_path / "out" / "bench.md").read_text()
    assert f"request body {tmp_path / 'body.json'} (" in markdown
    assert "| format | clients | requests/s |" in markdown
    assert "In-process ceiling: none for a request body" in markdown
