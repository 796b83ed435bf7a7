"""``build --device gpu`` on a machine without a GPU: configs sized per instance type.

The staged repository (real configs, placeholder graph) is the source; the build writes a
separate repository whose DALI threads, guard limit and TensorFlow ``gpu_io`` are sized
for the instance type, and ``validate --image-tag 24.09-py3`` must accept it. Nothing here
runs on a GPU: the mixed pipeline is built as a graph (tests/unit/assets/test_dali_mixed.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from tests.unit.repository.test_onnx import SMALL
from tritonship import cli
from tritonship.errors import TritonshipError, UsageError
from tritonship.repository import build, memory
from tritonship.repository.config import load_repository
from tritonship.repository.manifest import Weights
from tritonship.repository.validate import validate_repository
from tritonship.sagemaker.instances import DEFAULT_INSTANCE_TYPE, INSTANCE_TYPES, instance_type

GB = 1 << 30


def config(path: Path) -> mc.ModelConfig:
    return text_format.Parse(path.read_text(encoding="utf-8"), mc.ModelConfig())


def gpu_build(source: Path, repo: Path, instance: str | None = None) -> dict:
    """A GPU build of ``source`` into ``repo``; its manifest as JSON."""
    return build.build_repository(
        repo,
        "random",
        device="gpu",
        progress=False,
        source=source,
        instance_type=instance,
        cuda_check=False,
    ).to_json()


@pytest.fixture(scope="module")
def g4dn(staged_repository: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """One GPU build for the default instance type (read-only use)."""
    repo = tmp_path_factory.mktemp("gpu") / "model_repository_gpu"
    return repo, gpu_build(staged_repository, repo)


# --- the instance table --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "vcpus", "gpus", "memory_gib", "threads"),
    [
        ("ml.g4dn.xlarge", 4, 1, 16, 4),  # AWS: g4dn.xlarge 4 vCPUs, 1 T4 (16 GiB)
        ("ml.g5.xlarge", 4, 1, 24, 4),  # AWS: g5.xlarge 4 vCPUs, 1 A10G (24 GiB)
        ("ml.g4dn.2xlarge", 8, 1, 16, 8),
        ("ml.g5.4xlarge", 16, 1, 24, 16),
        ("ml.g4dn.12xlarge", 48, 4, 16, 12),  # 4 GPUs: each GPU's DALI gets a quarter
        ("ml.g5.48xlarge", 192, 8, 24, 24),
    ],
)
def test_num_threads_are_the_vcpus_of_one_gpus_share(name, vcpus, gpus, memory_gib, threads):
    found = instance_type(name)
    assert (found.vcpus, found.gpus, found.gpu_memory_gib) == (vcpus, gpus, memory_gib)
    assert build.GpuTarget(found).num_threads == threads


def test_an_unknown_instance_type_is_a_usage_error_that_lists_the_known_ones():
    assert instance_type("g5.xlarge") is INSTANCE_TYPES["ml.g5.xlarge"]
    with pytest.raises(UsageError, match="ml.p3.2xlarge: not a GPU instance type") as info:
        instance_type("ml.p3.2xlarge")
    assert "ml.g4dn.xlarge" in (info.value.hint or "")


def test_build_and_promote_default_to_the_same_instance_type():
    from tritonship.cloud.state import DEFAULT_INSTANCE_TYPE as PROMOTE_DEFAULT
    from tritonship.cloud.state import PromoteOptions

    assert PROMOTE_DEFAULT == DEFAULT_INSTANCE_TYPE == "ml.g4dn.xlarge"
    assert PromoteOptions("e", "b", "r").instance_type == DEFAULT_INSTANCE_TYPE
    assert build.gpu_target("gpu", None).instance.name == DEFAULT_INSTANCE_TYPE


# --- the GPU repository ----------------------------------------------------------------------


def test_the_gpu_build_sizes_dali_the_guard_and_the_classifier(g4dn):
    repo, manifest = g4dn
    dali = config(repo / "dali/config.pbtxt")
    assert dali.parameters["num_threads"].string_value == "4"
    guard = config(repo / "guard/config.pbtxt")
    assert guard.parameters["max_pixels"].string_value == "40000000"
    limit = int(guard.parameters["max_request_pixels"].string_value)
    assert limit == 4 * GB // 3  # a quarter of the T4's 16 GiB, 3 bytes per decoded pixel
    [io] = config(
        repo / "inception_graphdef/config.pbtxt"
    ).optimization.execution_accelerators.gpu_execution_accelerator
    assert io.name == "gpu_io" and not io.parameters
    assert manifest["gpu"] == {
        "instance_type": "ml.g4dn.xlarge",
        "gpu": "NVIDIA T4",
        "gpus": 1,
        "gpu_memory_gib": 16,
        "vcpus": 4,
        "num_threads": 4,
        "dali_memory_budget_bytes": 4 * GB,
        "dali_memory_share": 0.25,
        "configs": {
            "dali": ["num_threads 4"],
            "guard": [f"max_request_pixels {limit}"],
            "inception_graphdef": ["gpu_io"],
        },
    }
    assert manifest["device_target"] == "gpu"


def test_what_a_gpu_build_keeps_from_the_source(g4dn, staged_repository: Path):
    repo, manifest = g4dn
    for model in ("dali", "guard", "inception_graphdef"):
        text = (repo / model / "config.pbtxt").read_text()
        assert text.startswith("# Generated by tritonship build --device gpu for ml.g4dn.xlarge")
        generated, committed = (
            config(repo / model / "config.pbtxt"),
            config(staged_repository / model / "config.pbtxt"),
        )
        assert list(generated.model_warmup) == list(committed.model_warmup)
        assert generated.max_batch_size == committed.max_batch_size
    assert not config(repo / "dali/config.pbtxt").instance_group, "one DALI instance per GPU"
    assert not config(repo / "dali/config.pbtxt").HasField("dynamic_batching")
    for name in ("ensemble_dali_inception/config.pbtxt", "guard/1/model.py", "dali/warmup"):
        source = staged_repository / name
        files = [source] if source.is_file() else sorted(source.iterdir())
        for path in files:
            copy = repo / path.relative_to(staged_repository)
            assert copy.read_bytes() == path.read_bytes(), copy
    assert manifest["weights"]["source"] == "random" and manifest["weights"]["staged"]
    assert manifest["dali"]["targets"]["gpu"]["graph_built"] is True
    assert manifest["dali"]["targets"]["gpu"]["verified"] is False


def test_the_source_keeps_its_committed_configs(g4dn, staged_repository: Path):
    for model in ("dali", "guard", "inception_graphdef"):
        text = (staged_repository / model / "config.pbtxt").read_text()
        assert "Generated" not in text and "max_request_pixels" not in text
    assert 'string_value: "12"' in (staged_repository / "dali/config.pbtxt").read_text()


def test_validate_for_the_24_09_image_accepts_the_gpu_build(g4dn):
    repo, _ = g4dn
    assert validate_repository(load_repository(repo), image_tag="24.09-py3") == []


@pytest.mark.parametrize(
    ("instance", "threads", "budget_gib"),
    [("ml.g5.xlarge", "4", 6), ("ml.g5.2xlarge", "8", 6), ("ml.g4dn.12xlarge", "12", 4)],
)
def test_other_instance_types(staged_repository, tmp_path, instance, threads, budget_gib):
    manifest = gpu_build(staged_repository, tmp_path / "gpu", instance)
    dali = config(tmp_path / "gpu/dali/config.pbtxt")
    assert dali.parameters["num_threads"].string_value == threads
    assert manifest["gpu"]["dali_memory_budget_bytes"] == budget_gib * GB
    assert validate_repository(load_repository(tmp_path / "gpu"), image_tag="24.09-py3") == []


def test_a_rebuild_regenerates_from_the_source(g4dn, staged_repository, tmp_path):
    repo = tmp_path / "gpu"
    gpu_build(staged_repository, repo, "ml.g5.2xlarge")
    (repo / "stale_model").mkdir()
    gpu_build(staged_repository, repo, "ml.g4dn.xlarge")
    assert not (repo / "stale_model").exists()
    assert (repo / "dali/config.pbtxt").read_bytes() == (g4dn[0] / "dali/config.pbtxt").read_bytes()


def test_refusals_come_before_any_work(staged_repository: Path, tmp_path: Path):
    with pytest.raises(UsageError, match="is the source repository"):
        gpu_build(staged_repository, staged_repository)
    with pytest.raises(UsageError, match="no such model repository to copy"):
        gpu_build(tmp_path / "nowhere", tmp_path / "r")
    with pytest.raises(UsageError, match="--instance-type sizes a GPU build"):
        build.build_repository(tmp_path / "r", "random", device="cpu", instance_type="g5.xlarge")
    with pytest.raises(UsageError, match="not a GPU instance type"):
        gpu_build(staged_repository, tmp_path / "r", "ml.m5.xlarge")
    with pytest.raises(TritonshipError, match="no CUDA device") as info:
        build.build_repository(tmp_path / "r", "random", device="gpu", source=staged_repository)
    assert "--skip-cuda-check" in (info.value.hint or "")
    assert not (tmp_path / "r").exists()


def test_the_cli_builds_for_a_gpu_here_and_says_the_cuda_check_was_skipped(
    staged_repository: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    repo = tmp_path / "gpu"
    code = cli.main(
        [
            "build",
            "--device",
            "gpu",
            "--instance-type",
            "ml.g4dn.xlarge",
            "--skip-cuda-check",
            "--source",
            str(staged_repository),
            "--repo",
            str(repo),
            "--weights",
            "random",
            "--image-tag",
            "24.09-py3",
            "--quiet",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert "--skip-cuda-check: not checking for a CUDA device" in err
    assert "nothing runs on a GPU here" in err
    assert "target gpu (ml.g4dn.xlarge: NVIDIA T4, num_threads 4" in out
    assert "GPU pipeline built as a graph, not run" in out
    assert "validate --image-tag 24.09-py3: clean" in err
    assert json.loads((repo / "build-manifest.json").read_text())["gpu"]["num_threads"] == 4


def test_the_default_gpu_repository_is_a_separate_one():
    assert build.default_repository("tf", "gpu").name == "model_repository_gpu"
    assert build.default_repository("tf", "auto").name == "model_repository"
    assert build.default_repository("onnx", "gpu").name == "model_repository_onnx"


def test_an_onnx_gpu_build_sizes_the_same_steps_and_builds_tensorrt(
    staged_repository: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """The tiny graph of tests/unit/repository/test_onnx.py stands in for Inception."""
    from tritonship.repository import onnx

    random = Weights(source="random", graph_sha256="")
    monkeypatch.setattr(onnx, "source_graph", lambda *a: (SMALL, random))
    repo = tmp_path / "onnx"
    manifest = build.build_repository(
        repo,
        "random",
        device="gpu",
        progress=False,
        fmt="onnx",
        source=staged_repository,
        accelerator="tensorrt:fp16",
        cuda_check=False,
    ).to_json()
    assert set(manifest["gpu"]["configs"]) == {"dali", "guard"}, "ONNX Runtime takes GPU input"
    [trt] = config(
        repo / "inception_onnx/config.pbtxt"
    ).optimization.execution_accelerators.gpu_execution_accelerator
    assert trt.parameters["trt_profile_max_shapes"] == "input:256x299x299x3"
    assert validate_repository(load_repository(repo), image_tag="26.05-py3") == []


# --- the memory budget validate checks -------------------------------------------------------


def edit_config(path: Path, change) -> None:
    parsed = config(path)
    change(parsed)
    path.write_text(text_format.MessageToString(parsed), encoding="utf-8")


@pytest.fixture()
def gpu_copy(g4dn, tmp_path: Path) -> Path:
    import shutil

    repo = tmp_path / "gpu"
    shutil.copytree(g4dn[0], repo)
    return repo


def test_without_the_per_request_limit_a_full_request_exceeds_the_budget(gpu_copy: Path):
    edit_config(gpu_copy / "guard/config.pbtxt", lambda c: c.parameters.pop("max_request_pixels"))
    [finding] = validate_repository(load_repository(gpu_copy), image_tag="24.09-py3")
    assert finding.path == gpu_copy / "dali/config.pbtxt"
    assert finding.message.startswith("one GPU may have to hold 28.6 GiB of decoded images")
    assert "max_batch_size 256 x the guard's max_pixels 40 MP" in finding.message
    assert "more than the DALI budget of 4.0 GiB on ml.g4dn.xlarge" in finding.message
    assert (
        "max_batch_size"
        in (gpu_copy / "dali/config.pbtxt").read_text().splitlines()[finding.line - 1]
    )


def test_a_batcher_on_dali_voids_the_per_request_limit(gpu_copy: Path):
    edit_config(gpu_copy / "dali/config.pbtxt", lambda c: c.dynamic_batching.SetInParent())
    [finding] = validate_repository(load_repository(gpu_copy))
    assert "more than the DALI budget" in finding.message


def test_two_dali_instances_per_gpu_double_the_need(gpu_copy: Path):
    """What hardening.md once suggested; the DALI backend advises one instance per GPU."""
    edit_config(
        gpu_copy / "dali/config.pbtxt",
        lambda c: c.instance_group.add(count=2, kind=mc.ModelInstanceGroup.KIND_GPU),
    )
    assert memory.DecodeBound(256, 40_000_000, 4 * GB // 3, 2).bytes > 4 * GB
    [finding] = validate_repository(load_repository(gpu_copy))
    assert "2 instance(s)" in finding.message


def test_nothing_bounds_the_images_without_a_guard(gpu_copy: Path):
    edit_config(gpu_copy / "guard/config.pbtxt", lambda c: c.parameters.pop("max_pixels"))
    findings = validate_repository(load_repository(gpu_copy))
    assert any("nothing bounds the size of the images" in f.message for f in findings)


def test_a_cpu_build_has_no_budget_to_check(staged_repository: Path):
    """The committed configs (no per-request limit) stay valid: the CPU needs no budget."""
    assert json.loads((staged_repository / "build-manifest.json").read_text())["gpu"] is None
    assert validate_repository(load_repository(staged_repository), image_tag="24.09-py3") == []
