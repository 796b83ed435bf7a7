"""``tritonship build`` without exporting: sources, early refusals, when a graph is reused.

The real (random-weight) build is tested in tests/integration/test_build.py.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tritonship.errors import TritonshipError
from tritonship.fileio import sha256_file
from tritonship.repository import build
from tritonship.repository.manifest import Weights

CHECKOUT = Path(__file__).resolve().parents[3]


def test_gpu_target_without_cuda_is_a_clear_error(repo_copy: Path, monkeypatch: pytest.MonkeyPatch):
    exported: list[Path] = []
    monkeypatch.setattr(build, "build_graph", lambda repo, *a: exported.append(repo))
    with pytest.raises(TritonshipError, match="no CUDA device"):
        build.build_repository(repo_copy, weights="random", device="gpu", progress=False)
    assert exported == [], "the device is checked before anything is built"


@pytest.fixture()
def exports(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Path, str]]:
    """Record graph exports instead of running them (a new graph is b"exported")."""
    calls: list[tuple[Path, str]] = []

    def export(dest: Path, weights: str, cache_dir: Path, progress: bool = True):
        calls.append((dest, weights))
        dest.write_bytes(b"exported")
        return Weights(source=weights, graph_sha256="sha-of-export")

    monkeypatch.setattr(build.inception, "build_graph", export)
    return calls


def test_an_intact_graph_of_the_same_weights_is_reused(repo_copy: Path, exports):
    said: list[str] = []
    record = build.build_graph(repo_copy, "random", False, said.append)
    assert exports == [] and said == ["inception: reusing the random-weight graph already built"]
    assert record.graph_sha256 == sha256_file(repo_copy / "inception_graphdef/1/model.graphdef")


def test_a_tampered_graph_is_exported_again(repo_copy: Path, exports):
    graph = repo_copy / "inception_graphdef/1/model.graphdef"
    graph.write_bytes(graph.read_bytes() + b"tampered")
    record = build.build_graph(repo_copy, "random", False, lambda _: None)
    assert exports == [(graph, "random")] and record.graph_sha256 == "sha-of-export"


def test_other_weights_or_no_manifest_are_exported_again(repo_copy: Path, exports):
    graph = repo_copy / "inception_graphdef/1/model.graphdef"
    build.build_graph(repo_copy, "official", False, lambda _: None)
    (repo_copy / "build-manifest.json").unlink()
    build.build_graph(repo_copy, "random", False, lambda _: None)
    assert exports == [(graph, "official"), (graph, "random")]


def test_checkout_repository_holds_only_sources():
    repo = CHECKOUT / "model_repository"
    tracked = {p.relative_to(repo).as_posix() for p in repo.rglob("config.pbtxt")}
    assert tracked == {
        "dali/config.pbtxt",
        "inception_graphdef/config.pbtxt",
        "ensemble_dali_inception/config.pbtxt",
        "guard/config.pbtxt",
    }
    assert (repo / "guard" / "1" / "model.py").is_file(), "the guard step is a committed source"
    assert shutil.which("tritonship") or (CHECKOUT / ".venv/bin/tritonship").exists()
