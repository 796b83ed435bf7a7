"""Load a Triton model repository as typed configs and check it before anything serves it.

Every ``config.pbtxt`` is parsed with ``model_config_pb2.ModelConfig`` and protobuf text
format. A problem is a :class:`Finding` that names the file and, where it makes sense, the
line of the offending field or value, so that ``path:line: message`` opens in an editor.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from tritonship.errors import UsageError
from tritonship.paths import MANIFEST_NAME
from tritonship.repository import accelerators, memory
from tritonship.sagemaker.images import backends_for_tag, newest_tag
from tritonship.sagemaker.serve import model_dirs
from tritonship.sagemaker.settings import SageMakerEnv, packaged_env

CONFIG_NAME = "config.pbtxt"
DEFAULT_MODEL_VARIABLE = "SAGEMAKER_TRITON_DEFAULT_MODEL_NAME"
MULTI_MODEL_VARIABLE = "SAGEMAKER_MULTI_MODEL"

#: The backend that runs each platform.
PLATFORM_BACKENDS: Mapping[str, str] = {
    "tensorflow_graphdef": "tensorflow",
    "tensorflow_savedmodel": "tensorflow",
    "onnxruntime_onnx": "onnxruntime",
    "pytorch_libtorch": "pytorch",
    "tensorrt_plan": "tensorrt",
    "ensemble": "ensemble",
}
#: Artifact names Triton looks for in a version folder, by platform or backend.
DEFAULT_ARTIFACTS: Mapping[str, tuple[str, ...]] = {
    "tensorflow_graphdef": ("model.graphdef",),
    "tensorflow_savedmodel": ("model.savedmodel",),
    "onnxruntime_onnx": ("model.onnx",),
    "onnxruntime": ("model.onnx",),
    "pytorch_libtorch": ("model.pt",),
    "pytorch": ("model.pt",),
    "tensorrt_plan": ("model.plan",),
    "tensorrt": ("model.plan",),
    "openvino": ("model.xml",),
    "python": ("model.py",),
    "dali": ("model.dali",),
    "ensemble": (),
}
#: A DALI autoserialize source the backend serializes at load time.
DALI_AUTOSERIALIZE = "dali.py"

_STRING_OR_COMMENT = re.compile(r"(\"(?:[^\"\\\n]|\\.)*\"|'(?:[^'\\\n]|\\.)*')|#[^\n]*")
_PARSE_POSITION = re.compile(r"^\d+:\d+ : ")


@dataclass(frozen=True)
class Finding:
    """One problem: the file to fix, the line (when known) and what is wrong."""

    path: Path
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else str(self.path)
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class Model:
    """One model folder with its parsed config and the text used to locate fields."""

    folder: Path
    config: mc.ModelConfig
    source: str = field(repr=False)

    @property
    def name(self) -> str:
        """The folder name, which is the name Triton serves the model under."""
        return self.folder.name

    @property
    def config_path(self) -> Path:
        """Path of the model's ``config.pbtxt``."""
        return self.folder / CONFIG_NAME

    @property
    def kind(self) -> str:
        """The platform, or the backend when no platform is set."""
        return self.config.platform or self.config.backend

    @property
    def backend(self) -> str:
        """The backend that runs the model (derived from the platform when needed)."""
        return PLATFORM_BACKENDS.get(self.config.platform, self.config.backend)

    @property
    def is_ensemble(self) -> bool:
        """Whether the model is an ensemble."""
        return self.config.platform == "ensemble"

    @property
    def inputs(self) -> dict[str, mc.ModelInput]:
        """Inputs by name (the first one wins on duplicates)."""
        return _by_name(self.config.input)

    @property
    def outputs(self) -> dict[str, mc.ModelOutput]:
        """Outputs by name (the first one wins on duplicates)."""
        return _by_name(self.config.output)

    def versions(self) -> list[int]:
        """Numeric version folders present, ascending."""
        return sorted(int(p.name) for p in self.folder.iterdir() if _is_version(p))

    def shape(self, tensor: mc.ModelInput | mc.ModelOutput) -> tuple[int, ...]:
        """Full tensor shape as requests see it: batch dimension -1 first when batching."""
        batch = (-1,) if self.config.max_batch_size > 0 else ()
        return (*batch, *tensor.dims)

    def line(self, *patterns: str) -> int | None:
        """Line of the last of ``patterns``, each searched after the previous match."""
        return locate(self.source, *patterns)

    def finding(self, message: str, *patterns: str) -> Finding:
        """A finding in this model's config at the line ``patterns`` lead to."""
        return Finding(self.config_path, self.line(*patterns), message)


@dataclass(frozen=True)
class Repository:
    """A loaded model repository: parsed models plus the problems met while loading."""

    root: Path
    folders: tuple[str, ...]
    models: dict[str, Model]
    findings: tuple[Finding, ...] = ()


def _by_name(tensors: Iterable[mc.ModelInput | mc.ModelOutput]) -> dict:
    result: dict = {}
    for tensor in tensors:
        result.setdefault(tensor.name, tensor)
    return result


def _is_version(path: Path) -> bool:
    return path.is_dir() and path.name.isdigit()


# --- locating fields in the raw text ------------------------------------------------------


def blank_comments(text: str) -> str:
    """Replace ``#`` comments with spaces, keeping strings, offsets and line numbers."""
    return _STRING_OR_COMMENT.sub(lambda m: m.group(1) or " " * len(m.group(0)), text)


def field_pattern(name: str, value: str | int | None = None) -> str:
    """Regex for a text-format field, optionally holding exactly ``value``."""
    key = rf"\b{re.escape(name)}\s*"
    if value is None:
        return key + r"[:{<\[]"
    literal = re.escape(str(value))
    return key + rf":\s*(?:\"{literal}\"|'{literal}'|{literal}(?![\w.\-/]))"


def locate(text: str, *patterns: str) -> int | None:
    """Line of the last of ``patterns`` found in order; stops at the first one missing."""
    position, line = 0, None
    for pattern in patterns:
        match = re.compile(pattern).search(text, position)
        if match is None:
            break
        position, line = match.end(), text.count("\n", 0, match.start()) + 1
    return line


def _step_patterns(index: int) -> list[str]:
    return [field_pattern("ensemble_scheduling")] + [field_pattern("step")] * (index + 1)


def _tensor_patterns(kind: str, name: str, occurrence: int = 1) -> list[str]:
    return [field_pattern(kind)] + [field_pattern("name", name)] * occurrence


# --- loading ------------------------------------------------------------------------------


def parse_config(path: Path) -> tuple[mc.ModelConfig | None, str, Finding | None]:
    """Parse one ``config.pbtxt``: (config, text with comments blanked, syntax finding)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        return None, "", Finding(path, None, f"cannot read: {err}")
    try:
        config = text_format.Parse(text, mc.ModelConfig())
    except text_format.ParseError as err:
        message = _PARSE_POSITION.sub("", str(err))
        return None, text, Finding(path, err.GetLine(), f"syntax error: {message}")
    return config, blank_comments(text), None


def model_folders(repo: Path) -> tuple[str, ...]:
    """Names of the repository's model folders (non-hidden directories), sorted."""
    return tuple(sorted(p.name for p in repo.iterdir() if p.is_dir() and p.name[0] != "."))


def load_repository(repo: Path) -> Repository:
    """Parse every model folder's ``config.pbtxt``; unreadable ones become findings."""
    if not repo.is_dir():
        raise UsageError(f"{repo}: no such model repository", "pass --repo DIR")
    folders = model_folders(repo)
    models: dict[str, Model] = {}
    findings: list[Finding] = []
    for name in folders:
        path = repo / name / CONFIG_NAME
        if not path.is_file():
            findings.append(Finding(path, None, f"model folder {name!r} has no {CONFIG_NAME}"))
            continue
        config, source, problem = parse_config(path)
        if problem:
            findings.append(problem)
        if config is not None:
            models[name] = Model(repo / name, config, source)
    return Repository(repo, folders, models, tuple(findings))


def classifier(repository: Repository) -> Model | None:
    """The repository's classifier: the model whose output carries a label file."""
    return next(
        (m for m in repository.models.values() if any(o.label_filename for o in m.config.output)),
        None,
    )


# --- rules for every model ----------------------------------------------------------------


def _check_name(model: Model) -> Iterator[Finding]:
    name = model.config.name
    if name and name != model.name:
        yield model.finding(
            f"name {name!r} does not match its folder {model.name!r}",
            field_pattern("name", name),
        )


def _check_kind(model: Model) -> Iterator[Finding]:
    platform, backend = model.config.platform, model.config.backend
    if not platform and not backend:
        yield model.finding("neither platform nor backend is set", field_pattern("name"))
    elif platform and platform not in PLATFORM_BACKENDS:
        known = ", ".join(PLATFORM_BACKENDS)
        yield model.finding(
            f"unknown platform {platform!r} (known: {known})", field_pattern("platform")
        )
    elif platform and backend and PLATFORM_BACKENDS[platform] != backend:
        yield model.finding(
            f"backend {backend!r} contradicts platform {platform!r} "
            f"(which runs on {PLATFORM_BACKENDS[platform]!r})",
            field_pattern("backend", backend),
        )


def _check_batch(model: Model) -> Iterator[Finding]:
    size = model.config.max_batch_size
    if size < 0:
        yield model.finding(
            f"max_batch_size {size} is negative (0 disables batching)",
            field_pattern("max_batch_size"),
        )


def _check_duplicates(model: Model) -> Iterator[Finding]:
    for kind, tensors in (("input", model.config.input), ("output", model.config.output)):
        seen: set[str] = set()
        for tensor in tensors:
            if tensor.name in seen:
                yield model.finding(
                    f"duplicate {kind} name {tensor.name!r}",
                    *_tensor_patterns(kind, tensor.name, occurrence=2),
                )
            seen.add(tensor.name)


def _check_versions(model: Model) -> Iterator[Finding]:
    if not model.versions():
        yield Finding(
            model.folder,
            None,
            f"no numeric version folder (such as {model.name}/1/) next to {CONFIG_NAME}",
        )


def expected_artifacts(model: Model) -> tuple[str, ...] | None:
    """File names any one of which must be in each version folder (None: unknown backend)."""
    if model.is_ensemble:
        return ()
    custom = model.config.default_model_filename
    if model.kind == "dali":
        return (custom or DEFAULT_ARTIFACTS["dali"][0], DALI_AUTOSERIALIZE)
    if custom:
        return (custom,)
    return DEFAULT_ARTIFACTS.get(model.config.platform) or DEFAULT_ARTIFACTS.get(model.backend)


def _check_artifacts(model: Model) -> Iterator[Finding]:
    names = expected_artifacts(model)
    if not names:
        return
    what = f"platform {model.kind!r}" if model.config.platform else f"backend {model.kind!r}"
    for version in model.versions():
        folder = model.folder / str(version)
        if not any((folder / name).exists() for name in names):
            wanted = " or ".join(f"{version}/{name}" for name in names)
            yield Finding(folder / names[0], None, f"missing artifact for {what}: {wanted}")


def _check_labels(model: Model) -> Iterator[Finding]:
    for output in model.config.output:
        if output.label_filename:
            yield from _check_label_file(model, output)


def _check_label_file(model: Model, output: mc.ModelOutput) -> Iterator[Finding]:
    path = model.folder / output.label_filename
    if not path.is_file():
        yield model.finding(
            f"label_filename {output.label_filename!r} of output {output.name!r} not found",
            *_tensor_patterns("output", output.name),
            field_pattern("label_filename"),
        )
        return
    classes = math.prod(output.dims)
    lines = len(path.read_text(encoding="utf-8", errors="replace").splitlines())
    if classes > 0 and lines != classes:
        yield Finding(
            path,
            None,
            f"{lines} labels, but output {output.name!r} of {model.name!r} has "
            f"dims {list(output.dims)} ({classes} classes)",
        )


def _check_accelerators(model: Model) -> Iterator[Finding]:
    """Execution accelerators the model's backend would refuse (repository/accelerators.py)."""
    for problem in accelerators.problems(model.backend, model.config):
        yield model.finding(
            problem.message,
            field_pattern("optimization"),
            field_pattern("execution_accelerators"),
            field_pattern(problem.field, problem.value),
        )


# --- warmup (core r24.09 src/backend_model_instance.cc GenerateWarmupData, L354-497) -------

#: Where Triton reads ``input_data_file`` from: ``<model>/warmup/`` (core r24.09
#: ``src/constants.h`` L83 kWarmupDataFolder, read at backend_model_instance.cc L471-475;
#: common r24.09 ``protobuf/model_config.proto`` L1731-1737).
WARMUP_FOLDER = "warmup"


def _check_warmup(model: Model) -> Iterator[Finding]:
    """Warmup samples Triton would refuse, or that would fail on the model's inputs."""
    if model.is_ensemble and model.config.model_warmup:  # model_config_utils.cc L181-186
        yield model.finding(
            f"model_warmup can not be specified for ensemble {model.name!r} (warm up its "
            "steps instead)",
            field_pattern("model_warmup"),
        )
        return
    for sample in model.config.model_warmup:
        yield from _check_warmup_sample(model, sample)


def _check_warmup_sample(model: Model, sample: mc.ModelWarmup) -> Iterator[Finding]:
    where = (field_pattern("model_warmup"), field_pattern("name", sample.name))
    batching = model.config.max_batch_size > 0
    limit = model.config.max_batch_size if batching else 1
    if not 1 <= sample.batch_size <= limit:
        yield model.finding(
            f"warmup sample {sample.name!r}: batch_size {sample.batch_size} is not in 1..{limit} "
            "(Triton skips a sample of batch 0)",
            *where,
        )
    for name in sorted(set(sample.inputs) - set(model.inputs)):
        yield model.finding(
            f"warmup sample {sample.name!r}: {name!r} is not an input of the model "
            f"(inputs: {', '.join(model.inputs)})",
            *where,
            field_pattern("key", name),
        )
    for name, spec in model.inputs.items():
        if name not in sample.inputs and not spec.optional:
            yield model.finding(f"warmup sample {sample.name!r} gives no input {name!r}", *where)
    for name, value in sample.inputs.items():
        if name in model.inputs:
            yield from _check_warmup_input(model, sample.name, name, value, where)


def _check_warmup_input(
    model: Model, sample: str, name: str, value: mc.ModelWarmup.Input, where: tuple[str, ...]
) -> Iterator[Finding]:
    spec = model.inputs[name]
    at = (*where, field_pattern("key", name))
    if value.data_type != spec.data_type:
        yield model.finding(
            f"warmup sample {sample!r}: input {name!r} is {_type_name(value.data_type)}, the "
            f"model's is {_type_name(spec.data_type)}",
            *at,
        )
    if any(d < 0 for d in value.dims):  # backend_model_instance.cc L374-380, Triton's words
        yield model.finding(
            f"warmup setting expects all variable-size dimensions are specified for input {name!r}",
            *at,
        )
    elif not _compatible(list(value.dims), list(spec.dims)):
        yield model.finding(
            f"warmup sample {sample!r}: input {name!r} dims {list(value.dims)} do not fit the "
            f"model's {list(spec.dims)}",
            *at,
        )
    yield from _check_warmup_data(model, name, value, at)


def _check_warmup_data(
    model: Model, name: str, value: mc.ModelWarmup.Input, at: tuple[str, ...]
) -> Iterator[Finding]:
    kind = value.WhichOneof("input_data_type")
    if kind is None:  # backend_model_instance.cc L492-496
        yield model.finding(
            f"warmup setting expects input {name!r} to have input_data_type set "
            "(zero_data, random_data or input_data_file)",
            *at,
        )
        return
    if kind != "input_data_file":
        return
    path = model.folder / WARMUP_FOLDER / value.input_data_file
    if not path.is_file():  # ReadTextFile: "failed to open text file for read"
        yield model.finding(
            f"failed to open text file for read {path}: the warmup input {name!r} must be "
            f"in {model.name}/{WARMUP_FOLDER}/",
            *at,
            field_pattern("input_data_file"),
        )
        return
    expected = math.prod(value.dims) * _element_size(value.data_type)
    if value.data_type != mc.TYPE_STRING and path.stat().st_size < expected:  # L479-488
        yield model.finding(
            f"warmup setting expects {expected} bytes, but the data provided from "
            f"{value.input_data_file} only has {path.stat().st_size} bytes",
            *at,
            field_pattern("input_data_file"),
        )


def _element_size(data_type: int) -> int:
    """Bytes per element of a fixed-size data type (Triton counts 4 for the others)."""
    name = mc.DataType.Name(data_type)
    for size, suffix in ((1, "8"), (2, "16"), (4, "32"), (8, "64")):
        if name.endswith(suffix):
            return size
    return 1 if data_type == mc.TYPE_BOOL else 4


MODEL_RULES = (
    _check_name,
    _check_kind,
    _check_batch,
    _check_duplicates,
    _check_versions,
    _check_artifacts,
    _check_labels,
    _check_accelerators,
    _check_warmup,
)


def check_model(model: Model) -> list[Finding]:
    """Findings from the rules that apply to every model on its own."""
    return [finding for rule in MODEL_RULES for finding in rule(model)]


# --- ensemble rules -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Port:
    """One end of an ensemble tensor: who writes or reads it, with which type and shape."""

    label: str
    data_type: int | None
    shape: tuple[int, ...] | None
    line: int | None
    step: int | None = None


@dataclass
class _Flow:
    """The tensors of an ensemble: who produces and who consumes each one."""

    producers: dict[str, list[_Port]] = field(default_factory=dict)
    consumers: dict[str, list[_Port]] = field(default_factory=dict)

    def produce(self, tensor: str, port: _Port) -> None:
        self.producers.setdefault(tensor, []).append(port)

    def consume(self, tensor: str, port: _Port) -> None:
        self.consumers.setdefault(tensor, []).append(port)

    def edges(self) -> dict[int, set[int]]:
        """Step-to-step dependencies: producing step -> consuming steps."""
        graph: dict[int, set[int]] = {}
        for tensor, readers in self.consumers.items():
            for writer in self.producers.get(tensor, []):
                targets = {r.step for r in readers if r.step is not None}
                if writer.step is not None and targets:
                    graph.setdefault(writer.step, set()).update(targets)
        return graph


def _step_label(index: int, step: mc.ModelEnsembling.Step) -> str:
    return f"step {index + 1} ({step.model_name})"


def _port(
    owner: Model | None, tensor: object, label: str, line: int | None, step: int | None = None
) -> _Port:
    """A port typed from ``tensor`` of ``owner``; untyped when either is unknown."""
    if owner is None or tensor is None:
        return _Port(label, None, None, line, step)
    return _Port(label, tensor.data_type, owner.shape(tensor), line, step)


def _ensemble_ports(ensemble: Model, flow: _Flow) -> None:
    for tensor in ensemble.config.input:
        line = ensemble.line(*_tensor_patterns("input", tensor.name))
        flow.produce(tensor.name, _port(ensemble, tensor, f"ensemble input {tensor.name!r}", line))
    for tensor in ensemble.config.output:
        line = ensemble.line(*_tensor_patterns("output", tensor.name))
        flow.consume(tensor.name, _port(ensemble, tensor, f"ensemble output {tensor.name!r}", line))


def _step_ports(ensemble: Model, index: int, step, target: Model | None, flow: _Flow) -> None:
    inputs = target.inputs if target else {}
    outputs = target.outputs if target else {}
    for kind, mapping, specs, add in (
        ("input", step.input_map, inputs, flow.consume),
        ("output", step.output_map, outputs, flow.produce),
    ):
        for key, tensor in mapping.items():
            line = ensemble.line(
                *_step_patterns(index),
                field_pattern(f"{kind}_map"),
                field_pattern("key", key),
                field_pattern("value", tensor),
            )
            label = f"{_step_label(index, step)} {kind} {key!r}"
            add(tensor, _port(target, specs.get(key), label, line, index))


def _check_steps(ensemble: Model, repository: Repository) -> Iterator[Finding]:
    for index, step in enumerate(ensemble.config.ensemble_scheduling.step):
        target = repository.models.get(step.model_name)
        if target is not None:
            yield from _check_step_target(ensemble, index, step, target)
        elif step.model_name not in repository.folders:
            yield ensemble.finding(
                f"{_step_label(index, step)}: model_name {step.model_name!r} is not a model "
                f"of the repository (models: {', '.join(repository.folders)})",
                *_step_patterns(index),
                field_pattern("model_name", step.model_name),
            )


def _check_step_target(ensemble: Model, index: int, step, target: Model) -> Iterator[Finding]:
    yield from _check_step_version(ensemble, index, step, target)
    yield from _check_step_batch(ensemble, index, step, target)
    yield from _check_map(ensemble, index, step, "input", target.inputs)
    yield from _check_map(ensemble, index, step, "output", target.outputs)
    yield from _check_unmapped(ensemble, index, step, target)


def _check_step_version(ensemble: Model, index: int, step, target: Model) -> Iterator[Finding]:
    version = step.model_version
    if version != -1 and version not in target.versions():
        yield ensemble.finding(
            f"{_step_label(index, step)}: model_version {version} has no folder "
            f"{target.name}/{version}/ (use -1 for the latest)",
            *_step_patterns(index),
            field_pattern("model_version"),
        )


def _check_step_batch(ensemble: Model, index: int, step, target: Model) -> Iterator[Finding]:
    mine, theirs = ensemble.config.max_batch_size, target.config.max_batch_size
    if mine > max(theirs, 0):
        yield ensemble.finding(
            f"max_batch_size {mine} is larger than {_step_label(index, step)}'s "
            f"max_batch_size {theirs}",
            field_pattern("max_batch_size"),
        )


def _check_map(ensemble: Model, index: int, step, kind: str, specs: Mapping) -> Iterator[Finding]:
    mapping = step.input_map if kind == "input" else step.output_map
    for key in mapping:
        if key not in specs:
            yield ensemble.finding(
                f"{_step_label(index, step)}: {kind}_map key {key!r} is not an {kind} of "
                f"model {step.model_name!r} ({kind}s: {', '.join(specs) or 'none'})",
                *_step_patterns(index),
                field_pattern(f"{kind}_map"),
                field_pattern("key", key),
            )


def _check_unmapped(ensemble: Model, index: int, step, target: Model) -> Iterator[Finding]:
    for name, tensor in target.inputs.items():
        if name not in step.input_map and not tensor.optional:
            yield ensemble.finding(
                f"{_step_label(index, step)}: input {name!r} of model {target.name!r} "
                "is not mapped in input_map",
                *_step_patterns(index),
                field_pattern("model_name", step.model_name),
            )


def _type_name(data_type: int) -> str:
    return mc.DataType.Name(data_type)


def _compatible(left: Sequence[int], right: Sequence[int]) -> bool:
    """Same rank and every dimension equal, -1 matching anything."""
    return len(left) == len(right) and all(
        a == b or -1 in (a, b) for a, b in zip(left, right, strict=True)
    )


def _check_edge(ensemble: Model, tensor: str, writer: _Port, reader: _Port) -> Iterator[Finding]:
    where = f"tensor {tensor!r} from {writer.label} to {reader.label}"
    if None not in (writer.data_type, reader.data_type) and writer.data_type != reader.data_type:
        yield Finding(
            ensemble.config_path,
            reader.line,
            f"data_type mismatch on {where}: "
            f"{_type_name(writer.data_type)} != {_type_name(reader.data_type)}",
        )
    if None not in (writer.shape, reader.shape) and not _compatible(writer.shape, reader.shape):
        yield Finding(
            ensemble.config_path,
            reader.line,
            f"dims mismatch on {where}: {list(writer.shape)} vs {list(reader.shape)} "
            "(full shapes, -1 = any; batch dimension first when max_batch_size > 0)",
        )


def _check_tensors(ensemble: Model, flow: _Flow) -> Iterator[Finding]:
    for tensor, readers in flow.consumers.items():
        writers = flow.producers.get(tensor, [])
        for reader in readers:
            if not writers:
                yield Finding(
                    ensemble.config_path,
                    reader.line,
                    f"tensor {tensor!r} read by {reader.label} is never produced "
                    "(neither an ensemble input nor in any step's output_map)",
                )
            else:
                yield from _check_edge(ensemble, tensor, writers[0], reader)


def _check_producers(ensemble: Model, flow: _Flow) -> Iterator[Finding]:
    for tensor, writers in flow.producers.items():
        if len(writers) > 1:
            yield Finding(
                ensemble.config_path,
                writers[1].line,
                f"tensor {tensor!r} is produced more than once "
                f"({', '.join(w.label for w in writers)})",
            )


def find_cycle(edges: Mapping[int, set[int]]) -> list[int] | None:
    """One cycle of the graph as a node path ending where it starts, or None."""
    done: set[int] = set()

    def visit(path: list[int]) -> list[int] | None:
        for node in sorted(edges.get(path[-1], ())):
            if node in path:
                return path[path.index(node) :] + [node]
            found = None if node in done else visit([*path, node])
            if found:
                return found
        done.add(path[-1])
        return None

    return next((c for start in sorted(edges) if (c := visit([start]))), None)


def _check_cycle(ensemble: Model, flow: _Flow) -> Iterator[Finding]:
    cycle = find_cycle(flow.edges())
    if cycle:
        steps = ensemble.config.ensemble_scheduling.step
        names = " -> ".join(_step_label(i, steps[i]) for i in cycle)
        yield ensemble.finding(
            f"steps form a cycle: {names}",
            *_step_patterns(cycle[0]),
            field_pattern("model_name"),
        )


def check_ensemble(ensemble: Model, repository: Repository) -> list[Finding]:
    """Findings about an ensemble's steps and the tensors flowing between them."""
    steps = ensemble.config.ensemble_scheduling.step
    if not steps:
        return [ensemble.finding("ensemble_scheduling has no step", field_pattern("platform"))]
    flow = _Flow()
    _ensemble_ports(ensemble, flow)
    for index, step in enumerate(steps):
        _step_ports(ensemble, index, step, repository.models.get(step.model_name), flow)
    return [
        *_check_steps(ensemble, repository),
        *_check_tensors(ensemble, flow),
        *_check_producers(ensemble, flow),
        *_check_cycle(ensemble, flow),
    ]


# --- images -------------------------------------------------------------------------------


def check_image(model: Model, tag: str, backends: frozenset[str]) -> list[Finding]:
    """A finding when the image ``tag`` lacks the backend ``model`` needs."""
    if not model.backend or model.backend in backends:
        return []
    fieldname = "platform" if model.config.platform else "backend"
    hint = ""
    if model.backend == "tensorflow":
        last = newest_tag(["tensorflow"]).tag
        hint = (
            f" (TensorFlow left Triton in 25.03; last SageMaker tag with it: {last}); fix: "
            f"tritonship build --format onnx --image-tag {tag}, or target {last}"
        )
    return [
        model.finding(
            f"{fieldname} {model.kind!r} needs the {model.backend!r} backend, "
            f"which image {tag} does not have{hint}",
            field_pattern(fieldname, model.kind),
        )
    ]


# --- a GPU build's memory budget (tools/tritonship/repository/memory.py) ------------------


def gpu_record(root: Path) -> dict | None:
    """The ``gpu`` record of the repository's build manifest (a GPU build), or None."""
    try:
        manifest = json.loads((root / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    record = manifest.get("gpu") if isinstance(manifest, dict) else None
    return record if isinstance(record, dict) else None


def _int_parameter(model: Model, key: str) -> int | None:
    value = model.config.parameters[key].string_value if key in model.config.parameters else ""
    return int(value) if value.strip().isdigit() else None


def _dali_instances_per_gpu(model: Model) -> int:
    """DALI instances on one GPU: a GPU (or AUTO) group's count is per GPU; default one."""
    gpu_kinds = (mc.ModelInstanceGroup.KIND_GPU, mc.ModelInstanceGroup.KIND_AUTO)
    groups = [g for g in model.config.instance_group if g.kind in gpu_kinds]
    return sum(max(g.count, 1) for g in groups) if groups else 1


def check_gpu_budget(repository: Repository) -> list[Finding]:
    """A GPU build: the decoded images of the DALI runs on one GPU must fit its budget."""
    record = gpu_record(repository.root)
    if record is None or "dali_memory_budget_bytes" not in record:
        return []
    budget = int(record["dali_memory_budget_bytes"])
    guard = next(
        (m for m in repository.models.values() if "max_pixels" in m.config.parameters), None
    )
    findings = []
    for model in (m for m in repository.models.values() if m.kind == "dali"):
        if guard is None or _int_parameter(guard, "max_pixels") is None:
            findings.append(
                model.finding(
                    "nothing bounds the size of the images this GPU model decodes: add a guard "
                    "step with max_pixels (and max_request_pixels) before it",
                    field_pattern("max_batch_size"),
                )
            )
            continue
        findings += _budget_finding(model, guard, budget, record)
    return findings


def _budget_finding(model: Model, guard: Model, budget: int, record: dict) -> list[Finding]:
    batched = model.config.HasField("dynamic_batching")  # a run then mixes requests
    bound = memory.DecodeBound(
        images=max(model.config.max_batch_size, 1),
        max_pixels=_int_parameter(guard, "max_pixels") or 0,
        max_request_pixels=None if batched else _int_parameter(guard, "max_request_pixels"),
        instances=_dali_instances_per_gpu(model),
    )
    if bound.bytes <= budget:
        return []
    limits = f"max_batch_size {bound.images} x the guard's max_pixels {bound.max_pixels / 1e6:g} MP"
    if bound.max_request_pixels:
        limits += f", or max_request_pixels {bound.max_request_pixels / 1e6:g} MP"
    message = (
        f"one GPU may have to hold {memory.gib(bound.bytes)} of decoded images "
        f"({bound.instances} instance(s) x {bound.pixels_per_run / 1e6:g} megapixels x "
        f"{memory.BYTES_PER_PIXEL} bytes: {limits}), more than the DALI budget of "
        f"{memory.gib(budget)} on {record.get('instance_type', 'the target')}: lower the "
        "guard's max_request_pixels (tritonship build --device gpu sets it) or max_batch_size"
    )
    return [model.finding(message, field_pattern("max_batch_size"))]


# --- SageMaker serve rules ----------------------------------------------------------------


def _env_finding(repository: Repository, env: SageMakerEnv, key: str, message: str) -> Finding:
    """A finding about ``key``, located where it was set (``file:line``), else at the repo."""
    place = env.places.get(key)
    if place is not None and place.line:
        return Finding(Path(place.path), place.line, message)
    return Finding(repository.root, None, f"{message} (set: {env.origin(key)})")


def check_sagemaker(repository: Repository, env: SageMakerEnv) -> list[Finding]:
    """Rules under which SageMaker's ``serve`` script refuses to start.

    Server r24.09 ``docker/sagemaker/serve``: a config at the repository root, or several
    model folders and no default model.
    """
    findings = []
    root_config = repository.root / CONFIG_NAME
    if root_config.exists() and not env.multi_model:
        findings.append(
            Finding(
                root_config,
                None,
                f"{CONFIG_NAME} at the repository root: serve refuses it (model folders "
                "must be at the top level of the archive)",
            )
        )
    if not env.multi_model:
        findings += _check_default_model(repository, env)
    return findings


def _check_default_model(repository: Repository, env: SageMakerEnv) -> list[Finding]:
    name = env.default_model
    folders = model_dirs(repository.root)  # counted exactly as serve counts them
    if name and name not in folders:
        message = f"{DEFAULT_MODEL_VARIABLE}={name}: no model folder {name!r} in {repository.root}"
        return [_env_finding(repository, env, DEFAULT_MODEL_VARIABLE, message)]
    if not name and len(folders) != 1:
        ensembles = [m.name for m in repository.models.values() if m.is_ensemble]
        hint = f" (e.g. --env {DEFAULT_MODEL_VARIABLE}={ensembles[0]})" if ensembles else ""
        message = (
            f"{DEFAULT_MODEL_VARIABLE} is not set and the repository has "
            f"{len(folders)} model folders: serve needs it{hint}"
        )
        return [Finding(repository.root, None, message)]
    return []


# --- entry points -------------------------------------------------------------------------


def validate_repository(
    repo: Path, image_tag: str | None = None, env: SageMakerEnv | None = None
) -> list[Finding]:
    """Check ``repo`` against Triton's loading rules, SageMaker's serve rules and the image.

    ``env``: the SageMaker variables the server will really get (default: the packaged
    defaults, fitted to ``repo``).
    """
    backends = backends_for_tag(image_tag) if image_tag else None
    repository = load_repository(repo)
    findings = list(repository.findings)
    for model in repository.models.values():
        findings += check_model(model)
        if model.is_ensemble:
            findings += check_ensemble(model, repository)
        if image_tag and backends:
            findings += check_image(model, image_tag, backends)
    findings += check_gpu_budget(repository)
    findings += check_sagemaker(repository, env or packaged_env(repo))
    return findings


def format_findings(findings: Iterable[Finding]) -> str:
    """One ``path:line: message`` line per finding."""
    return "\n".join(str(finding) for finding in findings)


def summary(repository: Repository) -> str:
    """The clean-case line, e.g. ``model_repository: 3 models OK (ens -> a -> b)``."""
    chains = [
        " -> ".join([m.name, *(s.model_name for s in m.config.ensemble_scheduling.step)])
        for m in repository.models.values()
        if m.is_ensemble
    ]
    in_chains = {name for chain in chains for name in chain.split(" -> ")}
    chains += [name for name in repository.models if name not in in_chains]
    count = len(repository.models)
    noun = "model" if count == 1 else "models"
    return f"{repository.root.name}: {count} {noun} OK ({'; '.join(chains)})"
