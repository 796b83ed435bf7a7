"""The GPU (``mixed``) preprocessing graph, built without a GPU: operators and arguments.

No test here runs it: DALI 2.4 builds the graph of a GPU pipeline on a CPU-only machine
(``Pipeline._build_graph``), not the pipeline. What the GPU server's DALI will run is
therefore checked as a graph: which operator runs where, and with which arguments.
"""

from __future__ import annotations

import pytest

from tests.conftest import ROOT
from tests.unit.assets.test_dali_compat import OpUse, graph, load_pipeline_module, mixed_graph

PIPELINE = ROOT / "dali" / "pipeline.py"


@pytest.fixture(scope="module")
def module():
    return load_pipeline_module(PIPELINE)


@pytest.fixture(scope="module")
def gpu(module) -> dict[str, list[OpUse]]:
    return _by_schema(mixed_graph(module))


@pytest.fixture(scope="module")
def cpu(module) -> dict[str, list[OpUse]]:
    return _by_schema(graph(module.pipeline(batch_size=2, num_threads=1, device_id=None)))


def _by_schema(uses: list[OpUse]) -> dict[str, list[OpUse]]:
    found: dict[str, list[OpUse]] = {}
    for use in uses:
        found.setdefault(use.schema, []).append(use)
    return found


def test_the_gpu_graph_decodes_on_mixed_with_libjpegs_chroma_upsampling(gpu):
    [decoder] = gpu["decoders__Image"]
    assert decoder.arguments["device"] == "mixed"
    assert decoder.arguments["jpeg_fancy_upsampling"] == "True"
    assert decoder.arguments["output_type"] == "0"  # types.RGB
    assert decoder.inputs == 1


def test_the_gpu_graph_crops_resizes_and_scales_on_the_gpu(gpu):
    [crop], [resize] = gpu["Slice"], gpu["Resize"]
    assert crop.arguments["device"] == resize.arguments["device"] == "gpu"
    assert crop.arguments["out_of_bounds_policy"] == "error" and crop.inputs == 3
    assert resize.arguments["antialias"] == "False"
    assert resize.arguments["size"] == "[299.000000, 299.000000, ]"
    scale = [u for u in gpu["_ArithmeticGenericOp"] if u.arguments["device"] == "gpu"]
    assert sorted(u.arguments["_display_name"] for u in scale) == ["fdiv", "sub"]  # x/127.5-1


def test_the_input_and_the_crop_window_stay_on_the_cpu(gpu):
    """The encoded bytes come from Triton in host memory; the window is read from headers."""
    for schema in ("ExternalSource", "PeekImageShape", "_TensorSubscript", "Stack"):
        assert {u.arguments["device"] for u in gpu[schema]} == {"cpu"}, schema
    assert gpu["ExternalSource"][0].arguments["no_copy"] == "True"


def test_the_cpu_graph_is_unchanged_by_the_gpu_setting(cpu, gpu):
    [decoder] = cpu["decoders__Image"]
    assert decoder.arguments["device"] == "cpu"
    assert "jpeg_fancy_upsampling" not in decoder.arguments
    assert {u.arguments["device"] for uses in cpu.values() for u in uses} == {"cpu"}
    assert sorted(cpu) == sorted(gpu), "the same operators on both devices"
