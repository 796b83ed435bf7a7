"""The repository validator: the real repository is clean, each broken rule is one finding."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from tritonship.errors import UsageError
from tritonship.repository.config import Finding, format_findings, load_repository, locate
from tritonship.repository.rules.ensemble import find_cycle
from tritonship.repository.validate import summary, validate_repository
from tritonship.sagemaker.images import backends_for_tag
from tritonship.sagemaker.settings import EnvSources, sagemaker_env

ENSEMBLE = "ensemble_dali_inception"
INCEPTION = "inception_graphdef"
GUARD = "guard"
DEFAULT_ENV = f"SAGEMAKER_TRITON_DEFAULT_MODEL_NAME={ENSEMBLE}\n"


@pytest.fixture()
def repo(repo_copy: Path) -> Path:
    """A private copy of the repository as a build lays it out (placeholder graph)."""
    return repo_copy


@pytest.fixture()
def env_file(tmp_path: Path) -> Path:
    path = tmp_path / "sagemaker.env"
    path.write_text("# SageMaker serve variables\n" + DEFAULT_ENV)
    return path


def validate(repo: Path, env_file: Path | None, image: str | None = None) -> list[Finding]:
    """Validate with ``env_file`` as the only source of SageMaker variables."""
    sources = EnvSources(env_file=env_file, defaults=None)
    env = sagemaker_env(sources, repo, environ={})
    return validate_repository(load_repository(repo), image_tag=image, env=env)


def edit(model: str, change: Callable[[mc.ModelConfig], object]) -> Callable[[Path], None]:
    """A mutation: parse ``model``'s config, apply ``change``, write it back."""

    def mutate(repo: Path) -> None:
        path = repo / model / "config.pbtxt"
        config = text_format.Parse(path.read_text(), mc.ModelConfig())
        change(config)
        path.write_text(text_format.MessageToString(config))

    return mutate


def replace_text(model: str, old: str, new: str) -> Callable[[Path], None]:
    def mutate(repo: Path) -> None:
        path = repo / model / "config.pbtxt"
        assert old in path.read_text()
        path.write_text(path.read_text().replace(old, new, 1))

    return mutate


def set_dims(tensor: mc.ModelInput | mc.ModelOutput, dims: list[int]) -> None:
    del tensor.dims[:]
    tensor.dims.extend(dims)


def steps(config: mc.ModelConfig) -> list[mc.ModelEnsembling.Step]:
    return list(config.ensemble_scheduling.step)


def step(config: mc.ModelConfig, model: str) -> mc.ModelEnsembling.Step:
    """The ensemble step that runs ``model``."""
    return next(s for s in config.ensemble_scheduling.step if s.model_name == model)


def rename_map_key(mapping, old: str, new: str) -> None:
    mapping[new] = mapping.pop(old)


def remove(relative: str) -> Callable[[Path], None]:
    def mutate(repo: Path) -> None:
        target = repo / relative
        shutil.rmtree(target) if target.is_dir() else target.unlink()

    return mutate


def write(relative: str, text: str) -> Callable[[Path], None]:
    def mutate(repo: Path) -> None:
        (repo / relative).parent.mkdir(parents=True, exist_ok=True)
        (repo / relative).write_text(text)

    return mutate


def add_duplicate_input(config: mc.ModelConfig) -> None:
    config.input.add().CopyFrom(config.input[0])


def cycle(config: mc.ModelConfig) -> None:
    step(config, "dali").input_map["DALI_INPUT_0"] = "OUTPUT"


def unmap_dali_input(config: mc.ModelConfig) -> None:
    step(config, "dali").ClearField("input_map")


def copy_root_config(repo: Path) -> None:
    shutil.copy(repo / "dali" / "config.pbtxt", repo / "config.pbtxt")


# (mutation, file relative to the repository, words the message must contain,
#  text the reported line must contain or None when no line is expected)
CASES = [
    pytest.param(
        replace_text("dali", "max_batch_size: 256", "max_batch_sise: 256"),
        "dali/config.pbtxt",
        ["syntax error", "max_batch_sise"],
        "max_batch_sise",
        id="syntax-unknown-field",
    ),
    pytest.param(
        replace_text(INCEPTION, 'name: "input"', 'name: "input'),
        f"{INCEPTION}/config.pbtxt",
        ["syntax error"],
        'name: "input',
        id="syntax-unterminated-string",
    ),
    pytest.param(
        edit(INCEPTION, lambda c: setattr(c, "platform", "tensorflow_graphdf")),
        f"{INCEPTION}/config.pbtxt",
        ["unknown platform 'tensorflow_graphdf'"],
        'platform: "tensorflow_graphdf"',
        id="unknown-platform",
    ),
    pytest.param(
        edit(INCEPTION, lambda c: c.ClearField("platform")),
        f"{INCEPTION}/config.pbtxt",
        ["neither platform nor backend"],
        'name: "inception_graphdef"',
        id="no-platform-or-backend",
    ),
    pytest.param(
        edit("dali", lambda c: setattr(c, "name", "dali_v2")),
        "dali/config.pbtxt",
        ["name", "dali_v2", "folder"],
        'name: "dali_v2"',
        id="name-not-folder",
    ),
    pytest.param(
        remove(f"{ENSEMBLE}/1"), ENSEMBLE, ["version folder"], None, id="no-version-folder"
    ),
    pytest.param(
        remove(f"{INCEPTION}/1/model.graphdef"),
        f"{INCEPTION}/1/model.graphdef",
        ["tensorflow_graphdef", "1/model.graphdef"],
        None,
        id="missing-graphdef",
    ),
    pytest.param(
        remove("dali/1/dali.py"),
        "dali/1/model.dali",
        ["backend 'dali'", "1/model.dali or 1/dali.py"],
        None,
        id="missing-dali-artifact",
    ),
    pytest.param(
        remove(f"{GUARD}/1/model.py"),
        f"{GUARD}/1/model.py",
        ["backend 'python'", "1/model.py"],
        None,
        id="missing-guard-model",
    ),
    pytest.param(
        edit(INCEPTION, lambda c: setattr(c, "default_model_filename", "inception.pb")),
        f"{INCEPTION}/1/inception.pb",
        ["1/inception.pb"],
        None,
        id="default-model-filename",
    ),
    pytest.param(
        edit(ENSEMBLE, lambda c: setattr(step(c, INCEPTION), "model_name", "inception_onnx")),
        f"{ENSEMBLE}/config.pbtxt",
        ["model_name", "inception_onnx"],
        'model_name: "inception_onnx"',
        id="step-model-missing",
    ),
    pytest.param(
        edit(ENSEMBLE, lambda c: setattr(step(c, INCEPTION), "model_version", 3)),
        f"{ENSEMBLE}/config.pbtxt",
        ["model_version 3"],
        "model_version: 3",
        id="step-version-missing",
    ),
    pytest.param(
        edit(ENSEMBLE, lambda c: rename_map_key(step(c, "dali").input_map, "DALI_INPUT_0", "IMG")),
        f"{ENSEMBLE}/config.pbtxt",
        ["input_map key 'IMG'", "dali"],
        'key: "IMG"',
        id="input-map-key-unknown",
    ),
    pytest.param(
        edit(
            ENSEMBLE,
            lambda c: rename_map_key(
                step(c, INCEPTION).output_map, "InceptionV3/Predictions/Softmax", "Softmax"
            ),
        ),
        f"{ENSEMBLE}/config.pbtxt",
        ["output_map key 'Softmax'", INCEPTION],
        'key: "Softmax"',
        id="output-map-key-unknown",
    ),
    pytest.param(
        edit(ENSEMBLE, unmap_dali_input),
        f"{ENSEMBLE}/config.pbtxt",
        ["input 'DALI_INPUT_0'", "not mapped"],
        'model_name: "dali"',
        id="step-input-unmapped",
    ),
    pytest.param(
        edit(ENSEMBLE, lambda c: step(c, INCEPTION).input_map.update(input="preprocessed")),
        f"{ENSEMBLE}/config.pbtxt",
        ["tensor 'preprocessed'", "never produced"],
        'value: "preprocessed"',
        id="tensor-never-produced",
    ),
    pytest.param(
        edit(ENSEMBLE, lambda c: setattr(c.output[0], "name", "SCORES")),
        f"{ENSEMBLE}/config.pbtxt",
        ["tensor 'SCORES'", "ensemble output", "never produced"],
        'name: "SCORES"',
        id="ensemble-output-never-produced",
    ),
    pytest.param(
        edit(ENSEMBLE, cycle),
        f"{ENSEMBLE}/config.pbtxt",
        ["cycle", "step 2 (dali) -> step 3 (inception_graphdef) -> step 2 (dali)"],
        'model_name: "dali"',
        id="cycle",
    ),
    pytest.param(
        edit(ENSEMBLE, lambda c: setattr(c.input[0], "data_type", mc.TYPE_INT8)),
        f"{ENSEMBLE}/config.pbtxt",
        ["data_type", "TYPE_INT8", "TYPE_UINT8", "ensemble input 'INPUT'"],
        'value: "INPUT"',
        id="dtype-ensemble-input-to-step",
    ),
    pytest.param(
        edit(INCEPTION, lambda c: setattr(c.input[0], "data_type", mc.TYPE_FP16)),
        f"{ENSEMBLE}/config.pbtxt",
        ["data_type", "TYPE_FP32", "TYPE_FP16", "step 3 (inception_graphdef) input 'input'"],
        'value: "preprocessed_image"',
        id="dtype-step-to-step",
    ),
    pytest.param(
        edit(ENSEMBLE, lambda c: setattr(c.output[0], "data_type", mc.TYPE_FP16)),
        f"{ENSEMBLE}/config.pbtxt",
        ["data_type", "TYPE_FP16", "ensemble output 'OUTPUT'"],
        'name: "OUTPUT"',
        id="dtype-step-to-ensemble-output",
    ),
    pytest.param(
        edit(INCEPTION, lambda c: set_dims(c.input[0], [224, 224, 3])),
        f"{ENSEMBLE}/config.pbtxt",
        ["dims", "[-1, 299, 299, 3]", "[-1, 224, 224, 3]"],
        'value: "preprocessed_image"',
        id="dims-mismatch",
    ),
    pytest.param(
        edit(ENSEMBLE, lambda c: set_dims(c.output[0], [1000])),
        f"{ENSEMBLE}/config.pbtxt",
        ["dims", "[-1, 1001]", "[-1, 1000]"],
        'name: "OUTPUT"',
        id="dims-mismatch-ensemble-output",
    ),
    pytest.param(
        edit("dali", lambda c: setattr(c, "max_batch_size", 8)),
        f"{ENSEMBLE}/config.pbtxt",
        ["max_batch_size 256", "step 2 (dali)", "max_batch_size 8"],
        "max_batch_size: 256",
        id="ensemble-batch-larger",
    ),
    pytest.param(
        edit(INCEPTION, lambda c: setattr(c, "max_batch_size", -1)),
        f"{INCEPTION}/config.pbtxt",
        ["max_batch_size -1"],
        "max_batch_size: -1",
        id="negative-batch",
    ),
    pytest.param(
        remove(f"{INCEPTION}/inception_labels.txt"),
        f"{INCEPTION}/config.pbtxt",
        ["label_filename 'inception_labels.txt'", "not found"],
        "label_filename",
        id="labels-missing",
    ),
    pytest.param(
        write(f"{INCEPTION}/inception_labels.txt", "\n".join(["x"] * 1000) + "\n"),
        f"{INCEPTION}/inception_labels.txt",
        ["1000 labels", "[1001]"],
        None,
        id="labels-wrong-count",
    ),
    pytest.param(
        edit(INCEPTION, add_duplicate_input),
        f"{INCEPTION}/config.pbtxt",
        ["duplicate input name 'input'"],
        'name: "input"',
        id="duplicate-input",
    ),
    pytest.param(
        edit(INCEPTION, lambda c: setattr(c, "backend", "onnxruntime")),
        f"{INCEPTION}/config.pbtxt",
        ["backend 'onnxruntime'", "tensorflow_graphdef"],
        'backend: "onnxruntime"',
        id="backend-contradicts-platform",
    ),
    pytest.param(
        write("extra/1/model.onnx", "onnx"),
        "extra/config.pbtxt",
        ["'extra'", "no config.pbtxt"],
        None,
        id="folder-without-config",
    ),
    pytest.param(
        copy_root_config, "config.pbtxt", ["repository root"], None, id="root-config-pbtxt"
    ),
]


def test_real_repository_is_clean(repo: Path, env_file: Path) -> None:
    assert validate(repo, env_file) == []


def test_summary_names_the_chain(repo: Path) -> None:
    line = summary(load_repository(repo))
    assert line == (
        "model_repository: 4 models OK "
        "(ensemble_dali_inception -> guard -> dali -> inception_graphdef)"
    )


def test_loader_returns_typed_models(repo: Path) -> None:
    loaded = load_repository(repo)
    assert loaded.folders == ("dali", ENSEMBLE, GUARD, INCEPTION)
    inception = loaded.models[INCEPTION]
    assert isinstance(inception.config, mc.ModelConfig)
    assert inception.kind == "tensorflow_graphdef" and inception.backend == "tensorflow"
    assert inception.shape(inception.outputs["InceptionV3/Predictions/Softmax"]) == (-1, 1001)
    assert loaded.models[ENSEMBLE].is_ensemble and loaded.models[ENSEMBLE].versions() == [1]


def test_missing_repository_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such model repository"):
        load_repository(tmp_path / "nowhere")


@pytest.mark.parametrize(("mutate", "relative", "words", "line_text"), CASES)
def test_each_broken_rule_is_reported(
    repo: Path,
    env_file: Path,
    mutate: Callable[[Path], None],
    relative: str,
    words: list[str],
    line_text: str | None,
) -> None:
    mutate(repo)
    findings = validate(repo, env_file)
    expected = repo / relative
    matching = [f for f in findings if f.path == expected and all(w in f.message for w in words)]
    assert matching, format_findings(findings)
    finding = matching[0]
    if line_text is None:
        assert finding.line is None
    else:
        assert finding.line is not None, str(finding)
        assert line_text in expected.read_text().splitlines()[finding.line - 1], str(finding)


def test_config_comments_do_not_mislead_line_numbers(repo: Path, env_file: Path) -> None:
    path = repo / ENSEMBLE / "config.pbtxt"
    text = path.read_text().replace('model_name: "inception_graphdef"', 'model_name: "incept"')
    path.write_text('# model_name: "incept" was renamed\n' + text)
    [finding] = validate(repo, env_file)
    assert finding.line == 42 and "model_name 'incept'" in finding.message


def test_default_model_filename_is_honoured(repo: Path, env_file: Path) -> None:
    version = repo / INCEPTION / "1"
    (version / "model.graphdef").rename(version / "inception.pb")
    edit(INCEPTION, lambda c: setattr(c, "default_model_filename", "inception.pb"))(repo)
    assert validate(repo, env_file) == []


def test_model_dali_is_accepted(repo: Path, env_file: Path) -> None:
    (repo / "dali" / "1" / "dali.py").rename(repo / "dali" / "1" / "model.dali")
    assert validate(repo, env_file) == []


def test_wildcard_dims_are_compatible(repo: Path, env_file: Path) -> None:
    edit(INCEPTION, lambda c: set_dims(c.input[0], [-1, -1, 3]))(repo)
    assert validate(repo, env_file) == []


def test_unbatched_ensemble_spells_out_the_batch_dimension(repo: Path, env_file: Path) -> None:
    def unbatched(config: mc.ModelConfig) -> None:
        config.max_batch_size = 0
        set_dims(config.input[0], [-1, -1])
        set_dims(config.output[0], [-1, 1001])

    edit(ENSEMBLE, unbatched)(repo)
    assert validate(repo, env_file) == []
    edit(ENSEMBLE, lambda c: set_dims(c.output[0], [1001]))(repo)
    [finding] = validate(repo, env_file)
    assert "[-1, 1001] vs [1001]" in finding.message


@pytest.mark.parametrize(
    ("tag", "has_tensorflow"),
    [("24.09-py3", True), ("25.02-py3", True), ("25.04-py3", False), ("24.09-py3-cpu", True)],
)
def test_backends_for_tag(tag: str, has_tensorflow: bool) -> None:
    backends = backends_for_tag(tag)
    assert ("tensorflow" in backends) is has_tensorflow
    assert {"ensemble", "python", "onnxruntime"} <= backends
    assert ("dali" in backends) is not tag.endswith("-cpu")


@pytest.mark.parametrize("tag", ["latest", "24.09", "2409-py3", "24.09-py3-gpu"])
def test_unknown_tag_is_a_usage_error(repo: Path, env_file: Path, tag: str) -> None:
    with pytest.raises(UsageError, match="is not of the form"):
        validate(repo, env_file, image=tag)


def test_image_with_tensorflow_is_clean(repo: Path, env_file: Path) -> None:
    assert validate(repo, env_file, image="24.09-py3") == []


def test_image_without_tensorflow_flags_the_graphdef(repo: Path, env_file: Path) -> None:
    [finding] = validate(repo, env_file, image="25.04-py3")
    assert finding.path == repo / INCEPTION / "config.pbtxt"
    assert finding.path.read_text().splitlines()[finding.line - 1].startswith("platform:")
    assert "tensorflow_graphdef" in finding.message and "25.04-py3" in finding.message


def test_cpu_image_flags_dali(repo: Path, env_file: Path) -> None:
    [finding] = validate(repo, env_file, image="24.09-py3-cpu")
    assert finding.path == repo / "dali" / "config.pbtxt"
    assert "backend 'dali'" in finding.message
    lines = finding.path.read_text().splitlines()
    assert lines[finding.line - 1] == 'backend: "dali"'


def test_the_only_top_level_ensemble_is_the_default_model(repo: Path) -> None:
    env = sagemaker_env(EnvSources(defaults=None), repo, environ={})
    assert env.default_model == ENSEMBLE and "inferred" in env.origin(
        "SAGEMAKER_TRITON_DEFAULT_MODEL_NAME"
    )
    assert validate(repo, None) == []


def test_two_top_level_ensembles_need_the_default_model(repo: Path) -> None:
    shutil.copytree(repo / ENSEMBLE, repo / "second_ensemble")
    edit("second_ensemble", lambda c: setattr(c, "name", "second_ensemble"))(repo)
    [finding] = validate(repo, None)
    assert finding.path == repo
    assert "SAGEMAKER_TRITON_DEFAULT_MODEL_NAME is not set" in finding.message
    assert "5 model folders" in finding.message and "--env" in finding.message


def test_default_model_must_be_a_folder(repo: Path, tmp_path: Path) -> None:
    env = tmp_path / "sagemaker.env"
    env.write_text(
        "# serve\nSAGEMAKER_BIND_TO_PORT=8080\nSAGEMAKER_TRITON_DEFAULT_MODEL_NAME=ensemble\n"
    )
    [finding] = validate(repo, env)
    assert (finding.path, finding.line) == (env, 3)
    assert "'ensemble'" in finding.message


def test_folders_are_counted_as_serve_counts_them(repo: Path, tmp_path: Path) -> None:
    for name in ("dali", ENSEMBLE, GUARD):
        shutil.rmtree(repo / name)
    (repo / ".ipynb_checkpoints").mkdir()  # serve's `find -type d` sees hidden folders too
    [finding] = validate(repo, None)
    assert "is not set" in finding.message and "2 model folders" in finding.message


def test_multi_model_mode_needs_no_default(repo: Path, tmp_path: Path) -> None:
    env = tmp_path / "sagemaker.env"
    env.write_text("SAGEMAKER_MULTI_MODEL=true\n")
    assert validate(repo, env) == []


def test_single_model_repository_needs_no_default(repo: Path, tmp_path: Path) -> None:
    for name in ("dali", ENSEMBLE, GUARD):
        shutil.rmtree(repo / name)
    assert validate(repo, None) == []


def test_finding_rendering() -> None:
    findings = [
        Finding(Path("repo/dali/config.pbtxt"), 3, "bad"),
        Finding(Path("repo/dali/1/model.dali"), None, "missing"),
    ]
    assert format_findings(findings) == (
        "repo/dali/config.pbtxt:3: bad\nrepo/dali/1/model.dali: missing"
    )


def test_locate_follows_patterns_in_order() -> None:
    text = 'a {\n  key: "x"\n}\nb {\n  key: "x"\n  key: "xy"\n}\n'
    assert locate(text, r"\bkey") == 2
    assert locate(text, r"\bb\s*\{", r'key: "x"') == 5
    assert locate(text, r"\bb\s*\{", r"\bmissing") == 4


def test_find_cycle() -> None:
    assert find_cycle({0: {1}, 1: {2}}) is None
    assert find_cycle({0: {1}, 1: {0}}) == [0, 1, 0]
    assert find_cycle({0: {0}}) == [0, 0]
    assert find_cycle({0: {1, 2}, 2: {3}, 3: {2}}) == [2, 3, 2]
