"""package for any repository: without a build manifest, and one archive per target model.

The foreign repository is NVIDIA's ``sm_model`` (an ONNX add/sub model, tests/support/
foreign.py); the multi-model cases split the staged Inception repository and a repository of
two ensembles that share a model, beside one model no ensemble uses.
"""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path

import pytest

from tests.support.foreign import NAME, add_sub_repository, ensembles_repository, write_ensemble
from tritonship.artifact.manifest import load_package
from tritonship.artifact.multimodel import package_multi_model
from tritonship.artifact.package import PackageError, PackageResult, package_repository
from tritonship.cli import main
from tritonship.fileio import sha256_file
from tritonship.repository.config import load_repository
from tritonship.repository.validate import validate_repository
from tritonship.sagemaker.settings import EnvSources, sagemaker_env

DEFAULT = "SAGEMAKER_TRITON_DEFAULT_MODEL_NAME"


def names(archive: Path) -> list[str]:
    with tarfile.open(archive, "r:gz") as tar:
        return [info.name for info in tar.getmembers()]


def extract(archive: Path, dest: Path) -> Path:
    with tarfile.open(archive, "r:gz") as tar:
        tar.extractall(dest, filter="data")
    return dest


@pytest.fixture()
def foreign(tmp_path: Path) -> Path:
    """NVIDIA's sm_model repository: one ONNX model folder, no build manifest."""
    return add_sub_repository(tmp_path / "foreign")


@pytest.fixture(scope="module")
def ensembles(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two top-level ensembles sharing ``add_a``, and ``lone`` (read-only use)."""
    return ensembles_repository(tmp_path_factory.mktemp("ensembles") / "repo")


@pytest.fixture(scope="module")
def split(ensembles: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, PackageResult]:
    """The ensembles repository packaged for a multi-model endpoint, by archive name."""
    out = tmp_path_factory.mktemp("models")
    results = package_multi_model(ensembles, out, progress=False)
    return {result.archive.name: result for result in results}


# --- a repository tritonship did not build ---------------------------------------------------


def test_a_foreign_repository_is_packaged_and_says_it_has_no_build_manifest(
    foreign: Path, tmp_path: Path
) -> None:
    env = sagemaker_env(EnvSources(pairs=("SAGEMAKER_TRITON_LOG_VERBOSE=1",)), foreign, {})
    result = package_repository(foreign, tmp_path / "dist" / "model.tar.gz", env=env)
    manifest = load_package(result.archive).to_json()
    assert manifest["build"] is None and manifest["weights"] is None
    assert manifest["provenance"].startswith("no build manifest: foreign has no build-manifest")
    assert manifest["image"]["backends_needed"] == ["onnxruntime"]
    assert manifest["image"]["chosen"] == "the newest SageMaker Triton image with onnxruntime"
    assert (manifest["default_model"], manifest["target_model"]) == (NAME, NAME)
    assert manifest["environment"] == {"SAGEMAKER_TRITON_LOG_VERBOSE": "1"}
    assert manifest["environment_origins"] == {"SAGEMAKER_TRITON_LOG_VERBOSE": "--env"}
    assert manifest["invocation"] == {
        "model": NAME,
        "inputs": [
            {"name": "INPUT0", "datatype": "INT32", "shape": [-1, 16]},
            {"name": "INPUT1", "datatype": "INT32", "shape": [-1, 16]},
        ],
        "outputs": ["OUTPUT0", "OUTPUT1"],
    }
    extracted = extract(result.archive, tmp_path / "opt-ml-model")
    assert validate_repository(load_repository(extracted), image_tag=manifest["image"]["tag"]) == []
    for rel, digest in manifest["files"].items():
        assert sha256_file(extracted / rel) == digest == sha256_file(foreign / rel)


def test_the_default_model_recorded_is_the_one_the_env_names(
    ensembles: Path, tmp_path: Path
) -> None:
    env = sagemaker_env(EnvSources(pairs=(f"{DEFAULT}=chain",)), ensembles, {})
    manifest = package_repository(ensembles, tmp_path / "m.tar.gz", env=env).manifest.to_json()
    assert manifest["default_model"] == "chain"
    assert manifest["environment_origins"][DEFAULT] == "--env"
    assert manifest["invocation"]["model"] == "chain"
    assert manifest["target_model"] is None, "two ensembles: the MME frontend cannot choose"


def test_cli_packages_a_foreign_repository(
    foreign: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "model.tar.gz"
    assert main(["package", "--repo", str(foreign), "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr()
    assert f"{out}: " in printed.out and "sha256" in printed.out
    assert "NOTICE: no build manifest" in printed.err
    assert "random weights" not in printed.err


def test_a_build_manifest_still_guards_random_weights(
    staged_repository: Path, tmp_path: Path
) -> None:
    with pytest.raises(PackageError, match="--allow-random-weights"):
        package_repository(staged_repository, tmp_path / "m.tar.gz")
    manifest = package_repository(
        staged_repository, tmp_path / "m.tar.gz", allow_random_weights=True, progress=False
    ).manifest.to_json()
    assert manifest["build"]["manifest"] == "build-manifest.json"
    assert manifest["weights"]["source"] == "random"
    assert manifest["target_model"] == "ensemble_dali_inception"


# --- one archive per target model ----------------------------------------------------------


def test_each_top_level_ensemble_gets_its_models_and_an_unused_model_its_own(
    split: dict[str, PackageResult],
) -> None:
    assert sorted(split) == ["chain.tar.gz", "lone.tar.gz", "single.tar.gz"]
    models = {name: result.manifest.models for name, result in split.items()}
    assert models == {
        "chain.tar.gz": ["add_a", "add_b", "chain"],
        "lone.tar.gz": ["lone"],
        "single.tar.gz": ["add_a", "single"],
    }
    for name, result in split.items():
        target = name.removesuffix(".tar.gz")
        assert result.manifest.target_model == result.manifest.default_model == target
        assert result.manifest.environment[DEFAULT] == target
        assert "SAGEMAKER_MULTI_MODEL" not in result.manifest.environment
        assert "README.txt" in names(result.archive), "root files travel with every archive"
        assert load_package(result.archive) == result.manifest
    shared = "add_a/1/model.onnx"
    assert (
        split["single.tar.gz"].manifest.files[shared]
        == (split["chain.tar.gz"].manifest.files[shared])
    )


def test_every_archive_is_a_repository_that_serves_its_target(
    split: dict[str, PackageResult], tmp_path: Path
) -> None:
    for name, result in split.items():
        extracted = extract(result.archive, tmp_path / name)
        assert sorted(p.name for p in extracted.iterdir() if p.is_dir()) == (result.manifest.models)
        assert (
            validate_repository(load_repository(extracted), image_tag=result.manifest.image.tag)
            == []
        )


def test_multi_model_archives_are_deterministic(
    ensembles: Path, split: dict[str, PackageResult], tmp_path: Path
) -> None:
    again = package_multi_model(ensembles, tmp_path, progress=False)
    for result in again:
        assert result.archive.read_bytes() == split[result.archive.name].archive.read_bytes()


def test_the_built_ensemble_becomes_one_archive_with_its_build_manifest(
    staged_repository: Path, tmp_path: Path
) -> None:
    (result,) = package_multi_model(
        staged_repository, tmp_path, allow_random_weights=True, progress=False
    )
    assert result.archive == tmp_path / "ensemble_dali_inception.tar.gz"
    manifest = result.manifest.to_json()
    assert manifest["models"] == ["dali", "ensemble_dali_inception", "guard", "inception_graphdef"]
    assert manifest["target_model"] == "ensemble_dali_inception"
    assert manifest["weights"]["source"] == "random"
    assert "build-manifest.json" in names(result.archive)


def test_a_repository_without_ensembles_gives_one_archive_per_model(tmp_path: Path) -> None:
    repo = add_sub_repository(tmp_path / "repo", ("first", "second"))
    results = package_multi_model(repo, tmp_path / "out", progress=False, suffix="_v2")
    assert [r.archive.name for r in results] == ["first_v2.tar.gz", "second_v2.tar.gz"]
    assert [r.manifest.models for r in results] == [["first"], ["second"]]


def test_an_archive_with_two_ensembles_is_refused(ensembles: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(ensembles, repo)
    outer = [("single", {"INPUT0": "INPUT0", "INPUT1": "INPUT1"}, {"SUM": "A", "DIFF": "B"})]
    write_ensemble(repo, "outer", outer, ("A", "B"))
    with pytest.raises(PackageError, match="archive of outer would hold the ensemble.s. single"):
        package_multi_model(repo, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_secrets_and_clutter_stay_out_of_every_archive(ensembles: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(ensembles, repo)
    (repo / "add_a" / ".env").write_text("AWS_SECRET=planted\n")
    (repo / "lone" / "1" / "model.onnx~").write_text("editor backup")
    results = package_multi_model(repo, tmp_path / "out", progress=False)
    for result in results:
        assert not any(n.endswith((".env", "~")) for n in names(result.archive))
    (repo / "add_b" / "notes.txt").write_text("aws_secret_access_key = abc\n")
    with pytest.raises(PackageError, match="notes.txt looks like it holds a credential"):
        package_multi_model(repo, tmp_path / "again", progress=False)
    assert not (tmp_path / "again").exists()


def test_cli_package_multi_model(
    ensembles: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "models"
    out.mkdir()
    (out / "old.tar.gz").write_bytes(b"from an earlier run")
    argv = ["package", "--multi-model", "--repo", str(ensembles), "--out", str(out), "--quiet"]
    assert main(argv) == 0
    printed = capsys.readouterr()
    assert f"{out / 'chain.tar.gz'}: " in printed.out and "target model chain" in printed.out
    assert f"{out / 'old.tar.gz'} was not written now" in printed.err
    manifest = json.loads((out / "lone.manifest.json").read_text())
    assert manifest["build"] is None
    assert main(["package", "--repo", str(ensembles), "--suffix", "_v2"]) == 2


def test_package_multi_model_refuses_an_output_inside_the_repository(ensembles: Path) -> None:
    with pytest.raises(PackageError, match="inside the repository"):
        package_multi_model(ensembles, ensembles / "dist", progress=False)
