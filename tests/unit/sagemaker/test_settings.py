"""The one settings module: the SageMaker variables' precedence, and the other settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from tritonship.errors import UsageError
from tritonship.sagemaker import settings
from tritonship.sagemaker.settings import (
    EnvSources,
    SageMakerEnv,
    overlay,
    packaged_env,
    sagemaker_env,
)

DEFAULT = "SAGEMAKER_TRITON_DEFAULT_MODEL_NAME"
THREADS = "SAGEMAKER_TRITON_THREAD_COUNT"


@pytest.fixture()
def foreign(tmp_path: Path) -> Path:
    """A single-model repository tritonship did not build."""
    (tmp_path / "repo" / "sm_model" / "1").mkdir(parents=True)
    (tmp_path / "repo" / "sm_model" / "config.pbtxt").write_text('backend: "onnxruntime"\n')
    return tmp_path / "repo"


def test_flag_beats_file_beats_shell_beats_defaults(tmp_path: Path, foreign: Path) -> None:
    defaults = tmp_path / "defaults.env"
    defaults.write_text(f"{THREADS}=1\nSAGEMAKER_TRITON_LOG_VERBOSE=0\n")
    env_file = tmp_path / "mine.env"
    env_file.write_text(f"# mine\n{THREADS}=3\nSAGEMAKER_TRITON_LOG_INFO=true\n")
    shell = {THREADS: "2", "SAGEMAKER_TRITON_LOG_ERROR": "true", "HOME": "/root"}
    sources = EnvSources(pairs=(f"{THREADS}=4",), env_file=env_file, defaults=defaults)
    env = sagemaker_env(sources, foreign, environ=shell)
    assert env.values == {
        THREADS: "4",
        "SAGEMAKER_TRITON_LOG_VERBOSE": "0",
        "SAGEMAKER_TRITON_LOG_INFO": "true",
        "SAGEMAKER_TRITON_LOG_ERROR": "true",
    }, "only SAGEMAKER_* comes from the shell"
    assert env.origin(THREADS) == "--env"
    assert env.origin("SAGEMAKER_TRITON_LOG_INFO") == f"{env_file}:3"
    assert env.origin("SAGEMAKER_TRITON_LOG_ERROR") == "exported"
    assert env.origin("SAGEMAKER_TRITON_LOG_VERBOSE") == "packaged default"
    without_flag = sagemaker_env(EnvSources(env_file=env_file, defaults=defaults), foreign, shell)
    assert without_flag.values[THREADS] == "3"
    only_shell = sagemaker_env(EnvSources(defaults=defaults), foreign, shell)
    assert only_shell.values[THREADS] == "2"


def test_the_packaged_default_model_applies_only_where_its_folder_exists(
    foreign: Path, repo_copy: Path
) -> None:
    assert DEFAULT not in packaged_env(foreign).values, "serve then picks the only folder"
    ours = packaged_env(repo_copy)
    assert ours.default_model == "ensemble_dali_inception"
    assert ours.origin(DEFAULT) == "packaged default"


def test_an_exported_default_model_names_a_foreign_model(foreign: Path) -> None:
    env = sagemaker_env(EnvSources(), foreign, environ={DEFAULT: "sm_model"})
    assert env.default_model == "sm_model" and env.origin(DEFAULT) == "exported"


def test_multi_model_flag_sets_the_variable_and_skips_the_default(repo_copy: Path) -> None:
    env = sagemaker_env(EnvSources(multi_model=True, defaults=None), repo_copy, environ={})
    assert env.multi_model and env.values == {"SAGEMAKER_MULTI_MODEL": "true"}
    assert env.origin("SAGEMAKER_MULTI_MODEL") == "--multi-model"


@pytest.mark.parametrize("pair", ["NOEQUALS", "=x", "1A=2", "A B=1"])
def test_malformed_pairs_are_usage_errors(pair: str) -> None:
    with pytest.raises(UsageError, match="KEY=VALUE"):
        sagemaker_env(EnvSources(pairs=(pair,)), environ={})


def test_credentials_never_enter_the_environment(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="credentials"):
        sagemaker_env(EnvSources(pairs=("AWS_SECRET_ACCESS_KEY=x",)), environ={})
    leaky = tmp_path / "leaky.env"
    leaky.write_text("AWS_ACCESS_KEY_ID=AKIA0000000000000000\n")
    with pytest.raises(UsageError, match="credentials"):
        sagemaker_env(EnvSources(env_file=leaky), environ={})


def test_a_missing_env_file_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="does not exist"):
        sagemaker_env(EnvSources(env_file=tmp_path / "nope.env"), environ={})


def test_overlay_keeps_the_recorded_base_under_new_sources() -> None:
    base = SageMakerEnv(
        {DEFAULT: "a", THREADS: "1"}, dict.fromkeys((DEFAULT, THREADS), "package manifest")
    )
    env = overlay(base, EnvSources(pairs=(f"{THREADS}=8",)), environ={})
    assert env.values == {DEFAULT: "a", THREADS: "8"}
    assert env.origin(DEFAULT) == "package manifest" and env.origin(THREADS) == "--env"


def test_region_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_REGION", "us-west-2")
    assert settings.aws_region() == "us-west-2", "AWS_REGION first (boto3 ignores it)"
    assert settings.aws_region("ap-south-1") == "ap-south-1"
    monkeypatch.delenv("AWS_REGION")
    assert settings.aws_region() == "eu-west-1"
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    assert settings.aws_region() is None
    with pytest.raises(UsageError, match="AWS_REGION"):
        settings.require_region()


def test_image_follows_the_override_then_the_region(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRITONSHIP_IMAGE", raising=False)
    monkeypatch.setenv("AWS_REGION", "us-west-2")
    assert settings.image(tag="24.09-py3").startswith("763104351884.dkr.ecr.us-west-2.")
    monkeypatch.setenv("TRITONSHIP_IMAGE", "local/image:1")
    assert settings.image(tag="24.09-py3") == "local/image:1"
    assert settings.image("given:2") == "given:2"


@pytest.mark.parametrize(("driver", "level"), [(False, "3"), (True, "2")])
def test_tensorflow_is_quiet_without_a_cuda_driver(
    monkeypatch: pytest.MonkeyPatch, driver: bool, level: str
) -> None:
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    monkeypatch.setattr(settings, "cuda_driver_present", lambda: driver)
    assert settings.quiet_tensorflow() == level
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")
    assert settings.quiet_tensorflow() == "0", "the user's own choice stays"


@pytest.mark.slow
def test_no_cuinit_noise_on_a_cpu_machine(tmp_path: Path) -> None:
    """TensorFlow's first device query logs "failed call to cuInit" at ERROR level here."""
    import os
    import subprocess
    import sys

    if settings.cuda_driver_present():
        pytest.skip("a CUDA driver is present: TensorFlow's cuInit does not fail here")
    query = "import tensorflow as tf; tf.config.list_physical_devices('GPU')"
    quiet = "from tritonship.sagemaker.settings import quiet_tensorflow; quiet_tensorflow(); "
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}

    def stderr(code: str, **extra: str) -> str:
        run = [sys.executable, "-c", code]
        done = subprocess.run(run, env={**env, **extra}, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return done.stderr

    assert "cuInit" in stderr(query, TF_CPP_MIN_LOG_LEVEL="2"), "level 2 does not hide it"
    assert "cuInit" not in stderr(quiet + query)
