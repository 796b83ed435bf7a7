"""Which image can serve which repository: backends per tag, the default tag, accelerators."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from tritonship import cli
from tritonship.artifact.package import PackageError, choose_tag, package_repository
from tritonship.errors import UsageError
from tritonship.repository import accelerators
from tritonship.repository.config import load_repository
from tritonship.repository.validate import validate_repository
from tritonship.sagemaker.images import SAGEMAKER_VERSIONS, backends_for_tag, newest_tag

INCEPTION = "inception_graphdef"


@pytest.mark.parametrize("version", SAGEMAKER_VERSIONS)
def test_every_tag_has_onnxruntime_dali_and_python_tensorflow_only_up_to_25_02(version: str):
    backends = backends_for_tag(f"{version}-py3")
    assert {"onnxruntime", "dali", "python", "ensemble"} <= backends
    assert ("tensorflow" in backends) is (version <= "25.02")


def test_the_gpu_images_carry_the_identity_backend():
    """server r24.09 build.py enable_all() lists "identity" (NVIDIA's MME test uses it)."""
    assert "identity" in backends_for_tag("24.09-py3")
    assert newest_tag(["identity", "python", "ensemble"]).tag.endswith("-py3")


def test_the_newest_tag_for_tensorflow_is_24_09_and_says_why():
    choice = newest_tag(["dali", "ensemble", "python", "tensorflow"])
    assert choice.tag == "24.09-py3"
    assert "TensorFlow left Triton in 25.03" in choice.reason
    assert "26.05" in choice.reason


def test_the_newest_tag_for_onnx_is_the_newest_tag():
    choice = newest_tag(["dali", "ensemble", "python", "onnxruntime"])
    assert choice.tag == f"{max(SAGEMAKER_VERSIONS)}-py3"
    assert choice.reason.startswith("the newest SageMaker Triton image with dali, ensemble")


def test_no_tag_with_an_unknown_backend():
    with pytest.raises(UsageError, match="no SageMaker Triton image has all of"):
        newest_tag(["tensorflow", "jax"])


def test_a_tensorflow_repository_for_26_05_is_refused_with_the_fix_in_one_line(
    staged_repository: Path, tmp_path: Path
):
    [finding] = validate_repository(load_repository(staged_repository), image_tag="26.05-py3")
    line = str(finding)
    assert "\n" not in line
    assert "fix: tritonship build --format onnx --image-tag 26.05-py3, or target 24.09-py3" in line
    with pytest.raises(PackageError, match="fix: tritonship build --format onnx"):
        package_repository(
            staged_repository, tmp_path / "m.tar.gz", "26.05-py3", allow_random_weights=True
        )


def test_package_without_a_tag_chooses_the_newest_that_serves_it(
    staged_repository: Path, tmp_path: Path, capsys
):
    assert choose_tag(load_repository(staged_repository), None).tag == "24.09-py3"
    assert choose_tag(staged_repository, "24.05-py3").reason == "given with --image-tag"
    argv = ["package", "--repo", str(staged_repository), "--out", str(tmp_path / "m.tar.gz")]
    assert cli.main([*argv, "--allow-random-weights", "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "image 24.09-py3: the newest SageMaker Triton image with dali, ensemble" in err


def test_promote_without_a_tag_chooses_from_the_archive(packaged, capsys):
    from tritonship.cli import cloud

    assert cloud._archive_tag((packaged.archive,)) == "24.09-py3"
    assert "image 24.09-py3: the newest" in capsys.readouterr().err
    parsed = cli.build_parser().parse_args(
        ["promote", "--endpoint", "e", "--bucket", "b", "--role", "r"]
    )
    assert parsed.image_tag is None


# --- accelerators ----------------------------------------------------------------------------


def test_accelerator_specs():
    assert accelerators.parse_accelerator("tensorrt") == "FP32"
    assert accelerators.parse_accelerator("TensorRT:FP16") == "FP16"
    with pytest.raises(UsageError, match="use one of: tensorrt, tensorrt:fp32, tensorrt:fp16"):
        accelerators.parse_accelerator("cuda")


def test_add_tensorrt_replaces_an_older_entry_and_keeps_others():
    config = mc.ModelConfig()
    gpu = config.optimization.execution_accelerators.gpu_execution_accelerator
    gpu.add(name="cuda")
    gpu.add(name="tensorrt").parameters["precision_mode"] = "FP32"
    accelerators.add_tensorrt(config, "FP16")
    assert [a.name for a in gpu] == ["tensorrt", "cuda"]
    assert gpu[0].parameters["precision_mode"] == "FP16"
    assert accelerators.describe(config) == "tensorrt (FP16), cuda"


def with_accelerators(repo: Path, model: str, text: str) -> Path:
    path = repo / model / "config.pbtxt"
    path.write_text(path.read_text() + text)
    text_format.Parse(path.read_text(), mc.ModelConfig())  # still a valid config
    return path


def onnx_like(repo: Path) -> None:
    """Turn the staged classifier into an onnxruntime model (config and artifact only)."""
    path = repo / INCEPTION / "config.pbtxt"
    path.write_text(path.read_text().replace('"tensorflow_graphdef"', '"onnxruntime_onnx"'))
    (repo / INCEPTION / "1" / "model.onnx").write_bytes(b"placeholder")


TRT = """
optimization {{ execution_accelerators {{
  gpu_execution_accelerator : [ {{
    name : "{name}"
    parameters {{ key: "{key}" value: "{value}" }}
  }} ]
}} }}
"""


@pytest.mark.parametrize(
    ("name", "key", "value", "message", "line_text"),
    [
        ("tensorrt", "precision_mode", "FP16", None, None),
        ("tensorrt", "trt_timing_cache_enable", "ON", None, None),
        (
            "tensorrt",
            "trt_engine_cache_enable",
            "1",
            "needs an absolute, writable trt_engine_cache_path",
            "trt_engine_cache_enable",
        ),
        (
            "tensorrt",
            "trt_profile_min_shapes",
            "input:1x299x299x3",
            "needs min, opt and max: trt_profile_opt_shapes, trt_profile_max_shapes missing",
            "trt_profile_min_shapes",
        ),
        ("tensorrt", "precision_mode", "FP8", "unsupported precision mode 'FP8'", "FP8"),
        (
            "tensorrt",
            "precision",
            "FP16",
            "unknown parameter 'precision' is provided for TensorRT Execution Accelerator",
            '"precision"',
        ),
        (
            "tensorrt",
            "max_workspace_size_bytes",
            "-1",
            "is not a valid unsigned int",
            "max_workspace",
        ),
        ("tensorrt", "trt_dla_enable", "yes", "is not a valid bool", "trt_dla_enable"),
        ("rocm", "x", "1", "unknown Execution Accelerator 'rocm' is requested", '"rocm"'),
    ],
)
def test_onnxruntime_accelerators_are_checked_as_the_backend_checks_them(
    repo_copy: Path, name: str, key: str, value: str, message: str | None, line_text: str | None
):
    onnx_like(repo_copy)
    path = with_accelerators(repo_copy, INCEPTION, TRT.format(name=name, key=key, value=value))
    findings = validate_repository(load_repository(repo_copy), image_tag="26.05-py3")
    if message is None:
        assert findings == []
        return
    [finding] = findings
    assert message in finding.message and finding.path == path
    assert line_text in path.read_text().splitlines()[finding.line - 1]


def test_accelerators_on_a_backend_that_ignores_them(repo_copy: Path):
    path = with_accelerators(
        repo_copy, "dali", TRT.format(name="tensorrt", key="precision_mode", value="FP16")
    )
    [finding] = validate_repository(load_repository(repo_copy))
    assert finding.path == path and "backend 'dali' ignores execution_accelerators" in str(finding)


def test_tensorflow_accelerators_are_its_own(repo_copy: Path):
    text = TRT.format(name="auto_mixed_precision", key="a", value="b")
    with_accelerators(repo_copy, INCEPTION, text)
    assert validate_repository(load_repository(repo_copy)) == []
