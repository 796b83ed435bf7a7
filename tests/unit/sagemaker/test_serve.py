"""The SageMaker ``serve`` script as a pure function: every variable, every refusal."""

from __future__ import annotations

from pathlib import Path

import pytest

from tritonship.errors import TritonshipError
from tritonship.sagemaker.serve import (
    BASE_FLAGS,
    ServeRefused,
    load_env_file,
    serve_args,
    serve_env,
)
from tritonship.sagemaker.settings import PACKAGED_ENV_FILE as SAGEMAKER_ENV_FILE

NAME = "ensemble_dali_inception"


@pytest.fixture()
def model_dir(tmp_path: Path) -> Path:
    repo = tmp_path / "model"
    for model in (NAME, "dali", "inception_graphdef"):
        (repo / model / "1").mkdir(parents=True)
    return repo


def args_for(model_dir: Path, **env: str) -> list[str]:
    return serve_args({"SAGEMAKER_TRITON_DEFAULT_MODEL_NAME": NAME, **env}, model_dir)


def test_base_command_and_defaults(model_dir: Path):
    args = args_for(model_dir)
    assert args[:3] == list(BASE_FLAGS)
    assert args[:3] == [
        "--allow-sagemaker=true",
        "--allow-http=false",
        "--model-control-mode=explicit",
    ]
    assert f"--model-repository={model_dir}" in args
    assert f"--load-model={NAME}" in args
    assert "--allow-grpc=false" in args and "--allow-metrics=false" in args
    assert "--backend-config=python,shm-default-byte-size=16777216" in args
    assert "--backend-config=python,shm-growth-byte-size=1048576" in args
    assert "--model-namespacing=true" in args
    assert not [a for a in args if a.startswith("--sagemaker-port")]


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("SAGEMAKER_BIND_TO_PORT", "9090", ["--sagemaker-port=9090"]),
        ("SAGEMAKER_SAFE_PORT_RANGE", "20000-20999", ["--sagemaker-safe-port-range=20000-20999"]),
        ("SAGEMAKER_TRITON_THREAD_COUNT", "16", ["--sagemaker-thread-count=16"]),
        ("SAGEMAKER_TRITON_BUFFER_MANAGER_THREAD_COUNT", "4", ["--buffer-manager-thread-count=4"]),
        ("SAGEMAKER_TRITON_LOG_VERBOSE", "0", ["--log-verbose=0"]),
        ("SAGEMAKER_TRITON_LOG_INFO", "false", ["--log-info=false"]),
        ("SAGEMAKER_TRITON_LOG_WARNING", "false", ["--log-warning=false"]),
        ("SAGEMAKER_TRITON_LOG_ERROR", "false", ["--log-error=false"]),
        ("SAGEMAKER_TRITON_ALLOW_GRPC", "true", ["--allow-grpc=true"]),
        ("SAGEMAKER_TRITON_ALLOW_METRICS", "true", ["--allow-metrics=true"]),
        ("SAGEMAKER_TRITON_GRPC_PORT", "8001", ["--grpc-port=8001"]),
        ("SAGEMAKER_TRITON_METRICS_PORT", "8002", ["--metrics-port=8002"]),
        (
            "SAGEMAKER_TRITON_SHM_DEFAULT_BYTE_SIZE",
            "33554432",
            ["--backend-config=python,shm-default-byte-size=33554432"],
        ),
        (
            "SAGEMAKER_TRITON_SHM_GROWTH_BYTE_SIZE",
            "2097152",
            ["--backend-config=python,shm-growth-byte-size=2097152"],
        ),
        ("SAGEMAKER_TRITON_TENSORFLOW_VERSION", "2", ["--backend-config=tensorflow,version=2"]),
        ("SAGEMAKER_TRITON_DISABLE_MODEL_NAMESPACING", "false", ["--model-namespacing=false"]),
        (
            "SAGEMAKER_TRITON_ADDITIONAL_ARGS",
            "--exit-timeout-secs=5 --strict-readiness=true",
            ["--exit-timeout-secs=5", "--strict-readiness=true"],
        ),
    ],
)
def test_each_variable_maps_to_its_flag(model_dir: Path, variable, value, expected):
    args = args_for(model_dir, **{variable: value})
    position = args.index(expected[0])
    assert args[position : position + len(expected)] == expected


def test_gpu_load_limit_is_one_flag_pair_per_gpu(model_dir: Path):
    env = {
        "SAGEMAKER_TRITON_DEFAULT_MODEL_NAME": NAME,
        "SAGEMAKER_TRITON_MODEL_LOAD_GPU_LIMIT": "0.8",
    }
    args = serve_args(env, model_dir, gpu_count=2)
    assert args[args.index("--model-load-gpu-limit") :][:4] == [
        "--model-load-gpu-limit",
        "0:0.8",
        "--model-load-gpu-limit",
        "1:0.8",
    ]
    assert "--model-load-gpu-limit" not in serve_args(env, model_dir, gpu_count=0)


def test_multi_model_mode_uses_an_empty_repository_and_loads_nothing(model_dir: Path):
    args = serve_args({"SAGEMAKER_MULTI_MODEL": "true"}, model_dir)
    assert "--model-repository=/tmp/sagemaker" in args
    assert not [a for a in args if a.startswith("--load-model")]


def test_single_folder_is_the_default_without_the_variable(tmp_path: Path):
    (tmp_path / "only_model" / "1").mkdir(parents=True)
    assert "--load-model=only_model" in serve_args({}, tmp_path)
    assert serve_env({}, tmp_path)["SAGEMAKER_TRITON_DEFAULT_MODEL_NAME"] == "only_model"


def test_refuses_a_config_at_the_repository_root(model_dir: Path):
    (model_dir / "config.pbtxt").write_text('name: "x"\n')
    with pytest.raises(ServeRefused, match="config.pbtxt exists"):
        args_for(model_dir)


def test_refuses_a_default_name_that_is_not_a_folder(model_dir: Path):
    with pytest.raises(ServeRefused, match="not a directory") as info:
        serve_args({"SAGEMAKER_TRITON_DEFAULT_MODEL_NAME": "nope"}, model_dir)
    assert NAME in str(info.value), "the message lists the folders that exist"


def test_refuses_several_folders_without_a_default_name(model_dir: Path):
    with pytest.raises(ServeRefused, match="more than 1 model directory"):
        serve_args({}, model_dir)


def test_refuses_an_empty_repository(tmp_path: Path):
    with pytest.raises(ServeRefused, match="no model found"):
        serve_args({}, tmp_path)


@pytest.mark.parametrize("kind", ["infer", "generate", "generate_stream"])
def test_known_inference_types_are_accepted(model_dir: Path, kind: str):
    assert f"--load-model={NAME}" in args_for(model_dir, SAGEMAKER_TRITON_INFERENCE_TYPE=kind)


def test_refuses_an_unknown_inference_type(model_dir: Path):
    with pytest.raises(ServeRefused, match="invalid SAGEMAKER_TRITON_INFERENCE_TYPE 'chat'"):
        args_for(model_dir, SAGEMAKER_TRITON_INFERENCE_TYPE="chat")


def test_a_symlinked_folder_is_not_a_model_folder(tmp_path: Path):
    # find -maxdepth 1 -type d does not follow links: one real folder is the only model
    (tmp_path / "model" / "only_model" / "1").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "model" / "linked").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    assert "--load-model=only_model" in serve_args({}, tmp_path / "model")


def test_committed_env_file_names_the_ensemble_and_holds_no_secrets():
    env = load_env_file(SAGEMAKER_ENV_FILE)
    assert env["SAGEMAKER_TRITON_DEFAULT_MODEL_NAME"] == NAME
    assert all(key.startswith("SAGEMAKER_") for key in env)


def test_env_file_parsing(tmp_path: Path):
    path = tmp_path / "x.env"
    path.write_text('# comment\n\nexport A=1\nB=\'two words\'\nC="3"\nD=\'4"\nE="\n')
    assert load_env_file(path) == {"A": "1", "B": "two words", "C": "3", "D": "'4\"", "E": '"'}
    path.write_text("A=1\nnot a pair\n")
    with pytest.raises(TritonshipError, match=":2: expected KEY=VALUE"):
        load_env_file(path)


def test_the_repository_flag_can_name_the_container_path(model_dir: Path):
    """The checks run on the host folder; the flag names the path the server sees."""
    args = serve_args(
        {"SAGEMAKER_TRITON_DEFAULT_MODEL_NAME": NAME}, model_dir, repository="/opt/ml/model/"
    )
    assert "--model-repository=/opt/ml/model/" in args and f"--load-model={NAME}" in args
    with pytest.raises(ServeRefused, match="not a directory"):
        serve_args({"SAGEMAKER_TRITON_DEFAULT_MODEL_NAME": "nope"}, model_dir, repository="/x")


@pytest.mark.parametrize("multi_model", [False, True])
def test_the_ping_mode_reaches_the_server_only_when_already_exported(
    model_dir: Path, multi_model: bool
):
    """serve r24.09 L32-60 assigns SAGEMAKER_TRITON_PING_MODE without exporting it."""
    env = {"SAGEMAKER_TRITON_DEFAULT_MODEL_NAME": NAME}
    if multi_model:
        env["SAGEMAKER_MULTI_MODEL"] = "true"
    assert "SAGEMAKER_TRITON_PING_MODE" not in serve_env(env, model_dir)
    override = {**env, "SAGEMAKER_TRITON_OVERRIDE_PING_MODE": "live"}
    assert "SAGEMAKER_TRITON_PING_MODE" not in serve_env(override, model_dir)


@pytest.mark.parametrize(
    ("multi_model", "override", "expected"),
    [
        (False, None, "ready"),
        (True, None, "live"),
        (False, "live", "live"),
        (True, "ready", "ready"),
        (True, "", "live"),  # [ -n "" ] is false: the mode's default
    ],
)
def test_an_exported_ping_mode_is_replaced_by_the_scripts_choice(
    model_dir: Path, multi_model: bool, override: str | None, expected: str
):
    env = {"SAGEMAKER_TRITON_DEFAULT_MODEL_NAME": NAME, "SAGEMAKER_TRITON_PING_MODE": "bogus"}
    if multi_model:
        env["SAGEMAKER_MULTI_MODEL"] = "true"
    if override is not None:
        env["SAGEMAKER_TRITON_OVERRIDE_PING_MODE"] = override
    assert serve_env(env, model_dir)["SAGEMAKER_TRITON_PING_MODE"] == expected
    empty = {**env, "SAGEMAKER_TRITON_PING_MODE": ""}  # set but empty is still exported
    assert serve_env(empty, model_dir)["SAGEMAKER_TRITON_PING_MODE"] == expected


def test_multi_model_mode_exports_no_default_model_of_its_own(model_dir: Path):
    exported = serve_env({"SAGEMAKER_MULTI_MODEL": "true"}, model_dir)
    assert "SAGEMAKER_TRITON_DEFAULT_MODEL_NAME" not in exported
