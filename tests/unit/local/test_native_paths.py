"""The native engine's plan: container paths (or, said plainly, host paths), modes, refusals.

No server starts here: tests/unit/local/test_mounts.py sets the paths up for real, and
tests/integration/test_native_paths.py and test_nvidia_sagemaker.py serve through them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tritonship import cli
from tritonship.local import confine
from tritonship.local.engine import EngineError
from tritonship.local.native import NativeEngine, native_gaps
from tritonship.repository.config import load_repository

MME = {"SAGEMAKER_MULTI_MODEL": "true"}


def model(repo: Path, name: str, kind: str, steps: tuple[str, ...] = ()) -> None:
    """A model folder: ``kind`` is ``platform: X`` or ``backend: X``."""
    (repo / name / "1").mkdir(parents=True)
    step_text = "".join(
        f' step [{{ model_name: "{s}" model_version: -1 '
        'input_map { key: "INPUT0" value: "INPUT0" } '
        'output_map { key: "OUTPUT0" value: "OUTPUT0" } }]'
        for s in steps
    )
    scheduling = f"ensemble_scheduling {{{step_text} }}" if steps else ""
    (repo / name / "config.pbtxt").write_text(
        f'name: "{name}"\n{kind}\nmax_batch_size: 8\n'
        'input [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ 16 ] } ]\n'
        'output [ { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ 16 ] } ]\n'
        f"{scheduling}\n"
    )


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    model(repo, "sm_model", 'backend: "onnxruntime"')
    return repo


@pytest.fixture()
def mapped(monkeypatch):
    """As where the namespaces are allowed (the probe says so)."""
    monkeypatch.setattr(confine, "unavailable_reason", lambda: None)


@pytest.fixture()
def refused(monkeypatch):
    """The probe forced to fail: the engine falls back to host paths."""
    confine.unavailable_reason.cache_clear()
    monkeypatch.delenv(confine.DISABLE_VARIABLE, raising=False)
    monkeypatch.setattr(confine, "UNSHARE", ("false",))
    yield
    confine.unavailable_reason.cache_clear()


def engine(repo: Path, tmp_path: Path, env: dict[str, str], **kwargs) -> NativeEngine:
    return NativeEngine(repo, port=9090, sagemaker_env=env, run_dir=tmp_path / "run", **kwargs)


def test_single_model_the_server_sees_opt_ml_model(repo, tmp_path, mapped):
    native = engine(repo, tmp_path, {"SAGEMAKER_TRITON_DEFAULT_MODEL_NAME": "sm_model"})
    command = native.command()
    assert "--model-repository=/opt/ml/model/" in command
    assert "--load-model=sm_model" in command
    plan = native.path_plan()
    assert plan.binds == ((repo.resolve(), Path("/opt/ml/model/")),) and plan.dirs == ()
    assert "the server sees the container's paths: /opt/ml/model = " in native.exposure()


def test_multi_model_starts_as_the_serve_script_does(repo, tmp_path, mapped):
    models = tmp_path / "models"
    native = engine(repo, tmp_path, MME, models_dir=models)
    command = native.command()
    assert "--model-repository=/tmp/sagemaker" in command
    assert "--model-control-mode=explicit" in command
    assert not [arg for arg in command if arg.startswith("--load-model")]
    assert native.container_models_dir == "/opt/ml/models"
    plan = native.path_plan()
    assert (models.resolve(), Path("/opt/ml/models")) in plan.binds
    assert plan.dirs == (Path("/tmp/sagemaker"),)
    assert f"/opt/ml/models = {models.resolve()}" in native.exposure()
    assert "SAGEMAKER_TRITON_DEFAULT_MODEL_NAME" not in native.environment()


def test_the_models_folder_defaults_to_the_run_folder(repo, tmp_path, mapped, monkeypatch):
    monkeypatch.setenv("TRITONSHIP_RUN_DIR", str(tmp_path / "state"))
    native = engine(repo, tmp_path, MME)
    assert native.models_dir == (tmp_path / "state" / "models").resolve()


def test_refused_namespaces_fall_back_to_host_paths_and_say_so(repo, tmp_path, refused):
    single = engine(repo, tmp_path, {"SAGEMAKER_TRITON_DEFAULT_MODEL_NAME": "sm_model"})
    assert not single.confined and not single.paths_mapped
    assert f"--model-repository={repo.resolve()}" in single.command()
    banner = single.exposure()
    assert banner.startswith("WARNING: tritonserver listens on ALL network interfaces")
    assert "namespaces are not permitted here" in banner
    assert "The server sees HOST paths, not the container's" in banner

    models = tmp_path / "models"
    multi = engine(repo, tmp_path, MME, models_dir=models)
    dummy = tmp_path / "run" / "sagemaker-dummy-repository"
    assert f"--model-repository={dummy.resolve()}" in multi.command(), "never /tmp/sagemaker"
    assert multi.container_models_dir == str(models.resolve())
    assert "/opt/ml/models/... URLs cannot work" in multi.exposure()


def test_a_model_without_a_stand_in_is_refused_before_the_server_starts(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    model(repo, "resnet", 'platform: "pytorch_libtorch"')
    native = engine(repo, tmp_path, {"SAGEMAKER_TRITON_DEFAULT_MODEL_NAME": "resnet"})
    monkeypatch.setattr(native, "_spawn", lambda *a: pytest.fail("the server was started"))
    with pytest.raises(EngineError) as refusal:
        native.start()
    assert "model 'resnet' (backend 'pytorch'" in str(refusal.value)
    assert "tritonship serve --engine docker" in str(refusal.value.hint)


def test_only_the_models_serve_loads_count(tmp_path):
    repo = tmp_path / "repo"
    model(repo, "pipeline", 'platform: "ensemble"', steps=("step",))
    model(repo, "step", 'backend: "identity"')
    model(repo, "unused", 'backend: "openvino"')
    model(repo, "saved", 'platform: "tensorflow_savedmodel"')
    loaded = {"SAGEMAKER_TRITON_DEFAULT_MODEL_NAME": "pipeline"}
    configs = load_repository(repo)
    assert native_gaps(configs, loaded) == [], "the ensemble and its identity step run natively"
    every = {str(gap) for gap in native_gaps(configs, {})}
    assert every == {
        "model 'unused' (backend 'openvino': no CPU stand-in for it here)",
        "model 'saved' (backend 'tensorflow': the TensorFlow stand-in loads GraphDefs only)",
    }
    assert len(native_gaps(configs, {**loaded, **MME})) == 2, "multi-model: every model counts"


def test_validate_notes_what_the_native_engine_cannot_run(tmp_path, capsys):
    repo = tmp_path / "repo"
    model(repo, "fil_model", 'backend: "fil"')
    (repo / "fil_model" / "1" / "xgboost.json").write_text("{}")
    code = cli.main(["validate", "--repo", str(repo)])
    captured = capsys.readouterr()
    assert code == 0, captured.out + captured.err
    assert "note: the native engine cannot serve model 'fil_model' (backend 'fil'" in captured.err
    assert "tritonship serve --engine docker" in captured.err
    assert "1 model OK" in captured.out
