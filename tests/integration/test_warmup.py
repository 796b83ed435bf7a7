"""Warmup for real: the native engine's tritonserver (2.51) warms every step up on CPU.

Triton runs each ``model_warmup`` sample on every instance before it reports the model
ready, and fails the load when a sample fails (core r24.09 ``src/backend_model_instance.cc``
L599-668). The CPU stand-ins answer warmup requests as they answer any other, so the
shipped warmup (a real JPEG for the guard and DALI, zeros for the classifier) runs here as
on the GPU image; only what it initialises there (CUDA, nvJPEG, cuDNN) differs.

``--device gpu`` configs load on the same stand-ins: a GPU build, made here without a GPU,
serves and answers as the shipped repository does.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.integration.conftest import Endpoint
from tests.support.load import invoke
from tritonship.local.engine import EngineError, free_port
from tritonship.local.native import NativeEngine
from tritonship.repository.build import build_repository
from tritonship.repository.config import load_repository
from tritonship.repository.validate import validate_repository
from tritonship.sagemaker.settings import packaged_env
from tritonship.samples import PHOTOS, photo_jpeg

#: Triton's own log line for each warmup run (core backend_model_instance.cc L608-610),
#: printed at verbose level 1.
WARMUP_LINE = "model '{model}' instance {instance} is running warmup sample '{sample}'"


def linked_copy(source: Path, dest: Path) -> Path:
    """A copy whose big files are hard links (never written through: replace, not edit)."""
    shutil.copytree(source, dest, copy_function=os.link)
    return dest


def test_every_step_warms_up_before_the_server_turns_ready(built_repository: Path, tmp_path):
    env = {**packaged_env(built_repository).values, "SAGEMAKER_TRITON_LOG_VERBOSE": "1"}
    engine = NativeEngine(
        built_repository, port=free_port(), sagemaker_env=env, run_dir=tmp_path / "run"
    )
    with engine:
        log = Path(engine.log_location).read_text(encoding="utf-8", errors="replace")
        rows = invoke(engine.url, [photo_jpeg("chelsea")])
    for model, instance, sample in (
        ("guard", "guard_0_0", "chelsea_jpeg"),
        ("dali", "dali_0", "chelsea_jpeg"),
        ("inception_graphdef", "inception_graphdef_0_0", "zeros"),
    ):
        assert WARMUP_LINE.format(model=model, instance=instance, sample=sample) in log, model
    assert "failed to run warmup sample" not in log
    assert rows.shape == (1, 1001) and np.isclose(rows.sum(), 1.0, atol=1e-4)


def test_a_broken_warmup_jpeg_fails_the_load_with_a_clear_message(
    built_repository: Path, tmp_path: Path
):
    """Its header is intact (the guard passes it), its body is not: DALI cannot decode it."""
    repo = linked_copy(built_repository, tmp_path / "repo")
    sample = repo / "dali/warmup/chelsea.jpg"
    data = bytearray(sample.read_bytes())
    data[2000:] = bytes(len(data) - 2000)  # same size: Triton's size check still passes
    sample.unlink()  # a hard link: replace it, never write through to the session's
    sample.write_bytes(bytes(data))
    assert validate_repository(load_repository(repo)) == [], (
        "only running it shows the file is broken"
    )
    engine = NativeEngine(repo, port=free_port(), run_dir=tmp_path / "run")
    with pytest.raises(EngineError) as caught, engine:
        pass
    text = str(caught.value)
    assert "the server exited before it was ready" in text, text
    assert "failed to run warmup sample 'chelsea_jpeg'" in text, text
    assert "dali" in text and "Runtime error" in text, text


def test_a_missing_warmup_file_is_found_by_validate_and_by_the_server(
    built_repository: Path, tmp_path: Path
):
    repo = linked_copy(built_repository, tmp_path / "repo")
    (repo / "guard/warmup/chelsea.jpg").unlink()
    [finding] = validate_repository(load_repository(repo))
    assert "failed to open text file for read" in finding.message
    engine = NativeEngine(repo, port=free_port(), run_dir=tmp_path / "run")
    with pytest.raises(EngineError) as caught, engine:
        pass
    assert "failed to open text file for read" in str(caught.value)


# --- a GPU build, served by the CPU stand-ins -------------------------------------------------


@pytest.fixture(scope="module")
def gpu_repository(built_repository: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``build --device gpu --instance-type ml.g4dn.xlarge --skip-cuda-check`` of the session's."""
    repo = tmp_path_factory.mktemp("gpu") / "model_repository_gpu"
    build_repository(
        repo,
        "random",
        device="gpu",
        progress=False,
        source=built_repository,
        instance_type="ml.g4dn.xlarge",
        cuda_check=False,
    )
    return repo


def test_the_gpu_build_reuses_the_graph_and_validates_for_24_09(
    gpu_repository: Path, built_repository: Path
):
    graph = "inception_graphdef/1/model.graphdef"
    assert (gpu_repository / graph).stat().st_ino == (built_repository / graph).stat().st_ino
    assert validate_repository(load_repository(gpu_repository), image_tag="24.09-py3") == []


def test_the_gpu_build_serves_on_the_cpu_stand_ins_as_the_shipped_one(
    gpu_repository: Path, endpoint: Endpoint, tmp_path: Path
):
    """Its num_threads, guard limit and gpu_io load; on a CPU instance gpu_io is ignored."""
    photos = [photo_jpeg(name) for name in PHOTOS]
    with NativeEngine(gpu_repository, port=free_port(), run_dir=tmp_path / "run") as engine:
        rows = invoke(engine.url, photos)
    np.testing.assert_allclose(rows, invoke(endpoint.url, photos), atol=1e-5)
