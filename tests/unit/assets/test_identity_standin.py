"""The identity stand-in does what identity_backend r24.09 src/identity.cc does.

The helpers (container/backends/identity/identity_helpers.py) are loaded by file path, and
model.py runs under the fake Python backend (tests/support/fake_pb_utils.py), so requests
go through ``execute`` as the Python backend hands them over. The real server runs it in
tests/integration/test_identity_backend.py and in NVIDIA's multi-model ensemble test.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from tests.conftest import ROOT
from tests.support import fake_pb_utils as pb
from tests.unit.assets.test_standins import load

BACKEND = ROOT / "container" / "backends" / "identity"
helpers = load(BACKEND / "identity_helpers.py")


def tensor(name: str, dtype: str = "TYPE_FP32", dims: list[int] | None = None, **extra: Any):
    return {"name": name, "data_type": dtype, "dims": [str(d) for d in dims or [-1]], **extra}


def config(inputs=None, outputs=None, max_batch_size: int = 8, **parameters: str) -> dict:
    """A model config as the Python backend passes it (JSON of the ModelConfig)."""
    return {
        "name": "nop",
        "backend": "identity",
        "max_batch_size": max_batch_size,
        "input": inputs if inputs is not None else [tensor("INPUT0"), tensor("INPUT1")],
        "output": outputs if outputs is not None else [tensor("OUTPUT0"), tensor("OUTPUT1")],
        "parameters": {key: {"string_value": value} for key, value in parameters.items()},
    }


@pytest.mark.parametrize(
    ("inputs", "outputs", "message"),
    [
        (
            [tensor("INPUT0"), tensor("INPUT1")],
            [tensor("OUTPUT0")],
            "model configuration must have equal input/output pairs",
        ),
        (
            [tensor("IN0")],
            [tensor("OUTPUT0")],
            "expected input name to follow INPUT<index> pattern, got 'IN0'",
        ),
        (
            [tensor("INPUT0")],
            [tensor("OUT0")],
            "expected output name to follow OUTPUT<index> pattern, got 'OUT0'",
        ),
        ([tensor("INPUT0")], [tensor("OUTPUT1")], "expected input and output indices to match"),
        (
            [tensor("INPUT0")],
            [tensor("OUTPUT0", "TYPE_INT32")],
            "expected input and output datatype to match, got TYPE_FP32 and TYPE_INT32",
        ),
        (
            [tensor("INPUT0", dims=[-1, 16])],
            [tensor("OUTPUT0", dims=[16])],
            "expected input and output shape to match, got [-1,16] and [16]",
        ),
    ],
)
def test_configs_the_real_backend_refuses(inputs, outputs, message):
    with pytest.raises(helpers.ConfigError) as refused:
        helpers.check_config(config(inputs, outputs))
    assert str(refused.value) == message


def test_a_reshape_stands_for_the_dims():
    reshaped = tensor("INPUT0", dims=[16], reshape={"shape": ["4", "4"]})
    same = tensor("OUTPUT0", dims=[4, 4])
    assert helpers.check_config(config([reshaped], [same])).optional == {}


def test_parameters_are_read_as_the_backend_reads_them():
    settings = helpers.check_config(
        config(execute_delay_ms="250", instance_wise_delay_multiplier="2", creation_delay_sec="3")
    )
    assert (settings.execute_delay_ms, settings.delay_multiplier) == (250, 2)
    assert settings.creation_delay_sec == 3
    # the multiplier is only read together with execute_delay_ms (L379-394)
    alone = helpers.check_config(config(instance_wise_delay_multiplier="2"))
    assert alone.delay_multiplier == 0
    with pytest.raises(helpers.ConfigError):
        helpers.check_config(config(execute_delay_ms="soon"))


@pytest.mark.parametrize(
    ("delay", "multiplier", "instance", "seconds"),
    [(0, 0, 3, 0.0), (100, 0, 3, 0.1), (100, 2, 0, 0.1), (100, 2, 3, 0.6)],
)
def test_the_execute_delay(delay, multiplier, instance, seconds):
    settings = helpers.Settings(execute_delay_ms=delay, delay_multiplier=multiplier)
    assert helpers.delay_seconds(settings, instance) == pytest.approx(seconds)


def test_the_instance_index_comes_from_the_instance_name():
    assert helpers.instance_index("nop_TYPE_FP32_-1_0_2") == 2
    assert helpers.instance_index("nop") == 0


@pytest.fixture()
def identity(monkeypatch):
    """model.py under the fake Python backend; time.sleep recorded, not slept."""
    module = pb.load_model(BACKEND / "model.py", monkeypatch)
    slept: list[float] = []
    monkeypatch.setattr(module.time, "sleep", slept.append)

    def make(model_config: dict, instance: str = "nop_0_0"):
        model = module.TritonPythonModel()
        args = {"model_config": json.dumps(model_config), "model_instance_name": instance}
        model.initialize(args)
        return model

    make.slept = slept
    return make


def test_each_requested_output_is_its_input(identity):
    model = identity(config())
    ints = np.arange(6, dtype=np.int32).reshape(2, 3)
    floats = np.ones((2, 5), dtype=np.float32)
    request = pb.InferenceRequest(["OUTPUT1", "OUTPUT0"], INPUT0=ints, INPUT1=floats)
    (response,) = model.execute([request])
    assert not response.has_error()
    assert [t.name() for t in response.output_tensors] == ["OUTPUT1", "OUTPUT0"]
    for name, sent in (("OUTPUT0", ints), ("OUTPUT1", floats)):
        out = response.output(name)
        assert out.dtype == sent.dtype and out.shape == sent.shape
        np.testing.assert_array_equal(out, sent)


def test_only_the_requested_outputs_are_produced(identity):
    model = identity(config())
    data = np.ones((1, 4), dtype=np.float32)
    (response,) = model.execute([pb.InferenceRequest(["OUTPUT0"], INPUT0=data, INPUT1=data)])
    assert [t.name() for t in response.output_tensors] == ["OUTPUT0"]


def test_a_missing_input_fails_its_request_alone(identity):
    model = identity(config())
    data = np.ones((1, 4), dtype=np.float32)
    good = pb.InferenceRequest(["OUTPUT0"], INPUT0=data)
    bad = pb.InferenceRequest(["OUTPUT0", "OUTPUT1"], INPUT0=data)
    answers = model.execute([good, bad, good])
    assert [a.has_error() for a in answers] == [False, True, False]
    assert answers[1].error.message() == "failed to get input 'INPUT1'"
    assert answers[1].error.code() == pb.TritonError.UNSUPPORTED


def test_an_absent_optional_input_gives_zeros(identity):
    inputs = [tensor("INPUT0", dims=[-1]), tensor("INPUT1", "TYPE_INT32", [-1, 3], optional=True)]
    outputs = [tensor("OUTPUT0", dims=[-1]), tensor("OUTPUT1", "TYPE_INT32", [-1, 3])]
    batching = identity(config(inputs, outputs))
    sent = np.ones((4, 2), dtype=np.float32)
    (answer,) = batching.execute([pb.InferenceRequest(["OUTPUT1"], INPUT0=sent)])
    zeros = answer.output("OUTPUT1")
    assert zeros.shape == (4, 1, 3) and zeros.dtype == np.int32 and not zeros.any()
    plain = identity(config(inputs, outputs, max_batch_size=0))
    (answer,) = plain.execute([pb.InferenceRequest(["OUTPUT1"], INPUT0=sent)])
    assert answer.output("OUTPUT1").shape == (1, 3)


def test_delays_sleep_once_per_call_and_at_load(identity):
    model = identity(config(execute_delay_ms="50", creation_delay_sec="2"), "nop_0_1")
    assert identity.slept == [2]
    data = np.ones((1, 2), dtype=np.float32)
    requests = [pb.InferenceRequest(["OUTPUT0"], INPUT0=data) for _ in range(3)]
    assert len(model.execute(requests)) == 3
    assert identity.slept == [2, pytest.approx(0.05)]


def test_an_invalid_config_fails_the_load(identity):
    with pytest.raises(ValueError, match="equal input/output pairs"):
        identity(config(outputs=[tensor("OUTPUT0")]))
