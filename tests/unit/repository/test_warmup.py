"""Warmup on every model of the ensemble, and the validator's warmup rules (Triton's own).

Triton runs each ``model_warmup`` sample on every instance before it reports the model
ready, and a failed sample fails the load (core r24.09 ``src/backend_model_instance.cc``
L599-668). The server-level proof, on the native engine's real tritonserver with the CPU
stand-ins, is tests/integration/test_warmup.py.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from google.protobuf import text_format
from PIL import Image
from tritonclient.grpc import model_config_pb2 as mc

from tests.conftest import ROOT
from tritonship.repository.config import load_repository
from tritonship.repository.rules.warmup import WARMUP_FOLDER
from tritonship.repository.validate import validate_repository

REPOSITORY = ROOT / "model_repository"
JPEG_STEPS = {"guard": "IMAGE", "dali": "DALI_INPUT_0"}


def committed(model: str) -> mc.ModelConfig:
    return text_format.Parse((REPOSITORY / model / "config.pbtxt").read_text(), mc.ModelConfig())


@pytest.mark.parametrize(("model", "tensor"), sorted(JPEG_STEPS.items()))
def test_the_image_steps_warm_up_on_a_real_jpeg_shipped_beside_them(model: str, tensor: str):
    [sample] = committed(model).model_warmup
    assert sample.batch_size == 1 and list(sample.inputs) == [tensor]
    value = sample.inputs[tensor]
    assert value.data_type == mc.TYPE_UINT8
    path = REPOSITORY / model / WARMUP_FOLDER / value.input_data_file
    assert list(value.dims) == [path.stat().st_size], "the whole file, not a prefix"
    with Image.open(path) as image:
        assert image.format == "JPEG" and image.size == (451, 300)  # scikit-image's cat
        image.load()  # decodes completely: zero bytes or a truncated file would not


def test_both_image_steps_warm_up_on_the_same_photo():
    files = [REPOSITORY / m / WARMUP_FOLDER / "chelsea.jpg" for m in JPEG_STEPS]
    assert files[0].read_bytes() == files[1].read_bytes()


def test_the_classifier_warms_up_on_zeros_of_its_input_shape():
    config = committed("inception_graphdef")
    [sample] = config.model_warmup
    value = sample.inputs["input"]
    assert sample.batch_size == 1 and value.HasField("zero_data")
    assert (value.data_type, list(value.dims)) == (mc.TYPE_FP32, list(config.input[0].dims))


def test_the_ensemble_has_no_warmup_triton_refuses_it_there():
    assert not committed("ensemble_dali_inception").model_warmup


# --- the validator ---------------------------------------------------------------------------


def edit(model: str, change: Callable[[mc.ModelConfig], object]) -> Callable[[Path], Path]:
    def apply(repo: Path) -> Path:
        path = repo / model / "config.pbtxt"
        config = text_format.Parse(path.read_text(), mc.ModelConfig())
        change(config)
        path.write_text(text_format.MessageToString(config))
        return path

    return apply


def _dali_input(config: mc.ModelConfig) -> mc.ModelWarmup.Input:
    return config.model_warmup[0].inputs["DALI_INPUT_0"]


def _ensemble_warmup(config: mc.ModelConfig) -> None:
    sample = config.model_warmup.add(name="w", batch_size=1)
    sample.inputs["INPUT"].data_type = mc.TYPE_UINT8


def _rename(config: mc.ModelConfig) -> None:
    inputs = config.model_warmup[0].inputs
    inputs["IMAGES"].CopyFrom(inputs["DALI_INPUT_0"])
    del inputs["DALI_INPUT_0"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            edit("ensemble_dali_inception", _ensemble_warmup),
            "model_warmup can not be specified for ensemble 'ensemble_dali_inception'",
        ),
        (
            edit("dali", lambda c: setattr(_dali_input(c), "input_data_file", "cat.jpg")),
            "failed to open text file for read",
        ),
        (
            edit("dali", lambda c: _dali_input(c).dims.__setitem__(0, 35043)),
            "warmup setting expects 35043 bytes, but the data provided from chelsea.jpg only "
            "has 35042 bytes",
        ),
        (
            edit("dali", lambda c: _dali_input(c).dims.__setitem__(0, -1)),
            "warmup setting expects all variable-size dimensions are specified for input "
            "'DALI_INPUT_0'",
        ),
        (
            edit("dali", lambda c: _dali_input(c).ClearField("input_data_type")),
            "warmup setting expects input 'DALI_INPUT_0' to have input_data_type set",
        ),
        (
            edit("dali", lambda c: setattr(_dali_input(c), "data_type", mc.TYPE_INT8)),
            "input 'DALI_INPUT_0' is TYPE_INT8, the model's is TYPE_UINT8",
        ),
        (
            edit("inception_graphdef", lambda c: setattr(c.model_warmup[0], "batch_size", 0)),
            "batch_size 0 is not in 1..256 (Triton skips a sample of batch 0)",
        ),
        (
            edit("inception_graphdef", lambda c: c.model_warmup[0].inputs["input"].dims.pop()),
            "dims [299, 299] do not fit the model's [299, 299, 3]",
        ),
    ],
    ids=[
        "ensemble",
        "missing-file",
        "short-file",
        "variable-dims",
        "no-data",
        "data-type",
        "batch-0",
        "wrong-dims",
    ],
)
def test_each_broken_warmup_is_one_finding_at_its_config(repo_copy: Path, change, message):
    path = change(repo_copy)
    findings = validate_repository(load_repository(repo_copy), image_tag="24.09-py3")
    assert [f.path for f in findings] == [path], findings
    assert message in findings[0].message
    assert findings[0].line is not None


def test_a_warmup_on_another_input_name_is_two_findings(repo_copy: Path):
    path = edit("dali", _rename)(repo_copy)
    findings = validate_repository(load_repository(repo_copy))
    assert {f.path for f in findings} == {path}
    assert sorted(f.message for f in findings) == [
        "warmup sample 'chelsea_jpeg' gives no input 'DALI_INPUT_0'",
        "warmup sample 'chelsea_jpeg': 'IMAGES' is not an input of the model (inputs: "
        "DALI_INPUT_0)",
    ]
