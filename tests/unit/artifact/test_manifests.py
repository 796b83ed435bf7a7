"""The build and package manifests as typed records: same JSON, older forms still load."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tritonship.artifact.manifest import (
    PackageManifest,
    load_package,
    manifest_path_for,
    parse_package_manifest,
)
from tritonship.artifact.package import PackageResult
from tritonship.cloud.planning import build_plan
from tritonship.cloud.state import PromoteOptions
from tritonship.records import RecordError
from tritonship.repository.manifest import BuildManifest, Classifier, read_manifest

DATA = Path(__file__).resolve().parents[2] / "data" / "manifests"
ROLE = "arn:aws:iam::123456789012:role/SageMakerExecution"


def stored(name: str) -> dict:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


def test_a_build_manifest_round_trips_to_the_same_json(staged_repository: Path) -> None:
    data = json.loads((staged_repository / "build-manifest.json").read_text())
    manifest = read_manifest(staged_repository)
    assert manifest is not None and manifest.to_json() == data
    assert manifest.weights.extra == {"staged": True}, "unknown keys are kept as read"


def test_the_first_builds_manifest_still_loads_and_round_trips() -> None:
    data = stored("build-manifest.0bf0289.json")
    manifest = BuildManifest.from_json(data)
    assert manifest.classifier is None and manifest.gpu is None
    assert manifest.dali.autoserialized_bytes is None
    assert manifest.weights.source == "random" and manifest.weights.seed == 0
    assert manifest.to_json() == {**data, "gpu": None, "classifier": None}


def test_a_package_manifest_round_trips_to_the_file_it_wrote(packaged: PackageResult) -> None:
    data = json.loads(packaged.manifest_path.read_text())
    assert packaged.manifest.to_json() == data
    assert packaged.manifest.to_text() == packaged.manifest_path.read_text()
    assert load_package(packaged.archive) == packaged.manifest


@pytest.mark.parametrize("name", ["model.manifest.eac5504.json", "model.manifest.0c29b15.json"])
def test_older_package_manifests_load_with_what_their_fields_meant(name: str) -> None:
    data = stored(name)
    manifest = parse_package_manifest(data)
    assert manifest.target_model == manifest.default_model == "ensemble_dali_inception"
    assert manifest.models == [] and manifest.invocation is None and manifest.build is None
    assert manifest.weights_source == "random"
    assert manifest.archive is not None and manifest.archive.size == 87438357
    assert PackageManifest.from_json(data).to_json() == {
        **data,
        **{k: None for k in ("target_model", "invocation", "build", "provenance")},
        **{k: v for k, v in (("models", []), ("environment_origins", {}))},
        **({} if "classifier" in data else {"classifier": None}),
    }


def test_promote_plans_an_archive_with_a_manifest_from_before_multi_model(
    packaged: PackageResult, tmp_path: Path
) -> None:
    old = tmp_path / "model.tar.gz"
    shutil.copyfile(packaged.archive, old)
    data = stored("model.manifest.0c29b15.json")
    data["archive"] = packaged.manifest.to_json()["archive"]
    data["directories"] = packaged.manifest.directories
    manifest_path_for(old).write_text(json.dumps(data))
    plan = build_plan(PromoteOptions("demo", "models", ROLE, archive=old), "us-east-1")
    assert plan.smoke is not None and plan.smoke.description == "scikit-image's cat photo as JSON"
    assert plan.env_origins["SAGEMAKER_TRITON_DEFAULT_MODEL_NAME"] == "package manifest"
    mme = build_plan(
        PromoteOptions("demo", "models", ROLE, multi_model=True, archives=(old,)), "us-east-1"
    )
    assert mme.smoke is not None
    assert mme.smoke.target_model == "model.tar.gz" and not mme.smoke.outputs


def test_an_onnx_classifier_keeps_its_keys_in_one_object() -> None:
    record = {
        "format": "onnx",
        "platform": "onnxruntime_onnx",
        "model": "inception_onnx",
        "file": "inception_onnx/1/model.onnx",
        "opset": 17,
        "ir_version": 8,
        "opsets": {"ai.onnx": 17},
        "converter": "tf2onnx 1.17.0",
        "onnx": "1.23.2",
        "tensorflow": "2.20.0",
        "parity": {"max_abs_diff": 1e-7, "atol": 1e-4, "batch": 2},
        "seconds": 40.1,
        "sha256": "ab",
        "bytes": 95,
        "tensors": {"input": "input", "output": "probabilities"},
        "renamed_from": {"input": "input:0", "output": "InceptionV3/Predictions/Softmax:0"},
        "accelerator": None,
        "ensembles": ["ensemble_dali_inception"],
        "source": "model_repository",
    }
    classifier = Classifier.from_json(record)
    assert classifier.conversion is not None and classifier.conversion.parity.batch == 2
    assert classifier.onnx_model is not None and classifier.onnx_model.size == 95
    assert classifier.accelerator is None and classifier.to_json() == record
    tf = Classifier.from_json({k: record[k] for k in ("format", "platform", "model", "file")})
    assert tf.conversion is None and tf.onnx_model is None and "accelerator" not in tf.to_json()


def test_a_manifest_without_a_required_field_is_refused() -> None:
    data = stored("build-manifest.0bf0289.json")
    del data["weights"]
    with pytest.raises(RecordError, match="BuildManifest: no 'weights'"):
        BuildManifest.from_json(data)
    with pytest.raises(RecordError, match="expected a JSON object"):
        BuildManifest.from_json([])
