"""The native server in multi-model mode, for real: container paths, the identity stand-in,
and the host-path fallback.

Confined, the server sees the models folder at ``/opt/ml/models`` and loads target models
from the URLs SageMaker posts; the identity stand-in answers as identity_backend r24.09 does
(tests/unit/assets/test_identity_standin.py has the details). Where namespaces are refused, the
server runs on host paths: loads then name host folders, and ``/opt/ml/models`` URLs fail.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import requests

from tritonship.local.engine import free_port
from tritonship.local.native import NativeEngine

MME = {"SAGEMAKER_MULTI_MODEL": "true"}
TIMEOUT = 60

IDENTITY = """
name: "{name}"
backend: "identity"
max_batch_size: 8
input [
  {{ name: "INPUT0" data_type: TYPE_FP32 dims: [ -1 ] }},
  {{ name: "INPUT1" data_type: TYPE_INT32 dims: [ -1, 3 ] optional: true }}
]
output [
  {{ name: "OUTPUT0" data_type: TYPE_FP32 dims: [ -1 ] }}{extra}
]
instance_group [ {{ kind: KIND_CPU }} ]
"""
SECOND_OUTPUT = ',\n  { name: "OUTPUT1" data_type: TYPE_INT32 dims: [ -1, 3 ] }'


def target_model(models: Path, digest: str, name: str, complete: bool = True) -> Path:
    """``<models>/<digest>/model/<name>``: one identity model, as SageMaker unpacks it."""
    folder = models / digest / "model" / name
    (folder / "1").mkdir(parents=True)
    extra = SECOND_OUTPUT if complete else ""
    (folder / "config.pbtxt").write_text(IDENTITY.format(name=name, extra=extra))
    return folder


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    models = tmp_path_factory.mktemp("models")
    target_model(models, "aaa111", "nop")
    target_model(models, "bbb222", "broken", complete=False)
    return models


@pytest.fixture(scope="module")
def confined_server(models: Path, tmp_path_factory) -> Iterator[NativeEngine]:
    run = tmp_path_factory.mktemp("run")
    engine = NativeEngine(
        run / "no-repository", port=free_port(), sagemaker_env=MME, run_dir=run, models_dir=models
    )
    if not engine.confined:
        pytest.skip(f"namespaces refused here: {engine.exposure()}")
    with engine:
        yield engine


def load(engine: NativeEngine, name: str, url: str) -> requests.Response:
    return requests.post(
        f"{engine.url}/models", json={"model_name": name, "url": url}, timeout=TIMEOUT
    )


def invoke(engine: NativeEngine, name: str, body: dict) -> requests.Response:
    return requests.post(f"{engine.url}/models/{name}/invoke", json=body, timeout=TIMEOUT)


def test_target_models_load_from_opt_ml_models(confined_server: NativeEngine):
    url = f"{confined_server.container_models_dir}/aaa111/model"
    assert url == "/opt/ml/models/aaa111/model"
    assert load(confined_server, "nop", url).status_code == 200
    listed = requests.get(f"{confined_server.url}/models/nop", timeout=TIMEOUT).json()
    assert listed == {"modelName": "nop", "modelUrl": "/opt/ml/models/aaa111/model"}
    assert "/opt/ml/models/aaa111/model" in confined_server.logs(400)


def test_the_identity_stand_in_copies_each_requested_output(confined_server: NativeEngine):
    load(confined_server, "nop", "/opt/ml/models/aaa111/model")  # 409 if loaded already
    floats = [[0.5, 1.5], [2.5, 3.5]]
    ints = [[[1, 2, 3]], [[4, 5, 6]]]
    answer = invoke(
        confined_server,
        "nop",
        {
            "inputs": [
                {"name": "INPUT0", "datatype": "FP32", "shape": [2, 2], "data": floats},
                {"name": "INPUT1", "datatype": "INT32", "shape": [2, 1, 3], "data": ints},
            ]
        },
    )
    assert answer.status_code == 200, answer.text
    outputs = {o["name"]: o for o in answer.json()["outputs"]}
    assert outputs["OUTPUT0"]["datatype"] == "FP32" and outputs["OUTPUT0"]["shape"] == [2, 2]
    assert outputs["OUTPUT1"]["datatype"] == "INT32" and outputs["OUTPUT1"]["shape"] == [2, 1, 3]
    np.testing.assert_array_equal(outputs["OUTPUT0"]["data"], np.ravel(floats))
    np.testing.assert_array_equal(outputs["OUTPUT1"]["data"], np.ravel(ints))


def test_an_absent_optional_input_answers_zeros(confined_server: NativeEngine):
    load(confined_server, "nop", "/opt/ml/models/aaa111/model")
    answer = invoke(
        confined_server,
        "nop",
        {
            "inputs": [{"name": "INPUT0", "datatype": "FP32", "shape": [2, 2], "data": [1] * 4}],
            "outputs": [{"name": "OUTPUT1"}],
        },
    )
    assert answer.status_code == 200, answer.text
    (output,) = answer.json()["outputs"]
    assert output["name"] == "OUTPUT1" and output["shape"] == [2, 1, 3]
    assert output["data"] == [0] * 6


def test_a_config_the_identity_backend_refuses_fails_its_load(confined_server: NativeEngine):
    answer = load(confined_server, "broken", "/opt/ml/models/bbb222/model")
    assert answer.status_code == 400
    assert "model configuration must have equal input/output pairs" in answer.text


def test_without_namespaces_loads_name_host_paths(models: Path, tmp_path: Path):
    """The fallback (confined=False: the server listens on every interface while it runs)."""
    engine = NativeEngine(
        tmp_path / "no-repository",
        port=free_port(),
        sagemaker_env=MME,
        run_dir=tmp_path / "run",
        models_dir=models,
        confined=False,
    )
    dummy = tmp_path / "run" / "sagemaker-dummy-repository"
    assert f"--model-repository={dummy}" in engine.command()
    with engine:
        assert dummy.is_dir()
        assert load(engine, "nop", "/opt/ml/models/aaa111/model").status_code == 400
        assert load(engine, "nop", f"{engine.container_models_dir}/aaa111/model").status_code == 200
