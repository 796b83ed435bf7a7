"""``tritonship build`` for real (random-weight Keras export): artifacts, manifest, reuse, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tritonship import cli
from tritonship.fileio import sha256_file
from tritonship.paths import DALI_PIPELINE_SOURCE
from tritonship.repository.build import build_repository
from tritonship.repository.manifest import read_manifest


def test_manifest_records_provenance_dali_and_every_file(built_repository: Path):
    built = read_manifest(built_repository)
    assert built is not None
    assert built.to_json() == json.loads((built_repository / "build-manifest.json").read_text())
    manifest = built.to_json()
    assert manifest["weights"]["source"] == "random"
    graph = built_repository / "inception_graphdef/1/model.graphdef"
    assert manifest["weights"]["graph_sha256"] == sha256_file(graph)
    dali = manifest["dali"]
    assert dali["mode"] == "autoserialize"
    assert dali["build_dali_version"]
    assert dali["targets"]["cpu"]["verified"] is True
    assert manifest["device_target"] == "cpu"
    assert manifest["labels"]["lines"] == 1001
    for rel, digest in manifest["files"].items():
        assert sha256_file(built_repository / rel) == digest, rel
    assert "dali/1/dali.py" in manifest["files"]


def test_dali_py_is_the_one_pipeline_definition_unchanged(built_repository: Path):
    assert (built_repository / "dali/1/dali.py").read_bytes() == DALI_PIPELINE_SOURCE.read_bytes()
    assert not (built_repository / "dali/1/model.dali").exists(), "it would shadow dali.py"


def test_ensemble_version_folder_exists(built_repository: Path):
    assert (built_repository / "ensemble_dali_inception/1").is_dir()


def test_rebuild_reuses_an_intact_graph_and_replaces_a_tampered_one(repo_copy: Path):
    graph = repo_copy / "inception_graphdef/1/model.graphdef"
    before = graph.stat().st_mtime_ns
    messages: list[str] = []
    build_repository(repo_copy, weights="random", progress=False, say=messages.append)
    assert graph.stat().st_mtime_ns == before
    assert any("reusing" in m for m in messages)
    graph.write_bytes(b"tampered")
    build_repository(repo_copy, weights="random", progress=False)
    assert graph.stat().st_size > 50_000_000


def test_cli_build_prints_a_summary_and_warns_about_random_weights(
    repo_copy: Path, capsys: pytest.CaptureFixture[str]
):
    code = cli.main(["build", "--repo", str(repo_copy), "--weights", "random", "--quiet"])
    out, err = capsys.readouterr()
    assert code == 0
    assert "random weights" in out and "target cpu" in out
    assert "meaningless" in err
    assert json.loads((repo_copy / "build-manifest.json").read_text())["weights"]["source"]
