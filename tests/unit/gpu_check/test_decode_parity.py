"""The device check's CPU half (tools/gpu_check/decode_parity.py): its preprocessing is
ours, its references agree, and it refuses to run without a GPU.

The check itself needs a GPU and has not been run (docs/gpu.md); these tests make sure
that what it compares nvJPEG against is right before anyone spends device time on it.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import ROOT
from tests.support.modules import import_file

SCRIPT = ROOT / "tools" / "gpu_check" / "decode_parity.py"


@pytest.fixture(scope="module")
def check():
    return import_file(SCRIPT, "decode_parity")


def test_its_preprocessing_is_the_pipelines(check):
    """Against dali/pipeline.py itself, on the CPU decoder (the same libjpeg as Pillow)."""
    from tritonship.repository.dali import load_pipeline_module, run_pipeline

    data = check.WARMUP_JPEG.read_bytes()
    module = load_pipeline_module(ROOT / "dali" / "pipeline.py")
    (dali,) = run_pipeline(module, [np.frombuffer(data, np.uint8)], device_id=None)
    ours = check.preprocess(check.pillow(data))
    assert ours.shape == (299, 299, 3)
    assert np.abs(ours - dali).max() < 1e-3, "the tolerance the check reports against"


def test_libjpeg_with_fancy_upsampling_is_pillow_and_without_it_is_not(check):
    data = check.WARMUP_JPEG.read_bytes()  # 4:2:0
    fancy, plain = check.tensorflow(True), check.tensorflow(False)
    [same, different] = check.compare("cat", data, {"fancy": fancy, "plain": plain})
    assert same["max_abs_diff"] == 0.0 and same["within_tolerance"]
    assert different["max_abs_diff"] > 0.05 and not different["within_tolerance"]
    bars = check.colour_bars("4:4:4")  # no chroma upsampling at all: both agree
    assert {row["max_abs_diff"] for row in check.compare("bars", bars, {"plain": plain})} == {0.0}


def test_it_needs_a_gpu(check, capsys):
    assert check.main([]) == 2
    assert "CUDA" in capsys.readouterr().err
