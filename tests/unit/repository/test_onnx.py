"""``build --format onnx`` without the Keras export: a tiny graph with Inception's contract.

The conversion, the contract check, the parity check, the generated config, the ensemble
rewiring, the manifest, reuse, and the repository that results (validate for 26.05-py3,
package with the newest tag) all run here on a graph of a few nodes; the real Inception
conversion and its parity on photos are in tests/integration/test_onnx.py.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from tests.unit.repository.test_inception import small_graph
from tritonship import cli
from tritonship.artifact.package import package_repository
from tritonship.errors import ContractError, UsageError
from tritonship.paths import MANIFEST_NAME
from tritonship.repository import onnx as onnx_build
from tritonship.repository.build import build_repository, resolve_format
from tritonship.repository.config import load_repository
from tritonship.repository.manifest import Weights
from tritonship.repository.validate import validate_repository

SMALL = small_graph()


@pytest.fixture()
def tiny_source(monkeypatch: pytest.MonkeyPatch):
    """Every ONNX build converts the tiny graph instead of the source's (placeholder) one."""
    calls: list[str] = []

    def fake_source_graph(source, weights, manifest, progress):
        calls.append(weights)
        return SMALL, Weights(source=weights, graph_sha256=hashlib.sha256(SMALL).hexdigest())

    monkeypatch.setattr(onnx_build, "source_graph", fake_source_graph)
    return calls


@pytest.fixture(scope="module")
def onnx_repository(staged_repository: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The staged TensorFlow repository built as ONNX once (tiny graph)."""
    patch = pytest.MonkeyPatch()
    patch.setattr(
        onnx_build,
        "source_graph",
        lambda *a: (SMALL, Weights(source="random", graph_sha256="tiny")),
    )
    try:
        repo = tmp_path_factory.mktemp("onnx") / "model_repository_onnx"
        build_repository(repo, "random", progress=False, fmt="onnx", source=staged_repository)
    finally:
        patch.undo()
    return repo


def config(path: Path) -> mc.ModelConfig:
    return text_format.Parse(path.read_text(), mc.ModelConfig())


def test_the_onnx_repository_replaces_the_classifier_and_nothing_else(
    onnx_repository: Path, staged_repository: Path
):
    models = load_repository(onnx_repository).models
    source = load_repository(staged_repository).models
    assert set(models) == set(source) - {"inception_graphdef"} | {"inception_onnx"}
    assert (onnx_repository / "inception_onnx/1/model.onnx").is_file()
    assert (onnx_repository / "inception_onnx/inception_labels.txt").read_text().count("\n") == 1001
    for name in set(models) - {"inception_onnx", "ensemble_dali_inception"}:
        assert models[name].config == source[name].config, name


def test_the_ensemble_changes_only_in_its_classifier_step(
    onnx_repository: Path, staged_repository: Path
):
    before = load_repository(staged_repository).models["ensemble_dali_inception"].config
    after = load_repository(onnx_repository).models["ensemble_dali_inception"].config
    old = [s for s in before.ensemble_scheduling.step if s.model_name == "inception_graphdef"]
    new = [s for s in after.ensemble_scheduling.step if s.model_name == "inception_onnx"]
    assert len(old) == len(new) == 1
    assert dict(new[0].input_map) == {"input": old[0].input_map["input"]}
    assert dict(new[0].output_map) == {
        "probabilities": old[0].output_map["InceptionV3/Predictions/Softmax"]
    }
    others = [s for s in after.ensemble_scheduling.step if s.model_name != "inception_onnx"]
    assert others == [s for s in before.ensemble_scheduling.step if s not in old]
    assert list(after.input) == list(before.input) and list(after.output) == list(before.output)


def test_the_generated_config_keeps_batching_and_tunes_instances_and_threads(
    onnx_repository: Path, staged_repository: Path
):
    tf = config(staged_repository / "inception_graphdef/config.pbtxt")
    generated = config(onnx_repository / "inception_onnx/config.pbtxt")
    assert generated.platform == "onnxruntime_onnx" and generated.name == "inception_onnx"
    assert generated.max_batch_size == tf.max_batch_size
    [group] = generated.instance_group
    assert group.count == onnx_build.ORT_INSTANCES and group.kind == tf.instance_group[0].kind
    assert {k: v.string_value for k, v in generated.parameters.items()} == (
        onnx_build.ORT_PARAMETERS
    )
    assert generated.dynamic_batching == tf.dynamic_batching
    assert [t.name for t in generated.input] == ["input"]
    assert [(t.name, t.label_filename) for t in generated.output] == [
        ("probabilities", "inception_labels.txt")
    ]
    assert list(generated.input[0].dims) == list(tf.input[0].dims)


def test_manifest_records_format_opset_and_converter(onnx_repository: Path):
    manifest = json.loads((onnx_repository / MANIFEST_NAME).read_text())
    record = manifest["classifier"]
    assert record["format"] == "onnx" and record["opset"] == 17 and record["ir_version"] == 8
    assert record["converter"].startswith("tf2onnx 1.")
    assert record["parity"]["max_abs_diff"] <= record["parity"]["atol"]
    assert record["renamed_from"] == {
        "input": "input:0",
        "output": "InceptionV3/Predictions/Softmax:0",
    }
    assert record["sha256"] == manifest["files"]["inception_onnx/1/model.onnx"]
    assert manifest["labels"]["file"] == "inception_onnx/inception_labels.txt"


def test_validates_for_every_tag_and_packages_for_the_newest(onnx_repository: Path, tmp_path: Path):
    for tag in ("24.09-py3", "25.04-py3", "26.05-py3"):
        assert validate_repository(load_repository(onnx_repository), image_tag=tag) == [], tag
    result = package_repository(
        onnx_repository, tmp_path / "m.tar.gz", allow_random_weights=True, progress=False
    )
    assert result.manifest.image.tag == "26.05-py3"
    assert "onnxruntime" in (result.manifest.image.chosen or "")
    assert result.manifest.classifier is not None and result.manifest.classifier.format == "onnx"


def test_rebuild_reuses_the_model_and_removes_a_tensorflow_classifier(
    onnx_repository: Path, staged_repository: Path, tmp_path: Path, tiny_source: list[str]
):
    repo = tmp_path / "onnx"
    shutil.copytree(onnx_repository, repo)
    shutil.copytree(staged_repository / "inception_graphdef", repo / "inception_graphdef")
    model = repo / "inception_onnx/1/model.onnx"
    before = model.stat().st_mtime_ns
    messages: list[str] = []
    build_repository(
        repo, "random", progress=False, say=messages.append, fmt="onnx", source=staged_repository
    )
    assert tiny_source == [] and any("reusing" in m for m in messages)
    assert model.stat().st_mtime_ns == before
    assert not (repo / "inception_graphdef").exists(), "never two classifiers"
    model.write_bytes(b"tampered")
    build_repository(repo, "random", progress=False, fmt="onnx", source=staged_repository)
    assert tiny_source == ["random"] and model.stat().st_size > 1000


def test_the_accelerator_goes_into_the_generated_config(
    staged_repository: Path, tmp_path: Path, tiny_source: list[str]
):
    repo = tmp_path / "onnx"
    manifest = build_repository(
        repo,
        "random",
        progress=False,
        fmt="onnx",
        source=staged_repository,
        accelerator="tensorrt:fp16",
    )
    [accelerator] = config(
        repo / "inception_onnx/config.pbtxt"
    ).optimization.execution_accelerators.gpu_execution_accelerator
    assert accelerator.name == "tensorrt"
    assert dict(accelerator.parameters) == {
        "precision_mode": "FP16",
        "max_workspace_size_bytes": "1073741824",
        # one engine for batch 1 to max_batch_size, tuned for 16, built at warmup
        "trt_profile_min_shapes": "input:1x299x299x3",
        "trt_profile_opt_shapes": "input:16x299x299x3",
        "trt_profile_max_shapes": "input:256x299x299x3",
        # kept on the container's disk: the model folder is read-only on SageMaker
        "trt_engine_cache_enable": "1",
        "trt_engine_cache_path": "/tmp/tritonship-trt-engines",
    }
    [warmup] = config(repo / "inception_onnx/config.pbtxt").model_warmup
    assert list(warmup.inputs) == ["input"] and warmup.inputs["input"].HasField("zero_data")
    assert manifest.classifier is not None
    assert manifest.classifier.accelerator == "tensorrt (FP16)"
    assert manifest.to_json()["classifier"]["accelerator"] == "tensorrt (FP16)", "JSON as before"
    assert validate_repository(load_repository(repo), image_tag="26.05-py3") == []


def test_building_onnx_into_the_source_is_refused(staged_repository: Path, tmp_path: Path):
    repo = tmp_path / "m"
    shutil.copytree(staged_repository, repo)
    with pytest.raises(UsageError, match="is the source repository"):
        build_repository(repo, "random", progress=False, fmt="onnx", source=repo)
    assert (repo / "inception_graphdef").is_dir()


@pytest.mark.parametrize(
    ("fmt", "accelerator", "message"),
    [
        ("tf", "tensorrt", "--accelerator applies to the ONNX build only"),
        ("onnx", "tensorrt:int8", "'tensorrt:int8' is not offered"),
        ("pt", None, "unknown format 'pt'"),
    ],
)
def test_bad_format_or_accelerator_is_refused_before_any_work(
    staged_repository: Path, tmp_path: Path, fmt: str, accelerator: str | None, message: str
):
    repo = tmp_path / "m"
    with pytest.raises(UsageError, match=message):
        build_repository(
            repo,
            "random",
            progress=False,
            fmt=fmt,
            source=staged_repository,
            accelerator=accelerator,
        )


def test_tf_build_needs_the_tensorflow_config(onnx_repository: Path, tmp_path: Path):
    repo = tmp_path / "onnx"
    shutil.copytree(onnx_repository, repo)
    with pytest.raises(UsageError, match="no inception_graphdef/config.pbtxt"):
        build_repository(repo, "random", progress=False, fmt="tf")


@pytest.mark.parametrize(
    ("fmt", "tag", "expected"),
    [
        ("auto", None, "tf"),
        ("auto", "24.09-py3", "tf"),
        ("auto", "25.02-py3", "tf"),
        ("auto", "25.04-py3", "onnx"),
        ("auto", "26.05-py3", "onnx"),
        ("onnx", "24.09-py3", "onnx"),
        ("onnx", None, "onnx"),
    ],
)
def test_auto_format_follows_the_image(fmt: str, tag: str | None, expected: str):
    assert resolve_format(fmt, tag) == expected


def test_tf_format_for_an_image_without_tensorflow_is_refused():
    with pytest.raises(UsageError, match="26.05-py3 has no TensorFlow backend"):
        resolve_format("tf", "26.05-py3")


def test_cli_build_onnx_for_a_new_image_validates_it(
    staged_repository: Path, tmp_path: Path, tiny_source: list[str], capsys
):
    repo = tmp_path / "onnx"
    argv = ["build", "--repo", str(repo), "--source", str(staged_repository)]
    code = cli.main([*argv, "--weights", "random", "--image-tag", "26.05-py3", "--quiet"])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert "ONNX classifier inception_onnx (opset 17, tf2onnx" in out
    assert "format onnx: ONNX for image 26.05-py3" in err
    assert "validate --image-tag 26.05-py3: clean" in err


# --- conversion on its own -----------------------------------------------------------------


def test_conversion_renames_the_tensors_and_matches_tensorflow():
    model_bytes, record = onnx_build.convert_checked(SMALL)
    opset, _, opsets = onnx_build.check_contract(model_bytes)
    assert opset == record.opset == opsets["ai.onnx"] == 17
    assert record.parity.max_abs_diff < 1e-6
    session = onnx_build.session(model_bytes)
    assert [(i.name, i.shape) for i in session.get_inputs()] == [("input", ["batch", 299, 299, 3])]
    assert [(o.name, o.shape) for o in session.get_outputs()] == [
        ("probabilities", ["batch", 1001])
    ]


def test_a_model_with_other_tensors_breaks_the_contract():
    renamed = small_graph(output_name="InceptionV3/Predictions/Softmax", classes=1000)
    with pytest.raises(ContractError, match="expected"):
        onnx_build.check_contract(onnx_build.convert(renamed))
    with pytest.raises(ContractError, match="not a valid ONNX model"):
        onnx_build.check_contract(b"not onnx")


def test_parity_catches_a_model_that_computes_something_else():
    other = onnx_build.convert(small_graph(softmax=False))
    batch = np.random.default_rng(1).uniform(-1, 1, (2, 299, 299, 3)).astype(np.float32)
    assert onnx_build.parity(SMALL, other, batch) > 1e-3


def test_auto_weights_follow_the_source_build(
    staged_repository: Path, tmp_path: Path, tiny_source: list[str]
):
    manifest = build_repository(
        tmp_path / "onnx", "auto", progress=False, fmt="onnx", source=staged_repository
    )
    assert tiny_source == ["random"], "the source's weights, no download attempted"
    assert manifest.weights.source == "random"
