"""GPU accelerators as the backends read them: ONNX Runtime's TensorRT profile and engine
cache, TensorFlow's TF-TRT and ``gpu_io``; and what promote's dry run says they cost.

Only configs are tested: no GPU runs here. Each rule cites the backend source it imitates
(tools/tritonship/repository/accelerators.py).
"""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from tritonclient.grpc import model_config_pb2 as mc

from tritonship.artifact.manifest import ImageChoice, PackageManifest
from tritonship.repository import accelerators
from tritonship.repository.manifest import Classifier, OnnxModel, TensorNames

Accelerator = mc.ModelOptimizationPolicy.ExecutionAccelerators.Accelerator


def onnx_classifier(max_batch_size: int = 256) -> mc.ModelConfig:
    config = mc.ModelConfig(name="inception_onnx", max_batch_size=max_batch_size)
    config.input.add(name="input", data_type=mc.TYPE_FP32, dims=[299, 299, 3])
    return config


def with_tensorrt(parameters: Mapping[str, str]) -> mc.ModelConfig:
    config = onnx_classifier()
    entry = config.optimization.execution_accelerators.gpu_execution_accelerator.add(
        name="tensorrt"
    )
    entry.parameters.update(parameters)
    return config


def messages(backend: str, config: mc.ModelConfig) -> list[str]:
    return [p.message for p in accelerators.problems(backend, config)]


# --- ONNX Runtime's TensorRT -----------------------------------------------------------------


def test_add_tensorrt_writes_a_profile_from_batch_1_to_max_batch_size_and_a_cache():
    config = onnx_classifier()
    accelerators.add_tensorrt(config, "FP16")
    [trt] = config.optimization.execution_accelerators.gpu_execution_accelerator
    assert dict(trt.parameters) == {
        "precision_mode": "FP16",
        "max_workspace_size_bytes": str(1 << 30),
        "trt_engine_cache_enable": "1",
        "trt_engine_cache_path": "/tmp/tritonship-trt-engines",
        "trt_profile_min_shapes": "input:1x299x299x3",
        "trt_profile_opt_shapes": "input:16x299x299x3",
        "trt_profile_max_shapes": "input:256x299x299x3",
    }
    assert messages("onnxruntime", config) == []


def test_the_optimum_is_capped_at_max_batch_size_and_no_batching_means_no_profile():
    small = onnx_classifier(max_batch_size=8)
    assert accelerators.profile_shapes(small)["trt_profile_opt_shapes"] == "input:8x299x299x3"
    assert accelerators.profile_shapes(onnx_classifier(max_batch_size=0)) == {}
    variable = onnx_classifier()
    variable.input[0].dims[0] = -1
    assert accelerators.profile_shapes(variable) == {}, "no fixed shape to give TensorRT"


def test_the_cache_path_is_outside_the_read_only_model_mount():
    assert not accelerators.ENGINE_CACHE_PATH.startswith(accelerators.MODEL_MOUNT)
    parent = accelerators.ENGINE_CACHE_PATH.rsplit("/", 1)[0]
    assert parent == "/tmp", "ONNX Runtime creates one folder level only"


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        (
            {"trt_engine_cache_enable": "true"},
            "trt_engine_cache_enable needs an absolute, writable trt_engine_cache_path",
        ),
        (
            {"trt_engine_cache_enable": "1", "trt_engine_cache_path": "engines"},
            "trt_engine_cache_enable needs an absolute, writable trt_engine_cache_path",
        ),
        (
            {"trt_engine_cache_enable": "1", "trt_engine_cache_path": "/opt/ml/model/trt"},
            "'/opt/ml/model/trt' is inside /opt/ml/model, which SageMaker mounts read-only",
        ),
        (
            {"trt_profile_min_shapes": "input:1x299x299x3"},
            "needs min, opt and max: trt_profile_opt_shapes, trt_profile_max_shapes missing",
        ),
        (
            {
                "trt_profile_min_shapes": "image:1x299x299x3",
                "trt_profile_opt_shapes": "image:8x299x299x3",
                "trt_profile_max_shapes": "image:256x299x299x3",
            },
            "'image' is not an input of the model (input)",
        ),
        (
            {
                "trt_profile_min_shapes": "input:1x299x299x3",
                "trt_profile_opt_shapes": "input:8x299x299x3",
                "trt_profile_max_shapes": "input:512x299x299x3",
            },
            "batch 512 is outside 1..256",
        ),
        (
            {
                "trt_profile_min_shapes": "input:1x224x224x3",
                "trt_profile_opt_shapes": "input:8x224x224x3",
                "trt_profile_max_shapes": "input:256x224x224x3",
            },
            "does not match the input's dims [299, 299, 3]",
        ),
        (
            {
                "trt_profile_min_shapes": "input:16x299x299x3",
                "trt_profile_opt_shapes": "input:8x299x299x3",
                "trt_profile_max_shapes": "input:256x299x299x3",
            },
            "TensorRT shape profile of 'input': min <= opt <= max does not hold",
        ),
        (
            {
                "trt_profile_min_shapes": "input:1x299x299",
                "trt_profile_opt_shapes": "input:8x299x299x3",
                "trt_profile_max_shapes": "input:256x299x299x3",
            },
            "does not match the input's dims",
        ),
    ],
    ids=[
        "cache-no-path",
        "cache-relative",
        "cache-in-model",
        "profile-incomplete",
        "profile-name",
        "profile-batch",
        "profile-dims",
        "profile-order",
        "profile-rank",
    ],
)
def test_engine_cache_and_profile_problems(parameters, message):
    assert [m for m in messages("onnxruntime", with_tensorrt(parameters)) if message in m]


# --- TensorFlow: TF-TRT, gpu_io, auto mixed precision --------------------------------------


def tensorflow(*gpu: Accelerator, cpu: tuple[str, ...] = ()) -> mc.ModelConfig:
    config = mc.ModelConfig(name="inception_graphdef", max_batch_size=256)
    lists = config.optimization.execution_accelerators
    lists.gpu_execution_accelerator.extend(gpu)
    for name in cpu:
        lists.cpu_execution_accelerator.add(name=name)
    return config


def trt(**parameters: str) -> Accelerator:
    entry = Accelerator(name="tensorrt")
    entry.parameters.update(parameters)
    return entry


def test_gpu_io_and_tf_trt_as_the_tensorflow_backend_accepts_them():
    config = tensorflow(
        Accelerator(name="gpu_io"),
        trt(
            precision_mode="FP16",
            minimum_segment_size="3",
            max_workspace_size_bytes=str(1 << 30),
            max_cached_engines="100",
        ),
    )
    assert messages("tensorflow", config) == []
    added = mc.ModelConfig()
    accelerators.add_gpu_io(added)
    accelerators.add_gpu_io(added)
    assert [
        a.name for a in added.optimization.execution_accelerators.gpu_execution_accelerator
    ] == ["gpu_io"], "once"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (tensorflow(trt(precision_mode="INT8")), "unsupported precision mode 'INT8' is requested"),
        (
            tensorflow(trt(is_dynamic_op="true")),
            "unknown parameter 'is_dynamic_op' is provided for TensorRT Execution Accelerator",
        ),
        (
            tensorflow(trt(max_cached_engines="many")),
            "'max_cached_engines': 'many' is not a valid int",
        ),
        (
            tensorflow(trt(), Accelerator(name="auto_mixed_precision")),
            "Auto mixed precision can not be set with TFTRT optimization",
        ),
        (
            tensorflow(cpu=("openvino",)),
            "CPU Execution Accelerator is not supported in TensorFlow backend",
        ),
        (tensorflow(Accelerator(name="cuda")), "unknown Execution Accelerator 'cuda' is requested"),
    ],
    ids=["int8", "unknown-parameter", "not-a-number", "amp-with-trt", "cpu", "unknown-name"],
)
def test_tf_trt_problems_in_the_backends_words(config: mc.ModelConfig, message: str):
    assert [m for m in messages("tensorflow", config) if message in m], messages(
        "tensorflow", config
    )


# --- the dry run -------------------------------------------------------------------------------


def onnx_record(accelerator: str | None) -> Classifier:
    """The classifier record of an ONNX build with these GPU execution accelerators."""
    names = TensorNames(input="input", output="probabilities")
    installed = OnnxModel(
        sha256="ab",
        size=1,
        tensors=names,
        renamed_from=names,
        accelerator=accelerator,
        ensembles=[],
        source="model_repository",
    )
    return Classifier(
        format="onnx",
        platform="onnxruntime_onnx",
        model="inception_onnx",
        file="inception_onnx/1/model.onnx",
        onnx_model=installed,
    )


def test_promotes_dry_run_states_the_engine_build_cost():
    [note] = accelerators.startup_notes(onnx_record("tensorrt (FP16)"))
    assert note.startswith("inception_onnx: each GPU instance builds its TensorRT engine")
    assert "before /ping turns ready" in note and "not measured for Inception V3" in note
    assert "35-108 s per build for other models (onnxruntime PR #14767)" in note
    assert accelerators.startup_notes(onnx_record(None)) == []
    tf = Classifier(format="tf", platform="tensorflow_graphdef", model="m", file="m/1/g")
    assert accelerators.startup_notes(tf) == accelerators.startup_notes(None) == []


def test_the_dry_run_reads_the_note_from_the_package_manifest(tmp_path):
    from types import SimpleNamespace

    from tritonship.artifact.manifest import manifest_path_for
    from tritonship.cloud.planning import _startup_notes

    archive = tmp_path / "model.tar.gz"
    plan = SimpleNamespace(options=SimpleNamespace(archive=archive))
    assert _startup_notes(plan) == [], "no manifest: nothing to say"
    manifest = PackageManifest(
        tritonship="test",
        image=ImageChoice(tag="26.05-py3"),
        classifier=onnx_record("tensorrt (FP32)"),
    )
    manifest_path_for(archive).write_text(manifest.to_text())
    [note] = _startup_notes(plan)
    assert "builds its TensorRT engine (tensorrt (FP32))" in note
